"""The migration phases in between: importing changes again (`update=True`), and keeping the
legacy files current while the store is primary (`legacy_mirror=DIR`)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from statekeeper import StateManager
from statekeeper.importers import legacy
from statekeeper.services.workspaces import workspace_id
from tests.legacy_fixtures import dtos, message, session, write
from tests.test_legacy_import import cli

ROOT = Path(__file__).resolve().parents[1]


class Abandoned(Exception):
    """Raised inside a block to roll it back."""


# update=True -----------------------------------------------------------------------------


def test_a_change_to_the_file_arrives_with_update_only(sm: StateManager, tmp_path: Path) -> None:
    running = session("s1", status="running", completed_at=None, total_duration=None)
    path = write(tmp_path / "ws.json", [running, session("s2")])
    sm.import_json(path)
    changed = session("s1")  # completed since, with one more message
    changed["chat_history"].append(message("s1", 9, content="written by the old app later"))
    changed["instances"][0]["status"] = "failed"
    write(path, [changed, session("s2")])

    plain = sm.import_json(path)
    assert (plain.imported, plain.updated, plain.skipped) == (0, 0, 2)
    assert len(sm.get_chat_history("s1")) == 3

    updated = sm.import_json(path, update=True)
    assert (updated.imported, updated.updated, updated.skipped, updated.errors) == (0, 1, 1, [])
    assert sm.get_worktree_session("s1") == dtos([changed])[0]
    assert sm.validate_import(path).ok

    again = sm.import_json(path, update=True)
    assert (again.imported, again.updated, again.skipped) == (0, 0, 2)


def test_update_imports_new_sessions_and_never_deletes(sm: StateManager, tmp_path: Path) -> None:
    path = write(tmp_path / "ws.json", [session("s1"), session("s2")])
    sm.import_json(path)
    write(path, [session("s1"), session("s3")])
    stats = sm.import_json(path, update=True)
    assert (stats.imported, stats.updated, stats.skipped) == (1, 0, 1)
    assert sm.get_worktree_session("s2") is not None  # gone from the file, kept in the store


def test_update_keeps_a_completed_session_completed(sm: StateManager, tmp_path: Path) -> None:
    path = write(tmp_path / "ws.json", [session("s1")])
    sm.import_json(path)
    write(path, [session("s1", status="running", completed_at=None)])
    stats = sm.import_json(path, update=True)
    assert stats.updated == 0 and len(stats.errors) == 1
    assert "s1" in stats.errors[0][1] and "completed" in stats.errors[0][1]
    stored = sm.get_worktree_session("s1")
    assert stored is not None and stored.status == "completed"


def test_the_cli_updates_with_update(store_url: str, tmp_path: Path) -> None:
    path = write(tmp_path / "ws.json", [session("s1")])
    assert cli(store_url, "import-json", str(path)).exit_code == 0
    write(path, [session("s1", task="a new task")])
    result = cli(store_url, "import-json", str(path), "--update", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["updated"] == 1


# legacy_mirror=DIR -----------------------------------------------------------------------


def mirrored(directory: Path, workspace: Path) -> list[dict[str, Any]]:
    """The mirror file of a workspace, parsed."""
    data = json.loads((directory / f"{workspace_id(workspace)}.json").read_text())
    assert isinstance(data, list)
    return data


def expected(sm: StateManager, workspace: Path) -> list[dict[str, Any]]:
    """The workspace's sessions in the legacy format, oldest first."""
    return [legacy.dump(s) for s in reversed(sm.list_worktree_sessions(workspace))]


def test_the_mirror_follows_every_committed_change(
    open_sm: Callable[..., StateManager], tmp_path: Path
) -> None:
    mirror, workspace = tmp_path / "mirror", tmp_path / "project"
    workspace.mkdir()
    sm = open_sm(legacy_mirror=mirror)
    sid = sm.create_session("competition", kind="competition", task="fix", workspace=workspace)
    assert mirrored(mirror, workspace) == expected(sm, workspace)
    sm.add_instance(sid, 1, worktree_path="/w/1", branch="b1", agent_name="a", tmux_session_id="t1")
    sm.add_chat_message(sid, "user", "go")
    sm.update_instance(sid, 1, status="running", output="working")
    sm.update_session_status(sid, "completed")
    data = mirrored(mirror, workspace)
    assert data == expected(sm, workspace)
    assert data[0]["status"] == "completed" and data[0]["chat_history"][0]["content"] == "go"
    assert data[0]["instances"][0]["output"] == "working"

    other = sm.create_session("second", workspace=workspace)
    assert [s["id"] for s in mirrored(mirror, workspace)] == [sid, other]
    sm.delete_session(sid)
    assert [s["id"] for s in mirrored(mirror, workspace)] == [other]
    sm.create_session("no workspace, no file")
    assert sorted(p.name for p in mirror.iterdir()) == [f"{workspace_id(workspace)}.json"]


