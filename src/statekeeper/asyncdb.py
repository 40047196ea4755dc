"""The async unit of work: the same service functions, on SQLAlchemy's asyncio extension.

Each unit of work is one `AsyncConnection.run_sync` call, so its BEGIN, statements, ORM
flush and COMMIT run together in one greenlet, on aiosqlite or psycopg's async mode, with
db.py's own `run_transaction` and `run_in_block`. A block belongs to the task that opened
it; other tasks on the manager get connections of their own.

On a SQLite file, a unit of work made of prepared statements only (`direct`) instead runs
whole in a worker thread, on the sync manager's driver path: aiosqlite hands every
statement, BEGIN and COMMIT to its thread and back to the loop, about 50 µs each here, so a
call paid five to ten of those hops; now it pays one, as the Agents SDK's SQLiteSession does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from statekeeper.config import WRITE_OPTION, Settings, create_engine, is_memory
from statekeeper.db import (
    Block,
    Database,
    ReadOnlySession,
    RetryPolicy,
    Scope,
    Work,
    current_owner,
    read_only,
    run_in_block,
    run_transaction,
)
from statekeeper.errors import InvalidInput
from statekeeper.executor import NeedsConnection, PlanCache, Reconnect
from statekeeper.pipeline import AwaitedConnection, release, run_on_server
from statekeeper.translate import translate_error

__all__ = ["AsyncDatabase"]

T = TypeVar("T")


def _on_server(
    connection: Connection, plans: PlanCache, fn: Work[T], write: bool, changed: set[str]
) -> T:
    """A unit of work on the connection's psycopg AsyncConnection, in `run_sync`."""
    driver = AwaitedConnection(connection.connection.driver_connection)
    try:
        return run_on_server(driver, plans, fn, write=write, changed=changed)
    finally:
        if not release(driver):
            connection.invalidate()


