"""Units of work: transaction blocks, isolation between threads and processes, retries."""

from __future__ import annotations

import contextvars
import json
import multiprocessing
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from statekeeper import ImportFailed, InvalidInput, SessionNotFound, StateManager, StorageBusy
from statekeeper.db import RetryPolicy
from tests.async_facade import AsyncFacade
from tests.conftest import PgDatabases


def test_transaction_commits_everything_together(sm: StateManager) -> None:
    with sm.transaction():
        sid = sm.create_session("tx")
        sm.save_phase_completion(sid, "p1", {}, 1, "0.5")
        sm.save_context(sid, {"k": "v"})
        assert sm.get_session(sid) is not None  # reads see the block's own writes
    session = sm.get_session(sid)
    assert session is not None and session.cost_usd == Decimal("0.5")


class CallerFailed(Exception):
    """Raised by test code inside a transaction block, carrying what it had created."""


def _fail_in_block(sm: StateManager, work: Callable[[], str]) -> None:
    with sm.transaction():
        raise CallerFailed(work())


def test_transaction_rolls_back_everything_on_error(sm: StateManager) -> None:
    existing = sm.create_session("before")

    def work() -> str:
        sid = sm.create_session("tx")
        sm.save_phase_completion(existing, "p1", {}, 1, "0.5")
        return sid

    with pytest.raises(CallerFailed) as info:
        _fail_in_block(sm, work)
    sid = info.value.args[0]
    assert sm.get_session(sid) is None
    assert sm.get_completed_phases(existing) == []
    assert sm.get_total_sessions() == 1


def test_rejected_call_inside_a_block_writes_nothing_and_the_block_goes_on(
    sm: StateManager, tmp_path: Path
) -> None:
    source = sm.create_session("source")
    sm.save_phase_completion(source, "p", {}, 1, 0)
    path = tmp_path / "doc.json"
    sm.export_session(source, path)
    sm.delete_session(source)
    document = json.loads(path.read_text())
    # The session row inserts fine; the phase row then violates a CHECK in the database.
    document["tables"]["phase_completions"][0]["duration_ms"] = -5
    path.write_text(json.dumps(document))
    with sm.transaction():
        kept = sm.create_session("kept")
        with pytest.raises(ImportFailed):
            sm.import_session(path)
        with pytest.raises(SessionNotFound):
            sm.save_context("missing", {})
        sm.save_context(kept, {"still": "here"})
    assert sm.get_session(source) is None
    context = sm.load_context(kept)
    assert context is not None and context.data == {"still": "here"}


def test_rejected_writes_leave_the_connection_usable(sm: StateManager) -> None:
    # On PostgreSQL, psycopg prepares a statement on its sixth run: here once in a batch that
    # the taken id aborted, so the statement was never prepared. Its next run used to fail.
    for n in range(12):
        sm.create_session("taken", session_id=f"s{n}")
        with pytest.raises(InvalidInput, match="already exists"):
            sm.create_session("taken", session_id=f"s{n}")
    assert sm.get_statistics().total_sessions == 12


def test_nested_blocks_join_the_outer_one(sm: StateManager) -> None:
    def work() -> str:
        with sm.transaction():
            return sm.create_session()

    with pytest.raises(CallerFailed) as info:
        _fail_in_block(sm, work)
    assert sm.get_session(info.value.args[0]) is None


def test_other_threads_are_not_part_of_a_block(sync_sm: StateManager) -> None:
    """Even a thread that copies the block's context (as asyncio.to_thread does)."""
    sm = sync_sm
    seen: list[int] = []
    with sm.transaction():
        sm.create_session("uncommitted")
        worker = threading.Thread(target=lambda: seen.append(sm.get_total_sessions()))
        worker.start()
        worker.join()
        context = contextvars.copy_context()
        copied = threading.Thread(
            target=context.run, args=(lambda: seen.append(sm.get_total_sessions()),)
        )
        copied.start()
        copied.join()
    assert seen == [0, 0]
    assert sm.get_total_sessions() == 1


