"""Fuzzing the importers: mutations of valid documents never surface anything but a
StateError, and never leave part of a session behind.

Each example takes a valid document (a legacy editor file, or a session written by
`export_session`), mutates it (a value replaced by one of another type, a huge or odd
string, NaN, a deep nesting; a key removed or added; an item duplicated) and possibly
its bytes (truncated, a BOM, invalid UTF-8), then imports it. Afterwards every session
of the document is either stored whole and readable through the API, or absent with no
row of it anywhere. Bounded for the suite (derandomized under CI=true); a long local
run: `SK_FUZZ_EXAMPLES=2000 pytest tests/test_fuzz_import.py`.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statekeeper import ImportFailed, ImportStats, StateError, StateManager, ValidationReport
from tests import legacy_fixtures as lf
from tests.conftest import _in_ci

FUZZ = settings(
    max_examples=int(os.environ.get("SK_FUZZ_EXAMPLES", "60")),
    deadline=None,
    database=None,
    derandomize=_in_ci(),
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)

DEEP = "\ue000deep\ue000"
"""Stands for a nesting too deep for any parser's recursion: replaced in the file's text."""
DEPTH = 50_000
HUGE = "x" * 300_000
ODD_STRINGS = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",
    "a\udfffb",
    "😀" * 40,
    "עברית\u202e",
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59-01:00",
    "0001-01-01T00:00:00+14:00",
    "2024-02-30T00:00:00Z",
    "1e309",
    "NaN",
    "-1",
    "0.1",
    "../../etc/passwd",
    "completed",
    HUGE,
    DEEP,
]
odd_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(ODD_STRINGS),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
BYTE_MUTATIONS = ("none",) * 8 + ("truncate", "bom", "bad-utf8", "empty", "scalar")


def spots(value: Any) -> Iterator[tuple[Any, Any]]:
    """Every (container, key or index) of a JSON document, depth first."""
    if isinstance(value, dict):
        for key in list(value):
            yield value, key
            yield from spots(value[key])
    elif isinstance(value, list):
        for index in range(len(value)):
            yield value, index
            yield from spots(value[index])


@st.composite
def mutated(draw: st.DrawFn, base: Any) -> Any:
    """The document with one to three structural mutations."""
    document = copy.deepcopy(base)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        places = list(spots(document))
        if not places:
            break
        container, key = draw(st.sampled_from(places))
        operation = draw(st.sampled_from(("replace", "replace", "delete", "add", "duplicate")))
        if operation == "replace":
            container[key] = draw(odd_values)
        elif operation == "delete":
            del container[key]
        elif operation == "add" and isinstance(container, dict):
            container[draw(st.text(max_size=6))] = draw(odd_values)
        elif operation == "add":
            container.append(draw(odd_values))
        elif isinstance(container, list):
            container.append(copy.deepcopy(container[key]))
        else:
            other = draw(st.sampled_from(list(container)))
            container[key] = copy.deepcopy(container[other])
    return document


def write(path: Path, document: Any, byte_mutation: str, cut: int) -> None:
    """The document as a file, its bytes mutated as drawn."""
    text = json.dumps(document, ensure_ascii=False)  # NaN and infinities as Python writes them
    text = text.replace(json.dumps(DEEP, ensure_ascii=False), "[" * DEPTH + "]" * DEPTH)
    data = text.encode("utf-8", "surrogatepass")
    if byte_mutation == "truncate":
        data = data[: cut % max(len(data), 1)]
    elif byte_mutation == "bom":
        data = b"\xef\xbb\xbf" + data
    elif byte_mutation == "bad-utf8":
        position = cut % max(len(data), 1)
        data = data[:position] + b"\xff\xfe" + data[position:]
    elif byte_mutation == "empty":
        data = b""
    elif byte_mutation == "scalar":
        data = b"42"
    path.write_bytes(data)


def counts(sm: StateManager) -> dict[str, int]:
    """Rows in each table a session's import writes."""
    tables = (
        "sessions",
        "phase_completions",
        "workflow_context",
        "instances",
        "chat_messages",
        "events",
        "snapshots",
    )
    with sm.engine.connect() as connection:
        return {
            t: connection.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one() for t in tables
        }


