"""StateManager: the public API. Each call validates its input, then runs one unit of work."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Self

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from statekeeper import migrate
from statekeeper.api.base import PathLike
from statekeeper.api.maintenance import MaintenanceAPI
from statekeeper.api.search import SearchAPI
from statekeeper.api.sessions import SessionsAPI
from statekeeper.api.worktree import WorktreeAPI
from statekeeper.config import Settings, create_engine, resolve_url
from statekeeper.db import Database
from statekeeper.errors import InvalidInput, StorageError
from statekeeper.values import check_non_negative_int

__all__ = ["StateManager"]


class StateManager(SessionsAPI, WorktreeAPI, SearchAPI, MaintenanceAPI):
    """Persistent workflow state on SQLite (default) or PostgreSQL.

    `url` is a SQLAlchemy URL or a filesystem path (SQLite); None means $STATEKEEPER_URL or
    `state.db` in the user data directory. The schema is migrated to head on open unless
    `auto_migrate=False`, which instead refuses a database that is not at head.
    """

    def __init__(
        self,
        url: PathLike | URL | None = None,
        *,
        auto_migrate: bool = True,
        synchronous: str = "normal",
        busy_timeout_ms: int = 5_000,
        **engine_options: Any,
    ) -> None:
        if synchronous not in ("normal", "full"):
            raise InvalidInput("synchronous", f"expected 'normal' or 'full', got {synchronous!r}")
        settings = Settings(
            synchronous=synchronous,  # type: ignore[arg-type]
            busy_timeout_ms=check_non_negative_int(busy_timeout_ms, "busy_timeout_ms"),
            engine_options=engine_options,
        )
        self.url = resolve_url(url)
        try:
            engine = create_engine(self.url, settings)
        except (TypeError, ValueError, sa.exc.ArgumentError) as exc:
            raise InvalidInput("engine_options", str(exc)) from None
        except ModuleNotFoundError as exc:
            raise StorageError(
                f"{exc.name} is not installed: for PostgreSQL, pip install 'statekeeper[postgres]'"
            ) from None
        self._db = Database(engine)
        try:
            migrate.ensure_schema(engine, auto_migrate=auto_migrate)
        except BaseException:
            engine.dispose()
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
    def transaction(self) -> Iterator[None]:
        """Every call on this manager in the block, same thread or task, commits or not at all."""
        with self._db.transaction():
            yield