def _append_phases(url: str, session_id: str, worker: int, count: int) -> None:
    with StateManager(url) as sm:
        for i in range(count):
            sm.save_phase_completion(session_id, f"w{worker}-p{i}", {"w": worker}, 1, "0.01")
            sm.record_event("tick", f"{worker}/{i}", session_id=session_id)


def test_concurrent_processes_lose_nothing(sm: StateManager, store_url: str) -> None:
    sid = sm.create_session("shared")
    workers, count = 4, 25
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_append_phases, args=(store_url, sid, w, count))
        for w in range(workers)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
        assert process.exitcode == 0
    phases = sm.get_completed_phases(sid)
    assert len(phases) == workers * count
    session = sm.get_session(sid)
    assert session is not None and session.cost_usd == Decimal("0.01") * workers * count
    assert len(sm.get_events_by_type("tick")) == workers * count
    assert sm.integrity_check().ok


def test_sqlite_lock_held_too_long_raises_storage_busy(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    with StateManager(path, busy_timeout_ms=20) as sm:
        sid = sm.create_session()
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            started = time.monotonic()
            with pytest.raises(StorageBusy):
                sm.save_phase_completion(sid, "p", {}, 1, "1")
            assert time.monotonic() - started < 10
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert sm.get_completed_phases(sid) == []
        sm.save_phase_completion(sid, "p", {}, 1, "1")
        assert sm.is_phase_completed(sid, "p")


def test_sqlite_writers_of_one_process_wait_for_their_turn_then_are_told_busy(
    tmp_path: Path,
) -> None:
    with StateManager(tmp_path / "turns.db", busy_timeout_ms=50) as sm:
        sid = sm.create_session()
        turns = sm._db._turns
        assert turns is not None
        turns.take()  # as another thread's write, still running
        try:
            with pytest.raises(StorageBusy, match="other writers in this process"):
                sm.save_phase_completion(sid, "p", {}, 1, "1")
            assert sm.get_completed_phases(sid) == []  # and reads never wait for a turn
        finally:
            turns.give_up()
        sm.save_phase_completion(sid, "p", {}, 1, "1")
        assert sm.is_phase_completed(sid, "p")


def test_a_forked_child_does_not_wait_for_a_parent_threads_turn(tmp_path: Path) -> None:
    with StateManager(tmp_path / "fork.db", busy_timeout_ms=200) as sm:
        turns = sm._db._turns
        assert turns is not None
        turns.take()
        try:
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the child reports by its exit code
                code = 1
                try:
                    sm.create_session(session_id="child")
                    code = 0
                finally:
                    os._exit(code)
            _, status = os.waitpid(pid, 0)
        finally:
            turns.give_up()
        assert os.waitstatus_to_exitcode(status) == 0
        assert sm.get_session("child") is not None


@dataclass(frozen=True)
class ReleaseOnRetry(RetryPolicy):
    """The default policy that also releases the blocking lock once a busy attempt has failed."""

    release: Callable[[], object] = lambda: None
    failures: list[int] = field(default_factory=list)

    def after(self, exc: Exception, attempt: int, store: URL | None = None) -> float:
        self.failures.append(attempt)
        if attempt == 0:
            self.release()
        return super().after(exc, attempt, store)


def test_sqlite_retries_until_the_lock_is_released(tmp_path: Path) -> None:
    path = tmp_path / "retry.db"
    with StateManager(path, busy_timeout_ms=10) as sm:
        sid = sm.create_session()
        blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        blocker.execute("BEGIN IMMEDIATE")
        policy = ReleaseOnRetry(release=lambda: blocker.execute("ROLLBACK"))
        sm._db.retry = policy  # released after the first failure, not on a timer
        try:
            sm.save_phase_completion(sid, "p", {}, 1, "1")
        finally:
            blocker.close()
        assert policy.failures == [0]  # the first attempt met the lock, the retry succeeded
        assert sm.is_phase_completed(sid, "p")


@pytest.mark.parametrize("engine_name", ["postgresql"], indirect=True)
def test_postgres_lock_timeout_raises_storage_busy(store_url: str) -> None:
    options: dict[str, Any] = {"connect_args": {"options": "-c lock_timeout=50"}}
    with StateManager(store_url) as holder, StateManager(store_url, **options) as sm:
        sid = holder.create_session()
        with holder.transaction():
            holder.save_context(sid, {"holder": True})  # holds the session row lock
            with pytest.raises(StorageBusy):
                sm.save_phase_completion(sid, "p", {}, 1, "1")
        assert sm.get_completed_phases(sid) == []
        context = sm.load_context(sid)
        assert context is not None and context.data == {"holder": True}


def _drop_connections(admin: sa.Engine, database: str) -> int:
    """End every server process serving `database`, as a server restart would, and wait
    until they are gone."""
    with admin.connect() as connection:
        ended = connection.execute(
            sa.text(
                "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
                "WHERE datname = :db AND pid <> pg_backend_pid()"
            ),
            {"db": database},
        ).scalar_one()
    return int(ended)


def test_postgres_lost_connections_are_replaced_without_a_failed_call(
    pg_databases: PgDatabases, pg_admin: sa.Engine
) -> None:
    url = pg_databases.create()
    with StateManager(url) as sm:
        sid = sm.create_session("survives")
        sm.save_phase_completion(sid, "p1", {}, 1, "0.10")
        assert _drop_connections(pg_admin, str(url.database)) >= 1
        assert sm.get_session(sid) is not None  # a read on a dead pooled connection
        assert _drop_connections(pg_admin, str(url.database)) >= 1
        sm.save_phase_completion(sid, "p2", {}, 1, "0.20")  # a write
        session = sm.get_session(sid)
        assert session is not None and session.cost_usd == Decimal("0.30")
        assert [p.phase_id for p in sm.get_completed_phases(sid)] == ["p1", "p2"]
        assert len(sm.get_events(sid)) == 3  # created, and each phase once


@dataclass(frozen=True)
class CountingRetries(RetryPolicy):
    """The default policy, counting the failed attempts it is asked about."""

    failures: list[str] = field(default_factory=list)

    def after(self, exc: Exception, attempt: int, store: URL | None = None) -> float:
        self.failures.append(type(exc).__name__)
        return super().after(exc, attempt, store)


def test_postgres_a_restart_costs_one_retry_however_many_connections_were_pooled(
    pg_databases: PgDatabases, pg_admin: sa.Engine
) -> None:
    """The first connection found lost starts the pool afresh: the others, lost too, are
    not met one retry at a time."""
    url = pg_databases.create()
    with StateManager(url) as sm:
        held = [sm._db._parked.take() for _ in range(7)]  # each one connected
        for pooled in held:
            sm._db._parked.give_back(pooled, clean=True)  # 4 parked, 3 back in the pool
        assert _drop_connections(pg_admin, str(url.database)) >= 7
        retry = sm._db.retry = CountingRetries()
        sid = sm.create_session("after a restart")
        assert retry.failures == ["Reconnect"]
        assert [e.event_type for e in sm.get_events(sid)] == ["session.created"]


@pytest.mark.parametrize("manager_kind", ["sync", "async"])
def test_postgres_a_one_round_trip_write_on_a_lost_connection_runs_once(
    pg_databases: PgDatabases, pg_admin: sa.Engine, manager_kind: str
) -> None:
    """create_session sends BEGIN, its statements and COMMIT in one batch. The server had
    ended the session before reading it (SQLSTATE 57P01), so nothing committed and the
    call runs again: the session exists once, with one creation event."""
    url = pg_databases.create()
    manager = StateManager if manager_kind == "sync" else AsyncFacade
    with manager(url) as sm:
        sm.get_total_sessions()  # a pooled connection to lose
        assert _drop_connections(pg_admin, str(url.database)) >= 1
        sid = sm.create_session("after a restart")
        assert sm.get_total_sessions() == 1
        assert [e.event_type for e in sm.get_events(sid)] == ["session.created"]
