"""Putting a backup back (`restore_backup`, `statekeeper db restore`), the online backup under
running writers, and the confirmations that protect a store's rows (restore, downgrade)."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from statekeeper import InvalidInput, StateManager
from statekeeper.migrate import head_revision, revisions
from tests.crash_worker import context_for, cost_for, output_for
from tests.test_cli import assert_fails, cli, ok_json, seed
from tests.workers import Worker

WRITERS = 3
ACKS_BEFORE_BACKUP = 5
ACKS_AFTER_BACKUP = 5


def _contents(sm: StateManager) -> dict[str, object]:
    """Everything a restore must bring back, comparable across stores."""
    sessions = sorted(sm.get_session_history(1000), key=lambda s: s.id)
    return {
        "sessions": [(s.id, s.subject, s.status, s.cost_usd) for s in sessions],
        "phases": {
            s.id: [(p.phase_id, p.output, p.cost_usd) for p in sm.get_completed_phases(s.id)]
            for s in sessions
        },
        "contexts": {
            s.id: None if (c := sm.load_context(s.id)) is None else c.data for s in sessions
        },
        "events": {s.id: [e.event_type for e in sm.get_events(s.id)] for s in sessions},
    }


def test_restore_puts_the_backup_back(sm: StateManager, tmp_path: Path) -> None:
    sid = sm.create_session("kept", task="research")
    sm.save_phase_completion(sid, "p1", {"a": 1}, 5, "0.04", context={"c": 1})
    sm.save_agent_state({"agent_id": "a1", "status": "running", "state_data": {"n": 1}})
    backup = tmp_path / "b.db"
    sm.backup(backup)
    before = _contents(sm)

    later = sm.create_session("after the backup")
    sm.save_phase_completion(sid, "p2", {"b": 2}, 5, "0.02")
    sm.save_agent_state({"agent_id": "a2", "status": "idle"})

    with pytest.raises(InvalidInput) as refused:
        sm.restore_backup(backup)
    assert refused.value.field == "overwrite"
    assert "--yes" in str(refused.value) and "sessions" in str(refused.value)
    assert sm.get_session(later) is not None  # refused: nothing changed

    restored = sm.restore_backup(backup, overwrite=True)
    assert restored > 0
    assert _contents(sm) == before
    assert sm.get_session(later) is None
    assert sm.load_agent_state("a2") is None
    agent = sm.load_agent_state("a1")
    assert agent is not None and agent.state_data == {"n": 1}
    assert [h.session_id for h in sm.search_sessions("research")] == [sid]
    assert sm.integrity_check().ok
    # The store goes on from there: new rows get fresh keys.
    sm.save_phase_completion(sid, "p2", {"b": 3}, 5, "0.01")
    session = sm.get_session(sid)
    assert session is not None and session.cost_usd == Decimal("0.05")
    assert sm.integrity_check().ok


def test_restore_into_an_empty_store_needs_no_confirmation(
    sm: StateManager, other_engine_url: str, tmp_path: Path
) -> None:
    sid = sm.create_session("moved")
    sm.save_phase_completion(sid, "p1", {"a": 1}, 5, "0.04", context={"c": 1})
    backup = tmp_path / "b.db"
    sm.backup(backup)
    with StateManager(other_engine_url) as other:
        assert other.tables_with_rows() == []
        other.restore_backup(backup)
        assert _contents(other) == _contents(sm)
        assert other.integrity_check().ok


def test_restore_of_a_backup_at_an_older_revision(store_url: str, tmp_path: Path) -> None:
    """A backup taken before the last migration is migrated to head on the way back in; the
    backup file itself is left as it was."""
    old = tmp_path / "old.db"
    previous = revisions()[-2].revision
    with StateManager(tmp_path / "then.db") as then:
        sid = then.create_session("from an older statekeeper")
        then.save_phase_completion(sid, "p1", {"a": 1}, 5, "0.04", context={"c": 1})
        then.downgrade_schema(previous)
        then.backup(old)
    with StateManager(store_url) as sm:
        sm.restore_backup(old)
        session = sm.get_session(sid)
        assert session is not None and session.cost_usd == Decimal("0.04")
        context = sm.load_context(sid)
        assert context is not None and context.data == {"c": 1}
        assert sm.schema_status().revision == head_revision()
        assert sm.integrity_check().ok
    with sqlite3.connect(old) as connection:
        (revision,) = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    connection.close()
    assert revision == previous


def _not_sqlite(path: Path) -> None:
    path.write_bytes(b"this is a text file, not a database\n" * 200)


def _truncated(path: Path, backup: Path) -> None:
    data = backup.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _newer(path: Path, backup: Path) -> None:
    path.write_bytes(backup.read_bytes())
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE alembic_version SET version_num = 'ffff_from_the_future'")
    connection.close()


def _no_schema(path: Path) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE notes (x)")
    connection.close()


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        ("missing", "does not exist"),
        ("directory", "is a directory"),
        ("not_sqlite", "not an SQLite database"),
        ("truncated", "damaged"),
        ("newer", "upgrade statekeeper"),
        ("no_schema", "not a statekeeper store"),
    ],
)
def test_a_bad_backup_is_refused_and_nothing_changes(
    sm: StateManager, tmp_path: Path, make: str, fragment: str
) -> None:
    sid = sm.create_session("precious")
    sm.save_phase_completion(sid, "p1", {"a": 1}, 5, "0.04")
    good = tmp_path / "good.db"
    sm.backup(good)
    for i in range(30):  # enough pages that a half file is missing some
        sm.create_session(f"filler {i}", metadata={"blob": "x" * 2000})
    sm.backup(good)
    before = _contents(sm)
    bad = tmp_path / "bad.db"
    if make == "directory":
        bad.mkdir()
    elif make == "not_sqlite":
        _not_sqlite(bad)
    elif make == "truncated":
        _truncated(bad, good)
    elif make == "newer":
        _newer(bad, good)
    elif make == "no_schema":
        _no_schema(bad)
    with pytest.raises(InvalidInput) as info:
        sm.restore_backup(bad, overwrite=True)
    assert info.value.field == "path"
    assert str(bad) in str(info.value)
    assert fragment in str(info.value)
    assert _contents(sm) == before


def test_restore_refuses_the_store_itself(tmp_path: Path) -> None:
    path = tmp_path / "live.db"
    with StateManager(path) as sm:
        sid = sm.create_session()
        with pytest.raises(InvalidInput, match="the store itself"):
            sm.restore_backup(path, overwrite=True)
        assert sm.get_session(sid) is not None


def _dangling(path: Path, backup: Path) -> None:
    path.write_bytes(backup.read_bytes())
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE phase_completions SET session_id = 'nobody'")
    connection.close()


def test_a_backup_with_dangling_rows_is_refused(sm: StateManager, tmp_path: Path) -> None:
    sid = sm.create_session("old")
    sm.save_phase_completion(sid, "p1", {"a": 1}, 5, "0.04")
    good = tmp_path / "good.db"
    sm.backup(good)
    before = _contents(sm)
    bad = tmp_path / "dangling.db"
    _dangling(bad, good)
    with pytest.raises(InvalidInput, match="references a missing sessions row"):
        sm.restore_backup(bad, overwrite=True)
    assert _contents(sm) == before


@pytest.mark.parametrize("engine_name", ["postgresql"])
def test_a_restore_failing_midway_leaves_the_old_store(store_url: str, tmp_path: Path) -> None:
    """The rows are replaced in one transaction. A backup holding text PostgreSQL refuses
    (a NUL character, which SQLite stores) fails at its insert, after every old row was
    deleted: the old rows are all still there. (On SQLite, test_disk_faults fills the disk
    midway through a restore.)"""
    with StateManager(store_url) as sm:
        sid = sm.create_session("old")
        sm.save_phase_completion(sid, "p1", {"a": 1}, 5, "0.04")
        backup = tmp_path / "nul.db"
        sm.backup(backup)
        before = _contents(sm)
    with sqlite3.connect(backup) as connection:
        connection.execute("UPDATE sessions SET subject = 'a' || char(0) || 'b'")
    connection.close()
    with StateManager(store_url) as sm:
        with pytest.raises(InvalidInput):
            sm.restore_backup(backup, overwrite=True)
        assert _contents(sm) == before
        assert sm.integrity_check().ok


def test_cli_restore(store_url: str, tmp_path: Path) -> None:
    done, running = seed(store_url)
    backup = tmp_path / "b.db"
    assert cli(store_url, "db", "backup", str(backup)).exit_code == 0
    with StateManager(store_url) as sm:
        extra = sm.create_session("extra")
    assert_fails(cli(store_url, "db", "restore", str(backup)), 2, "without --yes")
    with StateManager(store_url) as sm:
        assert sm.get_session(extra) is not None
    result = ok_json(store_url, "db", "restore", str(backup), "--yes")
    assert result["path"] == str(backup) and result["rows"] > 0
    with StateManager(store_url) as sm:
        assert sm.get_session(extra) is None
        assert sm.get_session(done) is not None and sm.get_session(running) is not None
    assert_fails(
        cli(store_url, "db", "restore", str(tmp_path / "nope.db"), "--yes"), 1, "does not exist"
    )
    text = cli(store_url, "db", "restore", str(backup), "--yes").stdout
    assert text.startswith("restored ") and text.endswith(f"rows from {backup}\n")


def test_cli_restore_into_a_new_sqlite_file(store_url: str, tmp_path: Path) -> None:
    done, _ = seed(store_url)
    backup = tmp_path / "b.db"
    assert cli(store_url, "db", "backup", str(backup)).exit_code == 0
    fresh = str(tmp_path / "fresh.db")
    assert cli(fresh, "db", "restore", str(backup)).exit_code == 0
    with StateManager(fresh) as sm:
        assert sm.get_session(done) is not None


def test_cli_downgrade_of_a_store_with_rows_needs_yes(empty_url: str) -> None:
    """On a database of its own: the downgrade leaves it below head."""
    done, _ = seed(empty_url)
    result = cli(empty_url, "db", "downgrade", "base")
    assert_fails(result, 2, "without --yes")
    assert "sessions" in result.stderr
    with StateManager(empty_url, auto_migrate=False) as sm:
        assert sm.schema_status().revision == head_revision()
        assert sm.get_session(done) is not None
    assert ok_json(empty_url, "db", "downgrade", "base", "--yes")["revision"] is None
    with StateManager(empty_url, auto_migrate=False, check_schema=False) as sm:
        assert sm.tables_with_rows() == []
    # An empty store needs no confirmation, at any revision.
    assert ok_json(empty_url, "db", "upgrade")["revision"] == head_revision()
    assert ok_json(empty_url, "db", "downgrade", revisions()[0].revision)["revision"] == (
        revisions()[0].revision
    )


class PhaseWriter(Worker):
    """A tests.crash_worker process saving phases of one session, acking each after commit."""

    def __init__(self, url: str, session_id: str) -> None:
        super().__init__("tests.crash_worker", url, url, session_id)
        self.session_id = session_id

    def acked(self) -> list[str]:
        """The phases acknowledged so far (each one committed before its line was printed)."""
        return [line.split()[1] for line in list(self.lines) if line.startswith("ack ")]

    def wait_for_acks(self, count: int) -> None:
        while len(self.acked()) < count:
            self.wait_for("ack ")


def test_online_backup_holds_every_write_acknowledged_before_it(
    store_url: str, tmp_path: Path, workers: list[Worker]
) -> None:
    """Writers keep committing while the backup runs: every phase acknowledged before the
    backup started is in it, whole (output, cost, the context of its last phase), and the
    backup restores into a store that checks clean."""
    with StateManager(store_url) as sm:
        sessions = [sm.create_session(f"writer {i}", kind="crash") for i in range(WRITERS)]
    writers = [PhaseWriter(store_url, sid) for sid in sessions]
    workers.extend(writers)
    for writer in writers:
        writer.wait_for("ready ")
    for writer in writers:
        writer.wait_for_acks(ACKS_BEFORE_BACKUP)
    acked_before = {w.session_id: w.acked() for w in writers}
    backup = tmp_path / "online.db"
    with StateManager(store_url) as sm:
        sm.backup(backup)
    for writer in writers:  # the writers went on during the backup, and after it
        writer.wait_for_acks(len(acked_before[writer.session_id]) + ACKS_AFTER_BACKUP)
    for writer in writers:
        writer.kill()

    checked = 0
    with StateManager(backup, auto_migrate=False) as copy:
        assert copy.integrity_check().ok
        for sid, acked in acked_before.items():
            stored = [p.phase_id for p in copy.get_completed_phases(sid)]
            assert stored[: len(acked)] == acked, f"{sid}: an acknowledged phase is missing"
            assert stored == [f"p{i}" for i in range(len(stored))]
            for i, phase in enumerate(copy.get_completed_phases(sid)):
                assert phase.output == output_for(i)
                assert phase.cost_usd == cost_for(i)
            context = copy.load_context(sid)
            assert context is not None and context.data == context_for(len(stored) - 1)
            checked += len(acked)
    assert checked >= WRITERS * ACKS_BEFORE_BACKUP
    print(f"{checked} phases acknowledged before the backup, all in it")

    with StateManager(store_url) as sm:
        sm.restore_backup(backup, overwrite=True)
        assert sm.integrity_check().ok
        for sid, acked in acked_before.items():
            stored = [p.phase_id for p in sm.get_completed_phases(sid)]
            assert stored[: len(acked)] == acked
