"""The `statekeeper` command on SQLite and PostgreSQL: output, exit codes and error lines."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from statekeeper import StateManager
from statekeeper.cli import app
from statekeeper.migrate import head_revision, revisions

runner = CliRunner()
ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00")


def cli(url: str, *args: str, stdin: str | None = None) -> Result:
    """Run `statekeeper --url URL ARGS...` in-process."""
    return runner.invoke(app, ["--url", url, *args], input=stdin, catch_exceptions=False)


def ok_json(url: str, *args: str) -> Any:
    """Run a command with --json, check it succeeded, and parse its stdout."""
    result = cli(url, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def assert_fails(result: Result, code: int, fragment: str) -> None:
    """The command failed with `code` and said so in one stderr line, without a traceback."""
    assert result.exit_code == code, result.output
    assert result.stderr.startswith("error: ")
    assert result.stderr.count("\n") == 1
    assert fragment in result.stderr
    assert "Traceback" not in result.output


def seed(url: str) -> tuple[str, str]:
    """A completed session with two phases and a context, then a running one."""
    with StateManager(url) as sm:
        done = sm.create_session("[b]acme[/b]", task="research", metadata={"team": "x"})
        sm.save_phase_completion(done, "plan", {"steps": 2}, 1200, "0.02", context={"k": "v"})
        sm.save_phase_completion(done, "build", ["ok"], 300, "0.03")
        sm.update_session_status(done, "completed")
        running = sm.create_session("globex", kind="debate")
    return done, running


def session_exists(url: str, session_id: str) -> bool:
    with StateManager(url) as sm:
        return sm.get_session(session_id) is not None


# db -------------------------------------------------------------------------------------


def test_db_commands_on_a_store_at_head(store_url: str) -> None:
    head = head_revision()
    assert ok_json(store_url, "db", "current") == {"revision": head, "head": head, "at_head": True}
    assert ok_json(store_url, "db", "check")["at_head"] is True
    assert cli(store_url, "db", "current").stdout == f"{head} (head)\n"

    entries = ok_json(store_url, "db", "history")
    assert [e["revision"] for e in entries] == [r.revision for r in revisions()]
    assert entries[-1]["revision"] == head
    for entry in entries:
        assert entry["applied"] is True
        assert datetime.fromisoformat(entry["applied_at"]).tzinfo is not None
    table = cli(store_url, "db", "history")
    assert table.exit_code == 0
    assert head in table.stdout
    assert ISO_TIME.search(table.stdout)


def test_db_check_fails_on_an_empty_database(empty_url: str, engine_name: str) -> None:
    if engine_name == "sqlite":
        Path(empty_url).touch()  # an empty file is an empty SQLite database
    result = cli(empty_url, "db", "check", "--json")
    assert json.loads(result.stdout) == {
        "revision": None,
        "head": head_revision(),
        "at_head": False,
    }
    assert_fails(result, 1, "run `statekeeper db upgrade`")
    assert cli(empty_url, "db", "current").stdout.startswith("<empty> (not at head")


def test_db_upgrade_then_downgrade(empty_url: str) -> None:
    head = head_revision()
    assert ok_json(empty_url, "db", "upgrade")["revision"] == head
    with StateManager(empty_url, auto_migrate=False) as sm:
        assert sm.get_total_sessions() == 0
    assert cli(empty_url, "db", "upgrade").stdout == f"{head} (head)\n"

    first = revisions()[0].revision
    assert ok_json(empty_url, "db", "downgrade", first)["revision"] == first
    applied = [e["applied"] for e in ok_json(empty_url, "db", "history")]
    assert applied == [True] + [False] * (len(revisions()) - 1)
    assert ok_json(empty_url, "db", "downgrade", "base")["revision"] is None
    for entry in ok_json(empty_url, "db", "history"):
        assert entry["applied"] is False
        assert entry["applied_at"] is None
    assert cli(empty_url, "db", "downgrade", "base").stdout.startswith("<empty>")


def test_db_backup(store_url: str, tmp_path: Path) -> None:
    done, _ = seed(store_url)
    target = tmp_path / "backup" / "copy.db"
    assert ok_json(store_url, "db", "backup", str(target)) == {"path": str(target)}
    with StateManager(target, auto_migrate=False) as copy:
        assert copy.get_total_sessions() == 2
        assert copy.get_session(done) is not None
    assert cli(store_url, "db", "backup", str(target)).stdout == f"backed up to {target}\n"


def test_db_copy(store_url: str, tmp_path: Path) -> None:
    done, _ = seed(store_url)
    target = str(tmp_path / "copied.db")
    result = ok_json(store_url, "db", "copy", target)
    assert result["target"] == target and result["rows"] > 5
    with StateManager(target, auto_migrate=False) as copy:
        assert copy.get_total_sessions() == 2
        assert copy.get_completed_phases(done)[1].phase_id == "build"
    assert_fails(cli(store_url, "db", "copy", target), 1, "already holds rows")


def test_unsupported_url_is_one_line() -> None:
    assert_fails(cli("mysql://localhost/db", "db", "current"), 1, "unsupported database")


# sessions -------------------------------------------------------------------------------


def test_sessions_list_filters_and_pages(store_url: str) -> None:
    done, running = seed(store_url)
    everything = ok_json(store_url, "sessions", "list")
    assert {s["id"] for s in everything} == {done, running}
    by_id = {s["id"]: s for s in everything}
    assert by_id[done]["cost_usd"] == "0.05000000"
    assert by_id[done]["status"] == "completed"

    assert [s["id"] for s in ok_json(store_url, "sessions", "list", "--status", "completed")] == [
        done
    ]
    assert [s["id"] for s in ok_json(store_url, "sessions", "list", "--kind", "debate")] == [
        running
    ]
    (first,) = ok_json(store_url, "sessions", "list", "--limit", "1")
    (second,) = ok_json(store_url, "sessions", "list", "--limit", "1", "--before", first["id"])
    assert [first["id"], second["id"]] == [s["id"] for s in everything]

    table = cli(store_url, "sessions", "list").stdout
    assert done in table
    assert running in table
    assert "[b]acme[/b]" in table  # stored text is never read as rich markup
    assert "0.05000000" in table


def test_sessions_list_rejects_a_bad_status(store_url: str) -> None:
    result = cli(store_url, "sessions", "list", "--status", "bogus")
    assert_fails(result, 1, "invalid status")
    assert result.stdout == ""


def test_sessions_show(store_url: str) -> None:
    done, _ = seed(store_url)
    shown = ok_json(store_url, "sessions", "show", done)
    assert shown["session"]["id"] == done
    assert shown["session"]["metadata"] == {"team": "x"}
    assert shown["session"]["cost_usd"] == "0.05000000"
    assert [p["phase_id"] for p in shown["phases"]] == ["plan", "build"]
    assert shown["phases"][0]["output"] == {"steps": 2}
    assert shown["context"] == {
        "data": {"k": "v"},
        "last_completed_phase": "build",
        "accumulated_cost": "0.05000000",
    }

    text = cli(store_url, "sessions", "show", done).stdout
    assert done in text
    assert "plan" in text
    assert "0.02000000" in text
    assert ISO_TIME.search(text)


def test_sessions_show_instances_and_chat(store_url: str) -> None:
    with StateManager(store_url) as sm:
        sid = sm.create_session("worktree", kind="competition")
        sm.add_instance(
            sid, 1, worktree_path="/w/1", branch="agent-1", agent_name="dev", tmux_session_id="t"
        )
        sm.add_chat_message(sid, "user", "fix the flaky test", instance_number=1)
    shown = ok_json(store_url, "sessions", "show", sid)
    assert [(i["instance_id"], i["branch"]) for i in shown["instances"]] == [(1, "agent-1")]
    assert [(m["role"], m["content"]) for m in shown["chat"]] == [("user", "fix the flaky test")]
    text = cli(store_url, "sessions", "show", sid).stdout
    assert "agent-1" in text and "fix the flaky test" in text


def test_version() -> None:
    from statekeeper import __version__

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"statekeeper {__version__}\n"


def test_sessions_show_without_context(store_url: str) -> None:
    _, running = seed(store_url)
    assert ok_json(store_url, "sessions", "show", running)["context"] is None
    assert "no saved context" in cli(store_url, "sessions", "show", running).stdout


def test_sessions_show_unknown_id(store_url: str) -> None:
    assert_fails(cli(store_url, "sessions", "show", "nope"), 1, "session not found")


def test_sessions_export_delete_import_round_trip(store_url: str, tmp_path: Path) -> None:
    done, _ = seed(store_url)
    path = tmp_path / "session.json"
    assert ok_json(store_url, "sessions", "export", done, str(path)) == {
        "session_id": done,
        "path": str(path),
    }
    before = ok_json(store_url, "sessions", "show", done)
    assert ok_json(store_url, "sessions", "delete", done, "--yes") == {
        "session_id": done,
        "deleted": True,
    }
    assert not session_exists(store_url, done)

    assert ok_json(store_url, "sessions", "import", str(path)) == {"session_id": done}
    assert ok_json(store_url, "sessions", "show", done) == before

    assert cli(store_url, "sessions", "export", done, str(path)).stdout.startswith("exported")
    assert cli(store_url, "sessions", "delete", done, "-y").stdout == f"deleted {done}\n"
    assert cli(store_url, "sessions", "import", str(path)).stdout == f"imported {done}\n"


def test_sessions_import_missing_file(store_url: str, tmp_path: Path) -> None:
    result = cli(store_url, "sessions", "import", str(tmp_path / "missing.json"), "--json")
    assert_fails(result, 1, "missing.json")
    assert result.stdout == ""


def test_sessions_export_to_an_unusable_path(store_url: str, tmp_path: Path) -> None:
    done, _ = seed(store_url)
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert_fails(cli(store_url, "sessions", "export", done, str(blocker / "x.json")), 1, "file")


def test_sessions_delete_refuses_without_yes(store_url: str) -> None:
    done, _ = seed(store_url)
    assert_fails(cli(store_url, "sessions", "delete", done), 2, "without --yes")
    assert session_exists(store_url, done)


def test_sessions_delete_asks_a_person(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    done, _ = seed(store_url)
    monkeypatch.setattr("statekeeper.cli.sessions._can_ask", lambda: True)
    assert cli(store_url, "sessions", "delete", done, stdin="n\n").exit_code == 1
    assert session_exists(store_url, done)
    result = cli(store_url, "sessions", "delete", done, stdin="y\n")
    assert result.exit_code == 0
    assert f"Delete session {done}?" in result.stderr  # the prompt keeps off stdout
    assert result.stdout.endswith(f"deleted {done}\n")
    assert not session_exists(store_url, done)


def test_sessions_delete_unknown_id(store_url: str) -> None:
    assert_fails(cli(store_url, "sessions", "delete", "nope", "--yes"), 1, "session not found")


def test_sessions_cleanup(store_url: str) -> None:
    done, running = seed(store_url)
    assert ok_json(store_url, "sessions", "cleanup", "--days", "1") == {"deleted": 0}
    assert cli(store_url, "sessions", "cleanup", "--days", "0").stdout == "deleted 1 sessions\n"
    assert not session_exists(store_url, done)
    assert session_exists(store_url, running)
    assert_fails(cli(store_url, "sessions", "cleanup", "--days", "-1"), 1, "invalid days")


# stats and configuration ----------------------------------------------------------------


def test_stats(store_url: str) -> None:
    seed(store_url)
    report = ok_json(store_url, "stats", "--days", "3")
    assert report["statistics"] == {
        "total_sessions": 2,
        "completed_sessions": 1,
        "failed_sessions": 0,
        "avg_cost_usd": "0.05000000",
        "avg_duration_ms": report["statistics"]["avg_duration_ms"],
    }
    assert len(report["cost_trends"]) == 3
    assert report["cost_trends"][-1]["sessions"] == 2
    assert report["cost_trends"][-1]["cost_usd"] == "0.05000000"

    text = cli(store_url, "stats").stdout
    assert "total_sessions" in text
    assert "0.05000000" in text
    assert_fails(cli(store_url, "stats", "--days", "0"), 1, "invalid days")


def test_stats_plot(store_url: str, tmp_path: Path) -> None:
    seed(store_url)
    image = tmp_path / "overview.png"
    result = cli(store_url, "stats", "--plot", str(image))
    assert result.exit_code == 0, result.stdout
    assert f"plots written to {image}" in result.stdout
    assert image.read_bytes().startswith(b"\x89PNG")


def test_stats_plot_without_matplotlib_is_one_line(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    result = cli(store_url, "stats", "--plot", str(tmp_path / "x.png"))
    assert_fails(result, 1, "statekeeper[analytics]")
    assert not (tmp_path / "x.png").exists()


def test_url_from_the_environment(store_url: str) -> None:
    done, running = seed(store_url)
    result = runner.invoke(app, ["sessions", "list", "--json"], env={"STATEKEEPER_URL": store_url})
    assert result.exit_code == 0, result.output
    assert {s["id"] for s in json.loads(result.stdout)} == {done, running}


def test_installed_executable(tmp_path: Path) -> None:
    executable = shutil.which("statekeeper", path=str(Path(sys.executable).parent))
    assert executable is not None, "statekeeper is not installed in this environment"
    url = str(tmp_path / "state.db")
    done, running = seed(url)

    listed = subprocess.run(
        [executable, "--url", url, "sessions", "list", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert {s["id"] for s in json.loads(listed.stdout)} == {done, running}

    missing = subprocess.run(
        [executable, "--url", url, "sessions", "show", "nope"], capture_output=True, text=True
    )
    assert missing.returncode == 1
    assert missing.stdout == ""
    assert missing.stderr == "error: session not found: 'nope'\n"


def test_read_only_db_commands_do_not_create_a_database(tmp_path: Path) -> None:
    missing = tmp_path / "typo.db"
    for command in (["db", "current"], ["db", "check"], ["db", "history"]):
        assert_fails(cli(str(missing), *command), 1, "no store at")
    assert_fails(cli(str(missing), "db", "backup", str(tmp_path / "b.db")), 1, "no store at")
    assert not missing.exists()


def test_db_backup_of_a_store_behind_head(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with StateManager(path) as sm:
        sid = sm.create_session("before the upgrade")
    from statekeeper.config import create_engine, resolve_url

    engine = create_engine(resolve_url(path))
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("UPDATE alembic_version SET version_num = 'older'")
    finally:
        engine.dispose()
    backup = tmp_path / "old-backup.db"
    assert cli(str(path), "db", "backup", str(backup)).exit_code == 0
    with sqlite3.connect(backup) as copy:
        assert copy.execute("SELECT subject FROM sessions WHERE id = ?", (sid,)).fetchone() == (
            "before the upgrade",
        )


@pytest.mark.parametrize("engine_name", ["postgresql"], indirect=True)
def test_db_backup_of_postgres_behind_head_is_refused(store_url: str, tmp_path: Path) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(store_url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("UPDATE alembic_version SET version_num = 'older'")
        assert_fails(cli(store_url, "db", "backup", str(tmp_path / "b.db")), 1, "db upgrade")
    finally:
        with engine.begin() as connection:
            connection.execute(
                sa.text("UPDATE alembic_version SET version_num = :v"), {"v": head_revision()}
            )
        engine.dispose()
    assert not (tmp_path / "b.db").exists()


def test_sessions_search(store_url: str) -> None:
    done, _ = seed(store_url)
    (hit,) = ok_json(store_url, "sessions", "search", "research")
    assert hit["session_id"] == done
    assert hit["source"] == "task"
    assert "[research]" in hit["snippet"]
    assert ok_json(store_url, "sessions", "search", '"(* NEAR') == []
    table = cli(store_url, "sessions", "search", "research")
    assert table.exit_code == 0
    assert done in table.stdout
    assert_fails(cli(store_url, "sessions", "search", "x", "--limit", "0"), 1, "limit")
    nothing = cli(store_url, "sessions", "search", "nowhere")
    assert (nothing.exit_code, nothing.stdout) == (0, "no session matches 'nowhere'\n")
