"""Whole-store operations that open an engine of their own: backups, copies, restores.

The db layer's part of `backup()`, `copy_to()` and `restore_backup()`: it creates the other
engine, migrates it and owns the transactions; services/maintenance.py reads and writes.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from statekeeper import migrate
from statekeeper.config import WRITE_OPTION, create_engine, is_memory
from statekeeper.errors import InvalidInput, StorageError
from statekeeper.files import writable_target, writing
from statekeeper.services import maintenance
from statekeeper.translate import translate_error

__all__ = ["backup", "copy_store", "restore"]


def backup(engine: Engine, path: Path) -> None:
    """Write a consistent SQLite copy of the store to `path`, replacing it atomically.

    SQLite uses VACUUM INTO (an online, compact snapshot at whatever revision the store is);
    PostgreSQL is copied row by row into a fresh SQLite store at head, so it must be at head.
    """
    path = path.expanduser().resolve()
    url = engine.url
    sqlite = url.get_backend_name() == "sqlite"
    if sqlite and _is_store_file(url, path):
        raise InvalidInput("path", "a backup cannot overwrite the live database")
    writable_target(path)
    partial = path.with_name(f".{path.name}.partial")
    with writing(path, "write the backup"):
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.unlink(missing_ok=True)
        # Created empty and private first: VACUUM INTO accepts an empty file and keeps its mode.
        os.close(os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    try:
        if sqlite:
            with engine.connect() as connection:
                maintenance.vacuum_into(connection, partial)
        else:
            copy_store(engine, URL.create("sqlite+pysqlite", database=str(partial)))
        with writing(path, "write the backup"):
            partial.replace(path)
    except sa.exc.OperationalError as exc:
        if _sqlite_no_room(exc):
            raise StorageError(
                f"cannot write the backup {path}: the disk is full; free some space and "
                "run it again (the store itself is unchanged)"
            ) from exc
        raise
    finally:
        partial.unlink(missing_ok=True)


def _is_store_file(url: URL, path: Path) -> bool:
    """Whether `path` is the SQLite file of the store at `url`."""
    return bool(url.database) and path == Path(str(url.database)).expanduser().resolve()


def _sqlite_no_room(exc: sa.exc.DBAPIError) -> bool:
    """SQLITE_FULL: the disk (or a file size limit) had no room for what was written."""
    return getattr(exc.orig, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_FULL


def _reach(target: Engine) -> sa.Connection:
    """A connection to a copy's target; failing to reach it is said of the target's URL."""
    try:
        return target.connect()
    except sa.exc.SQLAlchemyError as exc:
        raise translate_error(exc, target.url) from exc


def copy_store(engine: Engine, url: URL) -> int:
    """Copy every row of this store into an empty store at `url`; returns the row count.

    The target is migrated to head first, then filled in one transaction from one snapshot
    of the source, so it ends up with all of it or nothing: SQLite to PostgreSQL, or back.
    """
    if engine.url == url:
        raise InvalidInput("target", "is the store being copied")
    if url.get_backend_name() == "sqlite" and not is_memory(url):
        file = Path(str(url.database)).expanduser()
        writable_target(file, "target")
        with writing(file, "create the store"):
            target = create_engine(url)
    else:
        target = create_engine(url)
    try:
        with engine.connect() as source:
            maintenance.require_head(source, "only a store at head can be copied")
            with _reach(target) as connection:
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


def restore(engine: Engine, path: Path, *, overwrite: bool) -> int:
    """Replace every row of this store with those of the backup at `path`; returns the count.

    The backup (a file written by `backup`, at any revision this statekeeper knows) is
    checked, then copied to a private temporary file and migrated to head there, so the
    backup itself is never changed. The store's rows are then replaced in one transaction:
    a failure at any point leaves the store as it was. A store holding rows is replaced
    only with `overwrite`.
    """
    path = path.expanduser().resolve()
    if engine.url.get_backend_name() == "sqlite" and _is_store_file(engine.url, path):
        raise InvalidInput("path", f"{path} is the store itself, not a backup of it")
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise InvalidInput("path", f"{path} {what}; give a file written by `statekeeper db backup`")
    with tempfile.TemporaryDirectory(prefix="statekeeper-restore-") as directory:
        work = Path(directory) / "backup.db"
        _copy_backup(path, work)
        source_engine = create_engine(URL.create("sqlite+pysqlite", database=str(work)))
        try:
            with source_engine.connect() as source:
                problems = maintenance.backup_problems(source)
                source.rollback()
                if problems:
                    raise InvalidInput("path", f"{path} cannot be restored: {'; '.join(problems)}")
                migrate.upgrade(source)
            with source_engine.connect() as source, engine.connect() as target:
                maintenance.require_head(target, "only a store at head can be restored into")
                writer = target.execution_options(**{WRITE_OPTION: True})
                with writer.begin():
                    occupied = maintenance.occupied_tables(writer)
                    if occupied and not overwrite:
                        raise InvalidInput(
                            "overwrite",
                            f"the store holds rows (in {', '.join(occupied)}) and restoring "
                            "replaces all of them: pass overwrite=True (on the command line, "
                            "--yes)",
                        )
                    maintenance.clear_rows(writer)
                    restored = maintenance.fill_empty_store(source, writer)
                source.rollback()
        finally:
            source_engine.dispose()
    if engine.url.get_backend_name() == "sqlite":
        with engine.connect() as connection:
            maintenance.run_maintenance(connection, "checkpoint")
    return restored


def _copy_backup(path: Path, work: Path) -> None:
    """Copy the SQLite file at `path` to `work` with SQLite's online backup (any WAL
    content included), opening `path` read-only; a file that is no SQLite database is
    InvalidInput."""
    try:
        source = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise InvalidInput("path", f"{path} cannot be opened: {exc}") from exc
    try:
        target = sqlite3.connect(work)
        try:
            source.backup(target)
        finally:
            target.close()
    except sqlite3.DatabaseError as exc:
        code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
        reason = {
            sqlite3.SQLITE_NOTADB: "it is not an SQLite database",
            sqlite3.SQLITE_CORRUPT: "the file is damaged",
        }.get(code, "SQLite cannot read it")
        raise InvalidInput(
            "path",
            f"{path} cannot be restored: {reason} ({exc}); give a file written by "
            "`statekeeper db backup`",
        ) from exc
    finally:
        source.close()
