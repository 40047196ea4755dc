"""Export and import of one session as a JSON document."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from statekeeper import ImportFailed, SessionNotFound, StateManager


def _rich_session(sm: StateManager, workspace: Path) -> str:
    sid = sm.create_session(
        "TechCorp",
        kind="competition",
        task="find bugs",
        workspace=workspace,
        model="opus",
        metadata={"tags": ["a", "ü"]},
    )
    sm.save_phase_completion(sid, "p1", {"x": "😀"}, 10, "0.1", tokens_in=5, tokens_out=6)
    sm.save_phase_completion(sid, "p2", [1, 2], 20, "0.2", context={"next": "p3"})
    sm.save_markdown_output(sid, "# done")
    sm.record_event("note", "hello", session_id=sid)
    sm.update_session_status(sid, "completed")
    return sid


def test_export_import_round_trip(
    open_sm: Callable[..., StateManager], tmp_path: Path, store_url: str
) -> None:
    sm = open_sm(compress_threshold=64)
    sid = _rich_session(sm, tmp_path)
    snapshot = sm.create_snapshot(session_id=sid, description="before the end")
    before = (
        sm.get_session(sid),
        sm.get_completed_phases(sid),
        sm.load_context(sid),
        sm.get_events(sid),
        sm.get_snapshot(snapshot),
    )
    assert before[-1] is not None and before[-1].compressed
    path = tmp_path / "export.json"
    sm.export_session(sid, path)
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["format"] == "statekeeper.session"
    assert document["tables"]["sessions"][0]["cost_usd"] == "0.30000000"
    sm.delete_session(sid)
    assert sm.import_session(str(path)) == sid
    after = (
        sm.get_session(sid),
        sm.get_completed_phases(sid),
        sm.load_context(sid),
        sm.get_events(sid),
        sm.get_snapshot(snapshot),
    )
    assert after == before
    assert sm.integrity_check().ok


def test_import_into_another_store(sm: StateManager, tmp_path: Path) -> None:
    sid = _rich_session(sm, tmp_path)
    path = tmp_path / "export.json"
    sm.export_session(sid, path)
    with StateManager(tmp_path / "other.db") as other:
        assert other.import_session(path) == sid
        session = other.get_session(sid)
        assert session is not None and session.cost_usd == Decimal("0.3")
        assert len(other.get_completed_phases(sid)) == 2


def test_export_unknown_session(sm: StateManager, tmp_path: Path) -> None:
    with pytest.raises(SessionNotFound):
        sm.export_session("nope", tmp_path / "x.json")
    assert not (tmp_path / "x.json").exists()


def test_import_existing_session_fails(sm: StateManager, tmp_path: Path) -> None:
    sid = _rich_session(sm, tmp_path)
    path = tmp_path / "export.json"
    sm.export_session(sid, path)
    with pytest.raises(ImportFailed, match="already exists"):
        sm.import_session(path)


def _document(sm: StateManager, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    sid = _rich_session(sm, tmp_path)
    path = tmp_path / "export.json"
    sm.export_session(sid, path)
    sm.delete_session(sid)
    return sid, json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(format="other"), "not a statekeeper.session"),
        (lambda d: d.update(version=99), "unsupported document version"),
        (lambda d: d["tables"].update(secrets=[]), "unknown tables"),
        (lambda d: d["tables"]["sessions"][0].update(colour="red"), "unknown columns"),
        (lambda d: d["tables"]["sessions"][0].update(status="bogus"), "rejected by the store"),
        (
            lambda d: d["tables"]["phase_completions"][0].update(cost_usd="x"),
            "bad value in phase_completions.cost_usd: 'x'",
        ),
        (lambda d: d["tables"]["phase_completions"][1].update(session_id="zz"), "another session"),
        (lambda d: d["tables"]["sessions"].append({}), "exactly one session"),
    ],
)
def test_bad_documents_import_nothing(sm: StateManager, tmp_path: Path, mutate, message) -> None:
    sid, document = _document(sm, tmp_path)
    mutate(document)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(ImportFailed, match=message):
        sm.import_session(bad)
    assert sm.get_session(sid) is None
    assert sm.get_total_sessions() == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"{trunc", "invalid JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[]", "not a"),
    ],
)
def test_unreadable_files(sm: StateManager, tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "f.json"
    path.write_bytes(content)
    with pytest.raises(ImportFailed, match=message):
        sm.import_session(path)
    with pytest.raises(ImportFailed, match="cannot read"):
        sm.import_session(tmp_path / "missing.json")