def test_a_rolled_back_block_leaves_the_mirror_untouched(
    open_sm: Callable[..., StateManager], tmp_path: Path
) -> None:
    mirror, workspace = tmp_path / "mirror", tmp_path / "project"
    sm = open_sm(legacy_mirror=mirror)
    sid = sm.create_session("kept", workspace=workspace)
    path = mirror / f"{workspace_id(workspace)}.json"
    before = (path.read_bytes(), path.stat().st_mtime_ns)

    def abandon() -> None:
        with sm.transaction():
            sm.add_chat_message(sid, "user", "never committed")
            raise Abandoned

    with pytest.raises(Abandoned):
        abandon()
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before

    with sm.transaction():
        sm.add_chat_message(sid, "user", "one")
        sm.add_chat_message(sid, "assistant", "two")
        assert path.read_bytes() == before[0]  # not before the block commits
    assert [m["content"] for m in mirrored(mirror, workspace)[0]["chat_history"]] == [
        "one",
        "two",
    ]


def test_the_mirror_imports_back_unchanged(
    open_sm: Callable[..., StateManager], tmp_path: Path
) -> None:
    """The way back: the mirror directory is a complete set of legacy files."""
    mirror = tmp_path / "mirror"
    source = write(tmp_path / "legacy" / "0123456789abcdef.json", [session("a"), session("b")])
    sm = open_sm(legacy_mirror=mirror)
    sm.import_json(source.parent, workspace=tmp_path / "project")
    sm.add_chat_message("a", "user", "added after the import")
    report = sm.validate_import(mirror)
    assert report.ok, report
    with StateManager(tmp_path / "rolled-back.db") as fresh:
        stats = fresh.import_json(mirror)
        assert (stats.imported, stats.errors) == (2, [])
        for sid in ("a", "b"):
            assert fresh.get_worktree_session(sid) == sm.get_worktree_session(sid)


def test_retention_rewrites_the_mirror(
    open_sm: Callable[..., StateManager], tmp_path: Path
) -> None:
    mirror, workspace = tmp_path / "mirror", tmp_path / "project"
    sm = open_sm(legacy_mirror=mirror)
    done = sm.create_session("old", workspace=workspace)
    kept = sm.create_session("running", workspace=workspace)
    sm.update_session_status(done, "failed")
    assert sm.cleanup_old_sessions(0) == 1
    assert [s["id"] for s in mirrored(mirror, workspace)] == [kept]


def test_the_mirror_directory_comes_from_the_environment(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STATEKEEPER_LEGACY_MIRROR", str(tmp_path / "from-env"))
    with StateManager(store_url) as sm:
        sm.create_session("mirrored", workspace=tmp_path)
    assert (tmp_path / "from-env" / f"{workspace_id(tmp_path)}.json").exists()


_WRITER = """
import sys
from statekeeper import StateManager
url, mirror, workspace = sys.argv[1:]
with StateManager(url, legacy_mirror=mirror) as sm:
    sid = sm.create_session("busy", workspace=workspace, task="x" * 100_000)
    print("ready", flush=True)
    for n in range(1_000_000):
        sm.add_chat_message(sid, "user", f"message {n} " + "y" * 2_000)
"""


def test_a_sigkill_while_mirroring_leaves_a_whole_file(store_url: str, tmp_path: Path) -> None:
    mirror, workspace = tmp_path / "mirror", tmp_path / "project"
    path = mirror / f"{workspace_id(workspace)}.json"
    rng = random.Random(7)
    lengths = []
    for _ in range(8):
        worker = subprocess.Popen(
            [sys.executable, "-c", _WRITER, store_url, str(mirror), str(workspace)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert worker.stdout is not None and worker.stdout.readline() == "ready\n"
        time.sleep(rng.uniform(0.05, 0.3))
        worker.kill()
        worker.wait()
        worker.stdout.close()
        data = json.loads(path.read_text())  # whole: the old file or the new one
        lengths.append(sum(len(s["chat_history"]) for s in data))
    assert sum(lengths) > 0, "the workers never got to write"
    leftovers = [p.name for p in mirror.iterdir() if p.name.endswith(".tmp")]
    assert len(leftovers) <= 8  # a killed write may leave its temporary file, never the real one
