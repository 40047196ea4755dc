"""Import, validation and export of the legacy editor's JSON session files, on both engines."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner, Result

from statekeeper import ImportFailed, StateManager
from statekeeper.cli import app
from statekeeper.schemas import WorktreeSession
from statekeeper.services.workspaces import workspace_id
from tests.legacy_fixtures import (
    UNICODE,
    at,
    camel,
    dtos,
    generate,
    instance,
    message,
    minimal_session,
    session,
    write,
)

runner = CliRunner()


def stored(sm: StateManager, ids: list[str]) -> list[WorktreeSession | None]:
    return [sm.get_worktree_session(i) for i in ids]


def rows_of(sm: StateManager, session_ids: list[str]) -> dict[str, int]:
    """How many rows of each table belong to these sessions."""
    counts = {}
    with sm.engine.connect() as connection:
        for table, column in [
            ("sessions", "id"),
            ("instances", "session_id"),
            ("chat_messages", "session_id"),
            ("events", "session_id"),
        ]:
            query = sa.text(f"SELECT count(*) FROM {table} WHERE {column} IN :ids").bindparams(
                sa.bindparam("ids", expanding=True)
            )
            counts[table] = connection.execute(query, {"ids": session_ids}).scalar_one()
    return counts


def workspace_of(sm: StateManager, session_id: str) -> tuple[str | None, str | None]:
    """The session's workspace id and that workspace's recorded path."""
    query = sa.text(
        "SELECT w.id, w.path FROM sessions s LEFT JOIN workspaces w ON w.id = s.workspace_id"
        " WHERE s.id = :id"
    )
    with sm.engine.connect() as connection:
        row = connection.execute(query, {"id": session_id}).one()
    return row[0], row[1]


def cli(url: str, *args: str) -> Result:
    return runner.invoke(app, ["--url", url, *args], catch_exceptions=False)


# Shapes of sessions ----------------------------------------------------------------------


def test_both_key_styles_minimal_and_full(sm: StateManager, tmp_path: Path) -> None:
    sessions = [
        session("snake"),
        camel(session("camel", instances=3, messages=4)),
        minimal_session("minimal"),
        camel(minimal_session("minimal-camel")),
    ]
    stats = sm.import_json(write(tmp_path / "sessions.json", sessions))
    assert (stats.imported, stats.skipped, stats.errors) == (4, 0, [])
    assert stored(sm, ["snake", "camel", "minimal", "minimal-camel"]) == dtos(sessions)
    full = sm.get_worktree_session("camel")
    assert full is not None and len(full.instances) == 3 and len(full.chat_history) == 4
    assert full.total_duration == 3660 and full.runtime_mix == ["claude", "codex"]


def test_unknown_keys_nulls_and_instance_order(sm: StateManager, tmp_path: Path) -> None:
    clean = session("extra", messages=1, completed_at=None, model=None)
    clean["instances"] = [instance(2), instance(1, output=None, runtime=None)]
    raw = copy.deepcopy(clean) | {"workspacePath": "/x", "ui": {"collapsed": True}}
    raw["instances"][0]["debug"] = 1
    raw["chat_history"][0]["reactions"] = ["👍"]
    stats = sm.import_json(write(tmp_path / "extra.json", [raw]))
    assert (stats.imported, stats.errors) == (1, [])
    got = sm.get_worktree_session("extra")
    assert got == dtos([clean])[0]
    assert got is not None and [i.instance_id for i in got.instances] == [1, 2]


def test_null_task_instances_and_chat_are_empty(sm: StateManager, tmp_path: Path) -> None:
    nulls = {"task": None, "instances": None, "chat_history": None}
    sessions = [session("snake-nulls") | nulls, camel(session("camel-nulls") | nulls)]
    assert "chatHistory" in sessions[1]
    path = write(tmp_path / "nulls.json", sessions)
    stats = sm.import_json(path)
    assert (stats.imported, stats.errors) == (2, [])
    for got in stored(sm, ["snake-nulls", "camel-nulls"]):
        assert got is not None
        assert (got.task, got.instances, got.chat_history) == ("", [], [])
    assert sm.validate_import(path).ok


def test_large_outputs_and_unicode(sm: StateManager, tmp_path: Path) -> None:
    big = (UNICODE + "\n") * 3_000  # ~250 KB of UTF-8
    raw = session("unicode-😀", task=UNICODE)
    raw["instances"] = [instance(1, output=big, branch="機能/ميزة", agent_name="агент")]
    raw["chat_history"] = [message("unicode-😀", 0, content=UNICODE)]
    stats = sm.import_json(write(tmp_path / "unicode.json", [raw]))
    assert (stats.imported, stats.errors) == (1, [])
    assert len(big.encode()) > 100_000
    assert sm.get_worktree_session("unicode-😀") == dtos([raw])[0]


# Invalid sessions and files ----------------------------------------------------------------


def _bad_sessions() -> list[Any]:
    bad_status = session("bad-status", status="finished")
    missing_task = session("missing-task")
    del missing_task["task"]
    duplicate_instances = session("dup-instances")
    duplicate_instances["instances"] = [instance(1), instance(1)]
    bad_role = session("bad-role")
    bad_role["chat_history"][1]["role"] = "robot"
    naive = session("naive-time", created_at="2024-11-20T10:30:00")
    lone_surrogate = session("surrogate", task="broken \ud800 text")
    out_of_range = session("year-10000", updated_at="9999-12-31T23:00:00-05:00")
    return [
        bad_status,
        missing_task,
        duplicate_instances,
        bad_role,
        naive,
        lone_surrogate,
        out_of_range,
        ["not", "an", "object"],
    ]


def test_invalid_sessions_are_reported_and_the_rest_imported(
    sm: StateManager, tmp_path: Path
) -> None:
    bad = _bad_sessions()
    path = tmp_path / "mixed.json"
    # json.dumps escapes the lone surrogate as \ud800, as a JavaScript writer would.
    path.write_text(
        json.dumps([session("good-1"), *bad, session("good-2")], ensure_ascii=True),
        encoding="utf-8",
    )
    stats = sm.import_json(path)
    assert (stats.imported, stats.skipped) == (2, 0)
    labels = [message.split(":")[0] for file, message in stats.errors]
    assert {file for file, _ in stats.errors} == {str(path)}
    assert labels == [f"session {b['id']}" for b in bad[:-1]] + ["session at index 8"]
    reasons = dict(zip(labels, (m for _, m in stats.errors), strict=True))
    assert "status" in reasons["session bad-status"]
    assert "task" in reasons["session missing-task"]
    assert "duplicate instance_id" in reasons["session dup-instances"]
    assert "role" in reasons["session bad-role"]
    assert "timezone" in reasons["session naive-time"]
    assert "surrogate" in reasons["session surrogate"]
    assert "out of range" in reasons["session year-10000"]
    bad_ids = [b["id"] for b in bad[:-1]]
    assert rows_of(sm, bad_ids) == {"sessions": 0, "instances": 0, "chat_messages": 0, "events": 0}
    assert rows_of(sm, ["good-1", "good-2"]) == {
        "sessions": 2,
        "instances": 4,
        "chat_messages": 6,
        "events": 2,
    }


def test_database_refusal_is_retried_one_session_at_a_time(
    sm: StateManager, tmp_path: Path
) -> None:
    """A chat message id already used by another session fails its session only."""
    first, second, clash = session("first"), session("second"), session("clash")
    clash["chat_history"][2]["id"] = first["chat_history"][0]["id"]
    path = write(tmp_path / "clash.json", [first, second, clash])
    stats = sm.import_json(path)
    assert (stats.imported, stats.skipped) == (2, 0)
    assert len(stats.errors) == 1
    assert stats.errors[0][0] == str(path)
    assert stats.errors[0][1].startswith("session clash: ")
    assert rows_of(sm, ["clash"])["sessions"] == 0
    assert stored(sm, ["first", "second"]) == dtos([first, second])


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file"),
        (b" \n\t\n", "empty file"),
        (b'[{"id": "s1", "type": "compet', "invalid JSON at line 1"),
        (b'{"id": "s1"}', "expected a JSON array of sessions, found an object"),
        (b"null", "found null"),
        (b"42", "found a number"),
        (b'["caf\xe9"]', "not UTF-8 text"),
    ],
)
def test_unreadable_file_is_one_error(
    sm: StateManager, tmp_path: Path, content: bytes, reason: str
) -> None:
    broken = tmp_path / "dir" / "a-broken.json"
    broken.parent.mkdir()
    broken.write_bytes(content)
    write(tmp_path / "dir" / "b-good.json", [session("good")])
    stats = sm.import_json(tmp_path / "dir")
    assert stats.imported == 1
    assert len(stats.errors) == 1
    assert stats.errors[0][0] == str(broken)
    assert reason in stats.errors[0][1]
    report = sm.validate_import(broken)
    assert (report.errors, report.missing, report.ok) == ([stats.errors[0]], [], False)


def test_empty_array_and_missing_path(sm: StateManager, tmp_path: Path) -> None:
    stats = sm.import_json(write(tmp_path / "empty.json", []))
    assert (stats.imported, stats.skipped, stats.errors) == (0, 0, [])
    assert sm.validate_import(tmp_path / "empty.json").ok
    with pytest.raises(ImportFailed, match="no such file"):
        sm.import_json(tmp_path / "nope.json")


def test_validate_reports_unreadable_files_and_checks_the_rest(
    sm: StateManager, tmp_path: Path
) -> None:
    directory = tmp_path / "dir"
    empty, cut, not_array = directory / "a.json", directory / "c.json", directory / "d.json"
    write(directory / "b.json", [session("good"), session("other")])
    empty.write_bytes(b"")
    cut.write_text('[{"id": "s1", "ty', encoding="utf-8")
    not_array.write_text('{"id": "s1"}', encoding="utf-8")
    sm.import_json(directory / "b.json")
    sm.delete_session("other")
    report = sm.validate_import(directory)
    assert (report.missing, report.mismatched, report.ok) == (["other"], [], False)
    assert [(file, message.split(" at ")[0]) for file, message in report.errors] == [
        (str(empty), "empty file"),
        (str(cut), "invalid JSON"),
        (str(not_array), "expected a JSON array of sessions, found an object"),
    ]


# Directories, duplicates, re-import ------------------------------------------------------


def test_directory_is_not_searched_recursively(sm: StateManager, tmp_path: Path) -> None:
    write(tmp_path / "b.json", [session("b1"), session("shared", task="from b")])
    write(tmp_path / "a.json", [session("a1"), session("shared", task="from a")])
    write(tmp_path / "sub" / "c.json", [session("c1")])
    write(tmp_path / "a.json.archive", [session("archived")])
    (tmp_path / "notes.txt").write_text("[]")
    seen: list[tuple[int, int]] = []
    stats = sm.import_json(tmp_path, progress=lambda done, total: seen.append((done, total)))
    assert (stats.imported, stats.skipped, stats.errors) == (3, 1, [])
    assert seen == [(0, 2), (1, 2), (2, 2)]
    assert stored(sm, ["c1", "archived"]) == [None, None]
    shared = sm.get_worktree_session("shared")
    assert shared is not None and shared.task == "from a"  # files go in name order


def test_reimport_skips_everything(sm: StateManager, tmp_path: Path) -> None:
    path = write(tmp_path / "s.json", [session("s1"), session("s2"), session("s1", task="dup")])
    first = sm.import_json(path)
    assert (first.imported, first.skipped) == (2, 1)
    again = sm.import_json(path)
    assert (again.imported, again.skipped, again.errors) == (0, 3, [])
    assert rows_of(sm, ["s1", "s2"])["events"] == 2


def test_importing_again_with_a_workspace_places_sessions_that_had_none(
    sm: StateManager, tmp_path: Path
) -> None:
    path = write(tmp_path / "not-a-hash.json", [session("s1"), session("s2")])
    assert sm.import_json(path).imported == 2
    workspace = tmp_path / "project"
    assert sm.list_worktree_sessions(workspace) == []
    placed = tmp_path / "elsewhere"
    sm.save_worktree_session(WorktreeSession.model_validate(session("s3")), workspace=placed)
    write(tmp_path / "not-a-hash.json", [session("s1"), session("s2"), session("s3")])
    again = sm.import_json(path, workspace=workspace)
    assert (again.imported, again.skipped, again.errors) == (0, 3, [])
    assert sorted(s.id for s in sm.list_worktree_sessions(workspace)) == ["s1", "s2"]
    assert [s.id for s in sm.list_worktree_sessions(placed)] == ["s3"]  # kept where it was
    assert sm.export_json(workspace, tmp_path / "back.json") == 2


def test_a_failed_copy_leaves_its_id_to_a_later_copy(sm: StateManager, tmp_path: Path) -> None:
    """Only a stored id is skipped: a copy refused by validation or the database is not."""
    first, twice, dup = session("first"), session("twice"), session("dup")
    refused = copy.deepcopy(twice)
    refused["chat_history"][0]["id"] = first["chat_history"][0]["id"]
    duplicate_ids = copy.deepcopy(dup)
    duplicate_ids["chat_history"][1]["id"] = duplicate_ids["chat_history"][0]["id"]
    a = write(tmp_path / "dir" / "a.json", [first, refused, duplicate_ids])
    write(tmp_path / "dir" / "b.json", [dup, twice])
    stats = sm.import_json(tmp_path / "dir")
    assert (stats.imported, stats.skipped) == (3, 0)
    assert [(f, m.split(":")[0]) for f, m in stats.errors] == [
        (str(a), "session dup"),
        (str(a), "session twice"),
    ]
    assert stored(sm, ["first", "twice", "dup"]) == dtos([first, twice, dup])


def test_a_refused_copy_leaves_its_id_to_a_later_copy_in_the_same_file(
    sm: StateManager, tmp_path: Path
) -> None:
    first, twice = session("first"), session("twice")
    refused = copy.deepcopy(twice)
    refused["chat_history"][0]["id"] = first["chat_history"][0]["id"]
    path = write(tmp_path / "s.json", [first, refused, twice, session("twice", task="third")])
    stats = sm.import_json(path)
    assert (stats.imported, stats.skipped) == (2, 1)
    assert [m.split(":")[0] for _, m in stats.errors] == ["session twice"]
    assert stored(sm, ["twice"]) == dtos([twice])


# Workspaces --------------------------------------------------------------------------------


def test_workspace_from_the_editor_file_name(sm: StateManager, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    key = workspace_id(project)
    write(tmp_path / "files" / f"{key}.json", [session("hashed", minute=1)])
    write(tmp_path / "files" / "Not-A-Hash.json", [session("loose")])
    assert sm.import_json(tmp_path / "files").imported == 2
    assert workspace_of(sm, "hashed") == (key, None)
    assert workspace_of(sm, "loose") == (None, None)
    assert [s.id for s in sm.list_worktree_sessions(project)] == ["hashed"]


def test_workspace_argument_wins(sm: StateManager, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    write(tmp_path / "0123456789abcdef.json", [session("w1"), session("w2", minute=5)])
    assert sm.import_json(tmp_path / "0123456789abcdef.json", workspace=project).imported == 2
    assert workspace_of(sm, "w1") == (workspace_id(project), str(project.resolve()))
    assert [s.id for s in sm.list_worktree_sessions(project)] == ["w2", "w1"]


# Validation and export ---------------------------------------------------------------------


def test_validate_missing_ok_and_mismatched(sm: StateManager, tmp_path: Path) -> None:
    path = write(tmp_path / "v.json", [session("v1"), camel(session("v2")), session("v3")])
    report = sm.validate_import(path)
    assert (report.missing, report.mismatched, report.ok) == (["v1", "v2", "v3"], [], False)
    sm.import_json(path)
    assert sm.validate_import(path).ok
    sm.update_instance("v1", 2, output="changed")
    v2, v3 = stored(sm, ["v2", "v3"])
    assert v2 is not None and v3 is not None
    v2.instances[0].lines_added = 1  # save_worktree_session keeps updated_at as given
    v3.chat_history[0].content = "edited"
    sm.save_worktree_session(v2)
    sm.save_worktree_session(v3)
    report = sm.validate_import(path)
    assert (report.missing, report.mismatched) == ([], ["v1", "v2", "v3"])


def test_validate_counts_invalid_items(sm: StateManager, tmp_path: Path) -> None:
    write(tmp_path / "good.json", [session("kept")])
    sm.import_json(tmp_path / "good.json")
    path = write(
        tmp_path / "bad.json", [session("kept", status="bogus"), session("new", status="x"), 7]
    )
    report = sm.validate_import(path)
    assert report.mismatched == ["kept"]
    assert report.missing == ["new", f"{path}#2"]


def test_export_round_trip(sm: StateManager, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    sessions = [
        session("late", minute=90),
        camel(session("early", minute=-30, instances=4)),
        minimal_session("middle", minute=10),
    ]
    sm.import_json(write(tmp_path / "in.json", sessions), workspace=project)
    out = tmp_path / "out" / f"{workspace_id(project)}.json"
    assert sm.export_json(project, out) == 3
    document = json.loads(out.read_text(encoding="utf-8"))
    assert [s["id"] for s in document] == ["early", "middle", "late"]
    assert {"type", "chat_history", "created_at", "winner_id"} <= set(document[0])
    assert {"instance_id", "tmux_session_id"} <= set(document[0]["instances"][0])
    assert document[0]["created_at"] == at(-30).replace("123456789", "123456")
    assert dtos(document) == sorted(dtos(sessions), key=lambda s: s.created_at)
    assert sm.validate_import(out).ok
    sm.export_json(tmp_path / "elsewhere", tmp_path / "none.json")
    assert json.loads((tmp_path / "none.json").read_text()) == []


def test_paths_expand_the_home_directory(
    sm: StateManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, project = tmp_path / "home", tmp_path / "project"
    project.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    write(home / "sessions" / "s.json", [session("s1")])
    assert sm.import_json("~/sessions", workspace=project).imported == 1
    assert sm.validate_import("~/sessions/s.json").ok
    assert sm.export_json(project, "~/out/s.json") == 1
    assert dtos(json.loads((home / "out" / "s.json").read_text(encoding="utf-8"))) == dtos(
        [session("s1")]
    )
    assert not (tmp_path / "~").exists()


# Command line ------------------------------------------------------------------------------


def test_cli_import_archive_and_validate(store_url: str, tmp_path: Path) -> None:
    files = tmp_path / "sessions"
    good = write(files / "good.json", [session("g1"), session("g2")])
    bad = write(files / "bad.json", [session("b1"), session("b2", status="nope")])
    result = cli(store_url, "validate-json", str(files))
    assert result.exit_code == 1 and "4 missing, 0 mismatched" in result.stderr

    result = cli(store_url, "import-json", str(files), "--archive", "--json")
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: 1 import errors")
    output = json.loads(result.stdout)
    assert (output["imported"], output["skipped"]) == (3, 0)
    assert output["errors"][0][0] == str(bad)
    assert output["archive"][str(good)] == f"archived as {good}.archive"
    assert output["archive"][str(bad)].startswith("kept")
    assert not good.exists() and (files / "good.json.archive").exists() and bad.exists()

    result = cli(store_url, "validate-json", str(bad), "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "missing": ["b2"],
        "mismatched": [],
        "errors": [],
        "ok": False,
    }

    result = cli(store_url, "import-json", str(files / "good.json.archive"))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("imported 0, updated 0, skipped 2, errors 0")
    assert cli(store_url, "validate-json", str(files / "good.json.archive")).exit_code == 0


def test_cli_archive_keeps_mismatched_files(store_url: str, tmp_path: Path) -> None:
    path = write(tmp_path / "s.json", [session("s1")])
    with StateManager(store_url) as sm:
        sm.import_json(path)
        sm.update_instance("s1", 1, status="failed")
    result = cli(store_url, "import-json", str(path), "--archive")
    assert result.exit_code == 0, result.output
    assert "kept: 0 missing, 1 mismatched" in result.stdout
    assert path.exists()


def test_cli_validate_reports_unreadable_files(store_url: str, tmp_path: Path) -> None:
    files = tmp_path / "sessions"
    write(files / "good.json", [session("g1")])
    broken = files / "broken.json"
    broken.write_bytes(b"")
    assert cli(store_url, "import-json", str(files / "good.json")).exit_code == 0
    result = cli(store_url, "validate-json", str(files))
    assert result.exit_code == 1
    assert "Errors" in result.stdout
    assert "0 missing, 0 mismatched, 1 unreadable files" in result.stderr
    result = cli(store_url, "validate-json", str(broken), "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["errors"] == [[str(broken), "empty file"]]


def test_cli_expands_the_home_directory(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    path = write(home / "sessions" / "s.json", [session("s1")])
    result = cli(store_url, "import-json", "~/sessions", "--archive")
    assert result.exit_code == 0, result.output
    assert not path.exists() and (home / "sessions" / "s.json.archive").exists()
    assert cli(store_url, "validate-json", "~/sessions/s.json.archive").exit_code == 0


# Volume ------------------------------------------------------------------------------------


def test_thousand_sessions(sm: StateManager, tmp_path: Path) -> None:
    directory = generate(tmp_path / "many", sessions=1_000, instances=5, messages=10, files=4)
    stats = sm.import_json(directory)
    assert (stats.imported, stats.skipped, stats.errors) == (1_000, 0, [])
    with sm.engine.connect() as connection:
        counts = [
            connection.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one()
            for table in ("sessions", "instances", "chat_messages")
        ]
    assert counts == [1_000, 5_000, 10_000]


def test_refused_batch_inside_a_transaction_block(sm: StateManager, tmp_path: Path) -> None:
    """In a caller's transaction() block, batches and their retries run in savepoints."""
    first, clash = session("first"), session("clash")
    clash["chat_history"][0]["id"] = first["chat_history"][0]["id"]
    path = write(tmp_path / "clash.json", [first, clash])
    with sm.transaction():
        stats = sm.import_json(path)
        assert (stats.imported, [m.split(":")[0] for _, m in stats.errors]) == (
            1,
            ["session clash"],
        )
    assert stored(sm, ["first", "clash"]) == [*dtos([first]), None]


