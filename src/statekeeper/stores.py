"""Whole-store operations that open an engine of their own: backups and copies.

The db layer's part of `backup()` and `copy_to()`: it creates the target engine, migrates
it and owns both transactions; services/maintenance.py does the reading and writing.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import URL, Engine

from statekeeper import migrate
from statekeeper.config import create_engine
from statekeeper.errors import InvalidInput
from statekeeper.services import maintenance

__all__ = ["backup", "copy_store"]


def backup(engine: Engine, path: Path) -> None:
    """Write a consistent SQLite copy of the store to `path`, replacing it atomically.

    SQLite uses VACUUM INTO (an online, compact snapshot at whatever revision the store is);
    PostgreSQL is copied row by row into a fresh SQLite store at head, so it must be at head.
    """
    path = path.expanduser().resolve()
    url = engine.url
    sqlite = url.get_backend_name() == "sqlite"
    if sqlite and url.database and path == Path(url.database).expanduser().resolve():
        raise InvalidInput("path", "a backup cannot overwrite the live database")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.unlink(missing_ok=True)
    # Created empty and private first: VACUUM INTO accepts an empty file and keeps its mode.
    os.close(os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    try:
        if sqlite:
            with engine.connect() as connection:
                maintenance.vacuum_into(connection, partial)
        else:
            copy_store(engine, URL.create("sqlite+pysqlite", database=str(partial)))
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def copy_store(engine: Engine, url: URL) -> int:
    """Copy every row of this store into an empty store at `url`; returns the row count.

    The target is migrated to head first, then filled in one transaction from one snapshot
    of the source, so it ends up with all of it or nothing: SQLite to PostgreSQL, or back.
    """
    if engine.url == url:
        raise InvalidInput("target", "is the store being copied")
    target = create_engine(url)
    try:
        with engine.connect() as source:
            maintenance.require_head(source, "only a store at head can be copied")
            with target.connect() as connection:
                migrate.upgrade(connection)
            reader = maintenance.snapshot(source)
            with target.begin() as writer:
                copied = maintenance.fill_empty_store(reader, writer)
            reader.rollback()
        if url.get_backend_name() == "sqlite":
            with target.connect() as connection:
                maintenance.run_maintenance(connection, "checkpoint")
        return copied
    finally:
        target.dispose()
