"""What only the async manager has: tasks, its own blocks, AsyncSessions, opening and closing.

Its operations themselves are covered by the whole behaviour suite, which runs on both
managers (the `sm` fixture); these tests drive asyncio directly.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from statekeeper import (
    AsyncStateManager,
    InvalidInput,
    ReadOnlyError,
    SchemaOutOfDate,
    SessionNotFound,
    StorageBusy,
)
from statekeeper.models import PhaseRow, SessionRow


def run(url: str, test: Callable[[AsyncStateManager], Awaitable[Any]]) -> Any:
    """Run `test` with an open manager on `url` in a fresh event loop."""

    async def main() -> Any:
        async with AsyncStateManager(url) as am:
            return await test(am)

    return asyncio.run(main())


def test_a_block_spans_calls_in_its_own_task_and_no_other(store_url: str) -> None:
    async def test(am: AsyncStateManager) -> None:
        async with am.transaction():
            sid = await am.create_session("in the block")
            await am.save_context(sid, {"k": 1})
            assert await am.get_total_sessions() == 1  # the block sees its own writes
            # A task started inside the block copies its context, yet is not part of it.
            assert await asyncio.create_task(am.get_total_sessions()) == 0
        assert await am.get_total_sessions() == 1

    run(store_url, test)


class Abandoned(Exception):
    """Raised inside a block to roll it back."""


def test_a_failed_block_writes_nothing(store_url: str) -> None:
    async def abandon(am: AsyncStateManager) -> None:
        async with am.transaction():
            await am.create_session("never")
            raise Abandoned

    async def test(am: AsyncStateManager) -> None:
        with pytest.raises(Abandoned):
            await abandon(am)
        assert await am.get_total_sessions() == 0

    run(store_url, test)


def test_concurrent_tasks_on_one_manager_lose_nothing(store_url: str) -> None:
    async def worker(am: AsyncStateManager, n: int) -> str:
        sid = await am.create_session(f"task {n}")
        for phase in range(5):
            await am.save_phase_completion(sid, f"p{phase}", {"n": n}, 1, "0.01")
        await am.add_chat_message(sid, "user", f"from {n}")
        return sid

    async def test(am: AsyncStateManager) -> None:
        sids = await asyncio.gather(*(worker(am, n) for n in range(12)))
        assert await am.get_total_sessions() == 12
        for sid in sids:
            session = await am.get_session(sid)
            assert session is not None and session.cost_usd == Decimal("0.05")
            assert len(await am.get_completed_phases(sid)) == 5
        assert (await am.integrity_check()).ok

    run(store_url, test)


def test_direct_calls_on_a_sqlite_file_run_in_worker_threads(tmp_path: Path) -> None:
    """The hot calls take one hop to a thread on the sqlite3 driver, not one aiosqlite hop
    per statement: the async engine's pool is never checked out for them."""
    checkouts: list[int] = []
    connected_in: set[int] = set()

    async def worker(am: AsyncStateManager, n: int) -> None:
        sid = await am.create_session(f"task {n}", session_id=f"s{n}")
        await am.save_phase_completion(sid, "p", {"n": n}, 1, "0.01")
        await am.save_context(sid, {"n": n})
        await am.add_chat_message(sid, "user", "hi")
        context = await am.load_context(sid)
        assert context is not None and context.data == {"n": n}

    async def test(am: AsyncStateManager) -> None:
        threaded = am._db._threaded
        assert threaded is not None
        sa.event.listen(am.engine.sync_engine.pool, "checkout", lambda *_: checkouts.append(1))
        sa.event.listen(
            threaded.engine, "connect", lambda *_: connected_in.add(threading.get_ident())
        )
        await asyncio.gather(*(worker(am, n) for n in range(8)))
        assert checkouts == []
        assert connected_in and threading.get_ident() not in connected_in
        assert am._db.fallbacks == 0
        assert await am.get_total_sessions() == 8

    run(str(tmp_path / "threads.db"), test)


def test_worker_thread_writes_take_the_processs_write_turns(tmp_path: Path) -> None:
    async def test(am: AsyncStateManager) -> None:
        threaded = am._db._threaded
        assert threaded is not None and threaded._turns is not None
        threaded._turns.take()  # as a write of another thread, still running
        try:
            with pytest.raises(StorageBusy, match="other writers in this process"):
                await am.create_session("waits")
        finally:
            threaded._turns.give_up()
        assert await am.get_total_sessions() == 0
        await am.create_session("its turn")

    async def main() -> None:
        async with AsyncStateManager(tmp_path / "turns.db", busy_timeout_ms=50) as am:
            await test(am)

    asyncio.run(main())