class AsyncDatabase:
    """An AsyncEngine plus the connection scope and unit of work of one AsyncStateManager."""

    def __init__(
        self,
        engine: AsyncEngine,
        url: URL,
        settings: Settings,
        *,
        on_open: Callable[[Connection], None] | None = None,
        retry: RetryPolicy | None = None,
        threaded: Database | None = None,
    ) -> None:
        self.engine = engine
        self._on_open = on_open
        self._opening = asyncio.Lock()
        self.url = url
        self.settings = settings
        self.retry = retry or RetryPolicy()
        self._engines = {
            True: engine.execution_options(**{WRITE_OPTION: True}),
            False: engine.execution_options(**{WRITE_OPTION: False}),
        }
        self._plans = PlanCache(engine.dialect)
        self._threaded = threaded
        """SQLite files: the sync driver path that direct units of work run on, in a thread."""
        self.fallbacks = 0
        """Direct units of work that had to rerun on SQLAlchemy (tests keep this at 0)."""
        self._scope = Scope(f"statekeeper_async_scope_{id(self)}")
        self.on_commit: Callable[[set[str]], Awaitable[None]] | None = None
        """Awaited after a commit with the workspaces whose sessions changed (legacy mirror)."""

    async def open(self) -> None:
        """Run the schema check of `on_open` once, before the first unit of work."""
        async with self._opening:
            if self._on_open is not None:
                await self._on_connection(self._on_open)
                self._on_open = None

    @property
    def dialect(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self.engine.dialect.name

    async def run(self, fn: Work[T], *, write: bool, direct: bool = False) -> T:
        """Run `fn` in its own transaction (or the task's `transaction()` block's).

        `direct` is the sync manager's hint for its driver path, which aiosqlite lacks.
        """
        if self._on_open is not None:
            await self.open()
        block = self._scope.current()
        if block is not None:
            runner: AsyncConnection = block.runner
            return await runner.run_sync(
                lambda _connection: run_in_block(block, self._plans, fn, write=write)
            )
        for attempt in range(self.retry.attempts):
            changed: set[str] = set()
            try:
                if direct and self._threaded is not None:
                    result = await self._in_thread(self._threaded, fn, write, changed)
                else:
                    async with self._engines[write].connect() as connection:
                        result = await self._attempt(connection, fn, write, direct, changed)
            except (Reconnect, sa.exc.SQLAlchemyError) as exc:
                await asyncio.sleep(self.retry.after(exc, attempt, self.url))
                continue
            if changed and self.on_commit is not None:
                await self.on_commit(changed)
            return result
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _in_thread(
        self, threaded: Database, fn: Work[T], write: bool, changed: set[str]
    ) -> T:
        """One try on a SQLite file, whole in a worker thread on the sqlite3 driver; a statement
        only SQLAlchemy can run sends it back to aiosqlite. Cancelling the caller does not stop
        the thread: the work still commits or rolls back whole, as it would on aiosqlite."""
        try:
            return await asyncio.to_thread(threaded.run_on_driver, fn, write=write, changed=changed)
        except NeedsConnection:
            self.fallbacks += 1
            changed.clear()
        async with self._engines[write].connect() as connection:
            return await self._attempt(connection, fn, write, False, changed)

    async def _attempt(
        self, connection: AsyncConnection, fn: Work[T], write: bool, direct: bool, changed: set[str]
    ) -> T:
        """One try: on psycopg alone (PostgreSQL) when the caller marked every statement as
        direct, else on SQLAlchemy."""
        if direct and self._plans.direct:
            try:
                return await connection.run_sync(_on_server, self._plans, fn, write, changed)
            except Reconnect:
                await self.engine.dispose()  # a restarted server: every pooled one is gone
                raise
            except NeedsConnection:
                self.fallbacks += 1
                changed.clear()
        return await connection.run_sync(run_transaction, self._plans, fn, changed, write=write)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One transaction for every call in the block, in this task only; yields its
        AsyncSession, whose objects commit or roll back with them."""
        if self._on_open is not None:
            await self.open()
        block = self._scope.current()
        if block is not None:
            yield block.handle
            return
        try:
            connection = await self._engines[True].connect()
            await connection.begin()
        except sa.exc.SQLAlchemyError as exc:
            raise translate_error(exc, self.url) from exc
        session = AsyncSession(bind=connection, expire_on_commit=False)
        sync_connection = connection.sync_connection
        assert sync_connection is not None, "a connected AsyncConnection has its sync twin"
        block = Block(sync_connection, session.sync_session, current_owner(), session, connection)
        token = self._scope.enter(block)
        try:
            yield session
            try:
                await session.flush()
                await connection.commit()
            except sa.exc.SQLAlchemyError as exc:
                raise translate_error(exc, self.url) from exc
        finally:
            self._scope.leave(token)
            await session.close()
            await connection.close()
        if block.changed and self.on_commit is not None:
            await self.on_commit(block.changed)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A read-only AsyncSession on its own connection and snapshot."""
        if self._on_open is not None:
            await self.open()
        try:
            connection = await self._engines[False].connect()
            await connection.run_sync(lambda sync: read_only(sync, on=True))
        except sa.exc.SQLAlchemyError as exc:
            raise translate_error(exc, self.url) from exc
        session = AsyncSession(
            bind=connection, expire_on_commit=False, sync_session_class=ReadOnlySession
        )
        try:
            yield session
        finally:
            await session.close()
            try:
                await connection.rollback()
                await connection.run_sync(lambda sync: read_only(sync, on=False))
            except sa.exc.SQLAlchemyError:
                await connection.invalidate()  # never back to the pool still read-only
            finally:
                await connection.close()

    async def offload(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking file work (writing, fsyncing) in a worker thread, off the loop."""
        return await asyncio.to_thread(fn, *args)

    async def run_on_connection(self, fn: Callable[[Connection], T]) -> T:
        """Run maintenance on a connection of its own (no transaction opened for it)."""
        if self._on_open is not None:
            await self.open()
        return await self._on_connection(fn)

    async def _on_connection(self, fn: Callable[[Connection], T]) -> T:
        try:
            async with self.engine.connect() as connection:
                return await connection.run_sync(fn)
        except sa.exc.SQLAlchemyError as exc:
            raise translate_error(exc, self.url) from exc

    async def with_sync_engine(self, fn: Callable[[Engine], T]) -> T:
        """Run a whole-store operation (backup, copy) in a worker thread, on a sync Engine of
        its own, so the event loop is never blocked by it."""
        if self._on_open is not None:
            await self.open()
        if is_memory(self.url):
            raise InvalidInput("url", "a private in-memory store has no second connection")
        return await asyncio.to_thread(self._on_sync_engine, fn)

    def _on_sync_engine(self, fn: Callable[[Engine], T]) -> T:
        engine = create_engine(self.url, self.settings)
        try:
            return fn(engine)
        except sa.exc.SQLAlchemyError as exc:
            raise translate_error(exc, self.url) from exc
        finally:
            engine.dispose()

    async def dispose(self) -> None:
        """Close every pooled connection."""
        if self._threaded is not None:
            await asyncio.to_thread(self._threaded.dispose)
        await self.engine.dispose()
