"""AsyncStateManager: every StateManager operation, awaitable, on SQLAlchemy's asyncio engine.

The operations are the same code as StateManager's (api/_async is their source), run
through AsyncConnection.run_sync on aiosqlite or psycopg's async mode.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from types import TracebackType
from typing import Any, Self

from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from statekeeper import migrate
from statekeeper.api._async.agents import AsyncAgentsAPI
from statekeeper.api._async.events import AsyncEventsAPI
from statekeeper.api._async.maintenance import AsyncMaintenanceAPI
from statekeeper.api._async.search import AsyncSearchAPI
from statekeeper.api._async.sessions import AsyncSessionsAPI
from statekeeper.api._async.snapshots import AsyncSnapshotsAPI
from statekeeper.api._async.tasks import AsyncTasksAPI
from statekeeper.api._async.worktree import AsyncWorktreeAPI
from statekeeper.api.base import DEFAULT_MAX_VALUE_BYTES, PathLike, store_options
from statekeeper.asyncdb import AsyncDatabase
from statekeeper.config import create_async_engine, is_memory
from statekeeper.importers._async.exporter import AsyncLegacyMirror
from statekeeper.opening import build_engine, mirror_directory, open_database, open_store

__all__ = ["AsyncStateManager"]


class AsyncStateManager(
    AsyncSessionsAPI,
    AsyncEventsAPI,
    AsyncWorktreeAPI,
    AsyncSearchAPI,
    AsyncAgentsAPI,
    AsyncSnapshotsAPI,
    AsyncTasksAPI,
    AsyncMaintenanceAPI,
):
    """StateManager for asyncio: the same arguments, operations, results and errors, awaited.

    Use it as `async with AsyncStateManager(url) as am:`, which checks (and migrates) the
    schema on entry as StateManager's constructor does, and closes it on exit; without
    `async with`, the first call does the check and `await am.close()` releases it.
    Tasks may share one manager: each call takes a connection of its own.
    `max_value_bytes` limits each value given to a call, as for StateManager (default 16 MiB).
    """

    def __init__(
        self,
        url: PathLike | URL | None = None,
        *,
        auto_migrate: bool = True,
        check_schema: bool = True,
        legacy_mirror: PathLike | None = None,
        schema: str | None = None,
        namespace: str = "default",
        max_snapshots: int | None = 10,
        compress_threshold: int | None = None,
        max_value_bytes: int | None = DEFAULT_MAX_VALUE_BYTES,
        synchronous: str = "normal",
        busy_timeout_ms: int = 5_000,
        **engine_options: Any,
    ) -> None:
        self._store = store_options(namespace, max_snapshots, compress_threshold, max_value_bytes)
        self.url, settings = open_store(url, synchronous, busy_timeout_ms, engine_options, schema)
        engine = build_engine(create_async_engine, self.url, settings)
        on_open = None
        if check_schema:
            on_open = partial(migrate.ensure_schema, auto_migrate=auto_migrate)
        threaded = None
        if self.url.get_backend_name() == "sqlite" and not is_memory(self.url):
            threaded = open_database(self.url, settings)
        self._db = AsyncDatabase(engine, self.url, settings, on_open=on_open, threaded=threaded)
        mirror = mirror_directory(legacy_mirror)
        if mirror is not None:
            self._db.on_commit = AsyncLegacyMirror(self._db, mirror)

    async def open(self) -> Self:
        """Check (and unless told otherwise, migrate) the schema now rather than on first use.

        Raises what StateManager's constructor would, and releases the engine if it does.
        """
        try:
            await self._db.open()
        except BaseException:
            await self._db.dispose()
            raise
        return self

    @property
    def engine(self) -> AsyncEngine:
        """The SQLAlchemy AsyncEngine, for ad hoc queries."""
        return self._db.engine

    async def close(self) -> None:
        """Release every connection; the manager must not be used afterwards."""
        await self._db.dispose()

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"AsyncStateManager({self.url.render_as_string(hide_password=True)!r})"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """Every call on this manager in the block, in this task only, commits or not at all.

        Yields the block's AsyncSession: the application's own objects added to it commit or
        roll back with the block. Other tasks keep their own transactions.
        """
        async with self._db.transaction() as session:
            yield session

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A read-only AsyncSession on the store; a flush that would write raises
        ReadOnlyError. Load relationships with `await row.awaitable_attrs.phases`."""
        async with self._db.session() as session:
            yield session