def document_ids(document: Any) -> list[str]:
    if not isinstance(document, list):
        return []
    return [
        item["id"]
        for item in document
        if isinstance(item, dict) and isinstance(item.get("id"), str) and item["id"]
    ]


# The legacy importer -------------------------------------------------------------------

LEGACY = [
    lf.session("fz-1"),
    lf.minimal_session("fz-2", minute=5),
    lf.camel(lf.session("fz-3", instances=1, messages=2, minute=9)),
]


@pytest.fixture
def fuzz_sm(store_url: str) -> Iterator[StateManager]:
    with StateManager(store_url) as sm:
        yield sm


def test_the_legacy_importer_takes_mutated_files_whole_or_not_at_all(
    fuzz_sm: StateManager, tmp_path: Path, engine_name: str
) -> None:
    sm = fuzz_sm
    tried = {"examples": 0, "stored": 0, "rejected": 0}
    path = tmp_path / "0123456789abcdef.json"

    @FUZZ
    @given(
        document=mutated(LEGACY),
        byte_mutation=st.sampled_from(BYTE_MUTATIONS),
        cut=st.integers(min_value=0, max_value=10**6),
    )
    def attempt(document: Any, byte_mutation: str, cut: int) -> None:
        tried["examples"] += 1
        write(path, document, byte_mutation, cut)
        ids = document_ids(document) if byte_mutation in ("none", "bom") else []
        stats: ImportStats | None = None
        report: ValidationReport | None = None
        try:
            stats = sm.import_json(path)
            report = sm.validate_import(path)
        except StateError:
            pass
        try:
            stored = {sid: sm.get_worktree_session(sid) for sid in ids}
            kept = {sid: session for sid, session in stored.items() if session is not None}
            if stats is not None:
                assert stats.imported == len(kept), (stats, list(kept))
                tried["stored"] += len(kept)
                tried["rejected"] += len(stats.errors)
            if report is not None and len(set(ids)) == len(ids):
                assert not set(report.mismatched) & set(kept), report
            # Whatever is stored is whole and readable; nothing else left a row behind.
            chat = instances = 0
            for sid in kept:
                assert sm.get_session(sid) is not None
                chat += len(sm.get_chat_history(sid))
                instances += len(sm.get_instances(sid))
            rows = counts(sm)
            assert rows["sessions"] == sm.get_total_sessions() == len(kept)
            assert (rows["chat_messages"], rows["instances"]) == (chat, instances)
        finally:
            for summary in sm.get_session_history(limit=100):
                sm.delete_session(summary.id)

    attempt()
    assert sm.integrity_check().ok
    print(f"\nlegacy importer, {engine_name}: {tried}")
    assert tried["examples"] >= FUZZ.max_examples
    assert tried["stored"] > 0
    assert tried["rejected"] > 0


# import_session ------------------------------------------------------------------------