def test_two_async_writers_on_sqlite_queue_behind_begin_immediate(tmp_path: Path) -> None:
    """The block really holds SQLite's write lock from its start (BEGIN IMMEDIATE through
    aiosqlite), and a second writer waits for it instead of failing."""
    path = tmp_path / "queue.db"
    order: list[str] = []

    async def second_writer(am: AsyncStateManager) -> None:
        await am.create_session("second")
        order.append("second committed")

    async def test(am: AsyncStateManager) -> None:
        async with am.transaction():
            await am.get_total_sessions()  # only a read so far: the lock is the BEGIN's
            probe = sqlite3.connect(path, timeout=0, isolation_level=None)
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                probe.execute("BEGIN IMMEDIATE")
            await am.create_session("first")
            assert probe.execute("SELECT count(*) FROM sessions").fetchone() == (0,)
            waiting = asyncio.create_task(second_writer(am))
            await asyncio.sleep(0.2)
            assert not waiting.done()  # queued behind the lock, not failed
            order.append("first committing")
        await waiting
        assert probe.execute("SELECT count(*) FROM sessions").fetchone() == (2,)
        probe.close()

    run(str(path), test)
    assert order == ["first committing", "second committed"]


def test_the_block_yields_an_async_session_for_the_applications_rows(store_url: str) -> None:
    async def test(am: AsyncStateManager) -> None:
        async with am.transaction() as s:
            assert isinstance(s, AsyncSession)
            s.add(SessionRow(id="async-orm", subject="added through the AsyncSession"))
            await am.save_phase_completion("async-orm", "p", {}, 1, "0.5")
            async with am.transaction() as inner:
                assert inner is s
        session = await am.get_session("async-orm")
        assert session is not None and session.cost_usd == Decimal("0.5")

    run(store_url, test)


def test_the_read_only_async_session(store_url: str) -> None:
    async def test(am: AsyncStateManager) -> None:
        sid = await am.create_session("read me")
        await am.save_phase_completion(sid, "p1", {"x": 1}, 1, "0.1")
        async with am.session() as s:
            row = await s.get(SessionRow, sid)
            assert row is not None
            phases = await row.awaitable_attrs.phases
            assert [p.phase_id for p in phases] == ["p1"]
            total = await s.scalar(sa.select(sa.func.sum(PhaseRow.duration_ms)))
            assert total == 1
            s.add(SessionRow(subject="refused"))
            with pytest.raises(ReadOnlyError):
                await s.flush()
        assert await am.get_total_sessions() == 1

    run(store_url, test)


def test_run_phase_awaits_an_async_phase_and_skips_a_done_one(store_url: str) -> None:
    calls: list[str] = []

    async def phase() -> dict[str, str]:
        calls.append("ran")
        await asyncio.sleep(0)
        return {"result": "done"}

    async def test(am: AsyncStateManager) -> None:
        sid = await am.create_session("phases")
        assert await am.run_phase(sid, "p", phase) == {"result": "done"}
        assert await am.run_phase(sid, "p", phase) == {"result": "done"}
        assert await am.run_phase(sid, "sync", lambda: [1, 2]) == [1, 2]
        context = await am.resume_session(sid)
        assert context is not None and context.last_completed_phase == "sync"

    run(store_url, test)
    assert calls == ["ran"]


def test_errors_are_the_same_as_the_sync_managers(store_url: str) -> None:
    async def test(am: AsyncStateManager) -> None:
        with pytest.raises(SessionNotFound):
            await am.save_context("missing", {})
        with pytest.raises(InvalidInput, match="cost_usd"):
            await am.save_phase_completion(await am.create_session(), "p", {}, 1, "-1")

    run(store_url, test)


def test_opening_checks_the_schema_and_closing_releases(empty_url: str) -> None:
    async def refused() -> None:
        async with AsyncStateManager(empty_url, auto_migrate=False):
            pass

    with pytest.raises(SchemaOutOfDate):
        asyncio.run(refused())

    async def first_call_migrates() -> int:
        am = AsyncStateManager(empty_url)  # no `async with`: the first call opens it
        try:
            await am.create_session("lazy")
            return await am.get_total_sessions()
        finally:
            await am.close()

    assert asyncio.run(first_call_migrates()) == 1


def test_backup_and_copy_run_off_the_event_loop(
    store_url: str, other_engine_url: str, tmp_path: Path
) -> None:
    async def test(am: AsyncStateManager) -> int:
        sid = await am.create_session("copied")
        await am.save_phase_completion(sid, "p", {}, 1, "0.25")
        await am.backup(tmp_path / "backup.db")
        return await am.copy_to(other_engine_url)

    assert run(store_url, test) > 0
    for url in (str(tmp_path / "backup.db"), other_engine_url):

        async def check(am: AsyncStateManager) -> None:
            (summary,) = await am.get_session_history()
            assert summary.cost_usd == Decimal("0.25")

        run(url, check)
