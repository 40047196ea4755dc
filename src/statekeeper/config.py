"""Where the store lives and how to connect: URL resolution, engine options, SQLite pragmas."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from platformdirs import user_data_path
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.ext.asyncio import create_async_engine as sa_create_async_engine
from sqlalchemy.pool import StaticPool

from statekeeper.errors import InvalidInput, StorageError
from statekeeper.files import writing
from statekeeper.values import load_json, serialize_json

__all__ = [
    "ENV_SCHEMA",
    "ENV_URL",
    "WRITE_OPTION",
    "Settings",
    "async_url",
    "create_async_engine",
    "create_engine",
    "default_url",
    "driver_sql",
    "resolve_schema",
    "resolve_url",
    "sqlite_file",
]

ENV_URL = "STATEKEEPER_URL"
ENV_SCHEMA = "STATEKEEPER_SCHEMA"
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
WRITE_OPTION = "statekeeper_write"
"""Execution option marking a unit of work that writes: on SQLite it begins IMMEDIATE."""

Synchronous = Literal["normal", "full"]


@dataclass(frozen=True)
class Settings:
    """Connection settings beyond the URL; the defaults suit an embedded single-user store."""

    synchronous: Synchronous = "normal"
    busy_timeout_ms: int = 5_000
    engine_options: dict[str, Any] = field(default_factory=dict)
    schema: str | None = None
    """PostgreSQL: the schema every table lives in (the connections' search_path)."""


def default_url() -> URL:
    """SQLite file `state.db` in the user data directory, which is created if missing."""
    directory = user_data_path("statekeeper", appauthor=False)
    with writing(directory, "create the data directory"):
        directory.mkdir(parents=True, exist_ok=True)
    return _sqlite_url(directory / "state.db")


def _sqlite_url(path: Path) -> URL:
    return URL.create("sqlite+pysqlite", database=str(path))


def resolve_url(url: str | os.PathLike[str] | URL | None = None) -> URL:
    """The argument, else $STATEKEEPER_URL, else the default file; a bare path means SQLite.

    A plain `postgresql://` URL selects psycopg 3.
    """
    if url is None:
        url = os.environ.get(ENV_URL) or None
    if url is None:
        return default_url()
    if isinstance(url, URL):
        parsed = url
    elif isinstance(url, os.PathLike) or "://" not in str(url):
        text = os.fspath(url)
        if not text:
            raise InvalidInput("url", "empty")
        return _sqlite_url(Path(text).expanduser())
    else:
        try:
            parsed = make_url(str(url))
        except sa.exc.ArgumentError as exc:
            raise InvalidInput("url", str(exc)) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+pysqlite")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise InvalidInput("url", f"unsupported database {parsed.get_backend_name()!r}")
    return parsed


def resolve_schema(schema: str | None, url: URL) -> str | None:
    """The argument, else $STATEKEEPER_SCHEMA: a plain lowercase PostgreSQL identifier.

    Only PostgreSQL stores have schemas; naming one for SQLite is an error, not ignored.
    """
    field = "schema"
    if schema is None:
        schema, field = os.environ.get(ENV_SCHEMA) or None, ENV_SCHEMA
    if schema is None:
        return None
    if not isinstance(schema, str) or not _SCHEMA_NAME.fullmatch(schema):
        raise InvalidInput(
            field,
            f"{schema!r} is not a schema name: lowercase letters, digits and _, at most 63, "
            "not starting with a digit",
        )
    if schema.startswith("pg_"):
        raise InvalidInput(field, f"{schema!r}: names starting with pg_ are PostgreSQL's own")
    if url.get_backend_name() != "postgresql":
        raise InvalidInput(field, "only a PostgreSQL store has schemas")
    return schema


def is_memory(url: URL) -> bool:
    """Whether a SQLite URL names a private in-memory database."""
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def sqlite_file(url: URL) -> Path | None:
    """The file of an on-disk SQLite store, else None (PostgreSQL, or in memory)."""
    if url.get_backend_name() != "sqlite" or is_memory(url):
        return None
    return Path(str(url.database)).expanduser()


def async_url(url: URL) -> URL:
    """The same store through an asyncio driver: aiosqlite, or psycopg's async mode."""
    if url.get_backend_name() == "sqlite":
        return url.set(drivername="sqlite+aiosqlite")
    return url  # SQLAlchemy's psycopg dialect picks its async variant in an async engine


def _engine_options(url: URL, settings: Settings) -> dict[str, Any]:
    """Options for either kind of engine; creates a new SQLite file 0600 first."""
    # Values checked by dump_json arrive serialized: the engine must not dump them again.
    options: dict[str, Any] = {"json_serializer": serialize_json, "json_deserializer": load_json}
    if url.get_backend_name() == "sqlite":
        if is_memory(url):
            options.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
        else:
            _create_private_file(Path(str(url.database)))
        # Returned connections are rolled back only when still in a transaction (the "reset"
        # hook below): after a COMMIT the pool's own ROLLBACK is a wasted driver call, and
        # under aiosqlite a wasted hop to its thread.
        options["pool_reset_on_return"] = None
    # No pre-ping on PostgreSQL (a round trip per call): a connection found lost before its
    # unit of work commits is replaced and the unit of work run again (db.Database.run).
    options.update(settings.engine_options)
    if settings.schema is not None:
        options["connect_args"] = _in_schema(url, options.get("connect_args"), settings.schema)
    return options


def _in_schema(url: URL, connect_args: dict[str, Any] | None, schema: str) -> dict[str, Any]:
    """Connection arguments that make `schema` the only one unqualified names resolve to.

    Set when each connection starts, so it costs nothing per statement; other libpq
    `options` (from the URL or connect_args) are kept.
    """
    merged = dict(connect_args or {})
    given = merged.get("options", url.query.get("options", ""))
    merged["options"] = f"{given} -c search_path={schema}".strip()
    return merged


def create_engine(url: URL, settings: Settings | None = None) -> Engine:
    """An Engine with statekeeper's connection setup; a new SQLite file is created 0600."""
    settings = settings or Settings()
    engine = sa.create_engine(url, **_engine_options(url, settings))
    if url.get_backend_name() == "sqlite":
        _install_sqlite_hooks(engine, settings)
    return engine


def create_async_engine(url: URL, settings: Settings | None = None) -> AsyncEngine:
    """The AsyncEngine twin of `create_engine`: same options, pragmas and BEGIN IMMEDIATE."""
    settings = settings or Settings()
    url = async_url(url)
    engine = sa_create_async_engine(url, **_engine_options(url, settings))
    if url.get_backend_name() == "sqlite":
        _install_sqlite_hooks(engine.sync_engine, settings)
    return engine


def driver_sql(connection: sa.Connection, statement: str) -> None:
    """Run a statement on the DBAPI connection itself, outside SQLAlchemy's transaction.

    pysqlite: through a cursor. aiosqlite: its connection's own `execute`, awaited through
    the adapter's public `run_async`, so it costs one hop to aiosqlite's thread, not the
    adapter cursor's three (create, execute, close).
    """
    dbapi: Any = connection.connection.dbapi_connection
    try:
        if connection.dialect.is_async:
            # The cursor it returns holds no rows (no statement sent here returns any).
            dbapi.run_async(lambda driver: driver.execute(statement))
            return
        cursor = dbapi.cursor()
        try:
            cursor.execute(statement)
        finally:
            cursor.close()
    except connection.dialect.loaded_dbapi.Error as exc:
        raise sa.exc.OperationalError(statement, None, exc) from exc


def _create_private_file(path: Path) -> None:
    """Create the database file readable by its owner only, before SQLite opens it.

    Only in a directory that exists: a mistyped path must not become a new, empty store.
    """
    if path.exists():
        return
    if not path.parent.is_dir():
        problem = "is not a directory" if path.parent.exists() else "does not exist"
        raise StorageError(
            f"{path}: cannot create the store there, {path.parent} {problem}; "
            "correct the path, or create the directory first"
        )
    with writing(path, "create the store"):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            return
        os.close(fd)


def _install_sqlite_hooks(engine: Engine, settings: Settings) -> None:
    """Per-connection pragmas and our own BEGIN, so every pooled connection is set up alike."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" hook emit BEGIN itself (pysqlite's own is deferred-only).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # Readers never block the writer and the writer never blocks readers.
            cursor.execute("PRAGMA journal_mode=WAL")
            # SQLite ignores REFERENCES unless told, per connection; cascades depend on it.
            cursor.execute("PRAGMA foreign_keys=ON")
            # NORMAL in WAL mode cannot corrupt; FULL also survives power loss of the last commit.
            cursor.execute(f"PRAGMA synchronous={settings.synchronous.upper()}")
            # Wait for another writer's lock instead of failing at once with "database is locked".
            cursor.execute(f"PRAGMA busy_timeout={int(settings.busy_timeout_ms)}")
            # Sorting and temporary indexes stay in memory; nothing sensitive goes to /tmp.
            cursor.execute("PRAGMA temp_store=MEMORY")
        finally:
            cursor.close()

    @event.listens_for(engine, "reset")
    def _on_reset(dbapi_connection: Any, record: Any, reset_state: Any) -> None:
        # Both drivers' connections say whether a transaction is open (sqlite3_get_autocommit).
        if not reset_state.terminate_only and record.driver_connection.in_transaction:
            dbapi_connection.rollback()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        # Writers take the write lock up front, so two writers queue instead of one failing
        # mid-transaction when it upgrades a read lock (SQLITE_BUSY_SNAPSHOT).
        options = connection.get_execution_options()
        if options.get("isolation_level") == "AUTOCOMMIT":
            return  # maintenance (VACUUM) must run outside any transaction
        # Straight to the driver: BEGIN needs none of SQLAlchemy's statement handling. Its
        # errors are wrapped as SQLAlchemy's would be, so retries and translation see them.
        driver_sql(connection, "BEGIN IMMEDIATE" if options.get(WRITE_OPTION) else "BEGIN")