def test_timeout_seconds_takes_the_seeds_whole_u32_range(sm: StateManager, tmp_path: Path) -> None:
    largest = 2**32 - 1
    path = write(
        tmp_path / "timeouts.json",
        [session("big", timeout_seconds=largest), session("over", timeout_seconds=2**32)],
    )
    stats = sm.import_json(path)
    assert stats.imported == 1
    assert [message.split(":")[0] for _, message in stats.errors] == ["session over"]
    (stored_big,) = stored(sm, ["big"])
    assert stored_big is not None and stored_big.timeout_seconds == largest
    assert sm.validate_import(tmp_path / "timeouts.json").missing == ["over"]


def test_nul_and_out_of_range_times_are_reported_and_the_rest_imports(
    sm: StateManager, tmp_path: Path
) -> None:
    nul_task = session("nul-task", task="bad \x00 task")
    nul_chat = session("nul-chat")
    nul_chat["chat_history"][0]["content"] = "bad \x00 content"
    far = session("far", created_at="0001-01-01T00:00:00+05:00")
    backslash = session("backslash", task="a literal \\u0000, not a NUL")
    path = write(tmp_path / "mixed.json", [nul_task, nul_chat, far, backslash, session("ok")])
    assert "\\u0000" in path.read_text()  # json escapes NUL, as every writer must
    stats = sm.import_json(path)
    assert stats.imported == 2
    reasons = dict(message.split(": ", 1) for _, message in stats.errors)
    assert set(reasons) == {"session nul-task", "session nul-chat", "session far"}
    assert "NUL" in reasons["session nul-task"] and "NUL" in reasons["session nul-chat"]
    assert "out of range" in reasons["session far"]
    (kept,) = stored(sm, ["backslash"])
    assert kept is not None and kept.task == "a literal \\u0000, not a NUL"
    assert sm.get_total_sessions() == 2


