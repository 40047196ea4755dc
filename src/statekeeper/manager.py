"""StateManager: the public API. Each call validates its input, then runs one unit of work."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Self

from sqlalchemy.engine import URL, Engine
from sqlalchemy.orm import Session

from statekeeper import migrate
from statekeeper.api._sync.agents import AgentsAPI
from statekeeper.api._sync.events import EventsAPI
from statekeeper.api._sync.maintenance import MaintenanceAPI
from statekeeper.api._sync.search import SearchAPI
from statekeeper.api._sync.sessions import SessionsAPI
from statekeeper.api._sync.snapshots import SnapshotsAPI
from statekeeper.api._sync.tasks import TasksAPI
from statekeeper.api._sync.worktree import WorktreeAPI
from statekeeper.api.base import DEFAULT_MAX_VALUE_BYTES, PathLike, store_options
from statekeeper.importers._sync.exporter import LegacyMirror
from statekeeper.opening import mirror_directory, open_database, open_store

__all__ = ["StateManager"]


class StateManager(
    SessionsAPI,
    EventsAPI,
    WorktreeAPI,
    SearchAPI,
    AgentsAPI,
    SnapshotsAPI,
    TasksAPI,
    MaintenanceAPI,
):
    """Persistent workflow state on SQLite (default) or PostgreSQL.

    `url` is a SQLAlchemy URL or a filesystem path (SQLite); None means $STATEKEEPER_URL or
    `state.db` in the user data directory. The schema is migrated to head on open unless
    `auto_migrate=False`, which instead refuses a database that is not at head.
    `check_schema=False` opens a store at any revision (for `statekeeper db` commands).
    `legacy_mirror=DIR` (or $STATEKEEPER_LEGACY_MIRROR) keeps the legacy editor's files in
    DIR current after every committed change (docs/legacy-migration.md).
    `schema="tenant_a"` (or $STATEKEEPER_SCHEMA), PostgreSQL only, keeps every table,
    alembic_version included, in that schema, created on first open when the user may:
    several schemas in one database are independent stores.
    The agent store: `namespace` is whose agents this manager sees; `max_snapshots` is how
    many snapshots each session or agent keeps (None: all); `compress_threshold` stores agent
    states and snapshot payloads larger than that many bytes zstd-compressed (docs/agents.md).
    `max_value_bytes` (default 16 MiB, None: no limit) is the most bytes one value given to a
    call may take: a JSON value (phase output, context, metadata, agent state) serialized, a
    payload text (chat content, instance output, markdown, event content) as UTF-8; a larger
    one is InvalidInput naming the field and the limit, before anything is written.
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
        self._db = open_database(self.url, settings)
        mirror = mirror_directory(legacy_mirror)
        if mirror is not None:
            self._db.on_commit = LegacyMirror(self._db, mirror)
        if not check_schema:
            return
        try:
            self._db.run_on_connection(
                lambda connection: migrate.ensure_schema(connection, auto_migrate=auto_migrate)
            )
        except BaseException:
            self._db.dispose()
            raise

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy Engine, for ad hoc queries (e.g. `pandas.read_sql(sql, sm.engine)`)."""
        return self._db.engine

    def close(self) -> None:
        """Release every connection; the manager must not be used afterwards."""
        self._db.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"StateManager({self.url.render_as_string(hide_password=True)!r})"

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """Every call on this manager in the block, same thread, commits or not at all.

        Yields the block's ORM Session: objects of the application's own mapped classes
        added to it commit or roll back with the block. A nested block joins the outer one.
        """
        with self._db.transaction() as session:
            yield session

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A read-only ORM Session on the store, for queries and attribute navigation.

        A flush that would write raises ReadOnlyError and writes nothing.
        """
        with self._db.session() as session:
            yield session