def exported(sm: StateManager, tmp_path: Path) -> dict[str, Any]:
    """A session with a row in every table that belongs to it, as export_session writes it;
    deleted from the store afterwards so its document can be imported again."""
    sid = sm.create_session("ACME", task="audit", workspace=tmp_path, metadata={"k": [1, "é"]})
    sm.save_phase_completion(sid, "plan", {"steps": [1, 2]}, 1500, Decimal("0.25"))
    sm.save_phase_completion(sid, "build", "done", 10, "0.5", context={"step": 2})
    sm.add_instance(
        sid, 1, worktree_path="/w/1", branch="b", agent_name="a", tmux_session_id="t", output="ok"
    )
    sm.add_chat_message(sid, "user", "hello 😀", instance_number=1)
    sm.record_event("app.note", "a note", session_id=sid, metadata={"n": 1})
    sm.create_snapshot(session_id=sid, description="after build")
    sm.update_session_status(sid, "failed", "boom")
    path = tmp_path / "base.json"
    sm.export_session(sid, path)
    sm.delete_session(sid)
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def test_import_session_takes_mutated_documents_whole_or_not_at_all(
    fuzz_sm: StateManager, tmp_path: Path, engine_name: str
) -> None:
    sm = fuzz_sm
    base = exported(sm, tmp_path)
    empty = counts(sm)
    tried = {"examples": 0, "imported": 0, "refused": 0}
    path = tmp_path / "session.json"

    @FUZZ
    @given(
        mutation=st.data(),
        byte_mutation=st.sampled_from(BYTE_MUTATIONS),
        cut=st.integers(min_value=0, max_value=10**6),
    )
    def attempt(mutation: st.DataObject, byte_mutation: str, cut: int) -> None:
        tried["examples"] += 1
        write(path, mutation.draw(mutated(base)), byte_mutation, cut)
        try:
            sid = sm.import_session(path)
        except StateError:
            tried["refused"] += 1
            assert counts(sm) == empty
            return
        tried["imported"] += 1
        try:  # stored whole: every part of it reads back, and it exports again
            assert sm.get_session(sid) is not None
            sm.get_completed_phases(sid)
            sm.load_context(sid)
            sm.get_chat_history(sid)
            sm.get_instances(sid)
            sm.get_events(sid)
            sm.export_session(sid, tmp_path / "again.json")
            for snapshot in sm.list_snapshots(session_id=sid):
                try:  # a completed session refuses it, and an expired snapshot is gone
                    sm.restore_snapshot(snapshot.id)
                except StateError:
                    tried["restore refused"] = tried.get("restore refused", 0) + 1
                else:
                    tried["restored"] = tried.get("restored", 0) + 1
            report = sm.integrity_check()
            assert report.ok, report.problems
        finally:
            sm.delete_session(sid)
            (tmp_path / "again.json").unlink(missing_ok=True)
        assert counts(sm) == empty

    attempt()
    print(f"\nimport_session, {engine_name}: {tried}")
    assert tried["examples"] >= FUZZ.max_examples
    assert tried["imported"] > 0
    assert tried["refused"] > 0


def test_a_too_deeply_nested_session_document_is_import_failed(
    sm: StateManager, tmp_path: Path
) -> None:
    """Found by the fuzzer: the parser's RecursionError escaped import_session."""
    path = tmp_path / "deep.json"
    path.write_text("[" * DEPTH + "]" * DEPTH, encoding="utf-8")
    with pytest.raises(ImportFailed, match="nested too deeply"):
        sm.import_session(path)
    assert sm.get_total_sessions() == 0


def _set(table: str, column: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(tables: dict[str, Any]) -> None:
        tables[table][0][column] = value

    return edit


def _payload(**changes: Any) -> Callable[[dict[str, Any]], None]:
    def edit(tables: dict[str, Any]) -> None:
        tables["snapshots"][0]["payload"].update(changes)

    return edit


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_set("sessions", "cost_usd", "99"), "totals differ"),
        (_set("sessions", "completed_at", None), "completed_at disagrees"),
        (_set("instances", "files_changed", -3), "no session can hold: .*files_changed"),
        (_set("sessions", "status", "bogus"), "status"),
        (_set("workflow_context", "data", [1, 2]), "workflow_context.data is not an object"),
        (lambda tables: tables.update(workspaces=True), "'workspaces' must be a list"),
        (lambda tables: tables.update(sessions=7), "'sessions' must be a list"),
        (_payload(phases=5), "cannot be restored"),
        (_payload(cost_usd="5"), "totals differ from its phases"),
        (_payload(context=[1]), "cannot be restored"),
    ],
    ids=[
        "totals",
        "completed_at",
        "instance-count",
        "session-status",
        "context-not-object",
        "workspaces-not-list",
        "sessions-not-list",
        "snapshot-phases",
        "snapshot-totals",
        "snapshot-context",
    ],
)
def test_import_session_refuses_a_session_the_api_could_not_have_written(
    sm: StateManager, tmp_path: Path, edit: Callable[[dict[str, Any]], None], message: str
) -> None:
    """Found by the fuzzer: rows went in by column type only, so a hand-edited document
    could store a session whose reads then raised pydantic's ValidationError, whose
    totals and stamps integrity_check reported, or whose snapshot restore_snapshot failed
    on with a TypeError."""
    document = exported(sm, tmp_path)
    empty = counts(sm)
    edit(document["tables"])
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(ImportFailed, match=message):
        sm.import_session(path)
    assert counts(sm) == empty
    assert sm.integrity_check().ok