def test_a_file_without_nul_escapes_still_gets_its_times_checked(
    sm: StateManager, tmp_path: Path
) -> None:
    path = write(tmp_path / "times.json", [session("far", updated_at="9999-12-31T23:59:59-05:00")])
    assert "\\u0000" not in path.read_text()
    stats = sm.import_json(path)
    assert stats.imported == 0 and "out of range" in stats.errors[0][1]


def test_every_problem_of_a_session_is_named_in_the_files_own_key_style(
    sm: StateManager, tmp_path: Path
) -> None:
    snake = session("s1", task=5, status="weird", created_at="nope")
    snake["instances"][0].pop("branch")
    camel_file = camel([session("s2", created_at="nope", chat_history=[{"id": 1}])])
    stats = sm.import_json(write(tmp_path / "snake.json", [snake]))
    (message,) = [error for _, error in stats.errors]
    for problem in ("task:", "status:", "created_at:", "instances.0.branch:"):
        assert problem in message
    stats = sm.import_json(write(tmp_path / "camel.json", camel_file))
    (message,) = [error for _, error in stats.errors]
    assert "createdAt:" in message and "chatHistory.0.role:" in message
    assert "created_at" not in message


def test_the_documented_sample_file_imports(sm: StateManager) -> None:
    sample = Path(__file__).resolve().parents[1] / "docs" / "legacy-sample.json"
    stats = sm.import_json(sample)
    assert (stats.imported, stats.errors) == (2, [])
    assert sm.validate_import(sample).ok
    full = sm.get_worktree_session("0b6f3c1e-5a7d-4f0e-9c61-2d8f4a9e7b10")
    assert full is not None and len(full.instances) == 2 and len(full.chat_history) == 2
