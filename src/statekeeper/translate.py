"""Database failures made StateErrors: the one place that reads driver errors.

A caller sees what went wrong in its own terms: which store (a file's path, or a server's
host, port and database, never a password), which field a constraint protects, and what
to do about it. The driver's class names stay in the exception's cause.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.schema import ColumnCollectionConstraint

from statekeeper.errors import InvalidInput, StateError, StorageBusy, StorageError, VersionConflict

__all__ = ["Violation", "is_connect_failure", "is_transient", "translate_error", "violation"]

# SQLite primary result codes (the low byte of an extended code).
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6
_SQLITE_CORRUPT, _SQLITE_CANTOPEN, _SQLITE_NOTADB = 11, 14, 26
_PG_TRANSIENT = {"40001", "40P01", "55P03"}  # serialization failure, deadlock, lock timeout
_PG_VIOLATIONS = {
    "23505": "unique",
    "23502": "not_null",
    "23514": "check",
    "23503": "foreign_key",
}
_SQLITE_VIOLATION = re.compile(
    r"(UNIQUE|NOT NULL|CHECK|FOREIGN KEY) constraint failed(?:: (?P<target>.+))?"
)
_SQLITE_KINDS = {
    "UNIQUE": "unique",
    "NOT NULL": "not_null",
    "CHECK": "check",
    "FOREIGN KEY": "foreign_key",
}


def _sqlite_code(orig: object) -> int | None:
    code = getattr(orig, "sqlite_errorcode", None)
    return None if code is None else int(code) & 0xFF


def is_transient(exc: BaseException) -> bool:
    """Lock contention or a serialization conflict: the same transaction may succeed later."""
    orig = getattr(exc, "orig", exc)
    code = _sqlite_code(orig)
    if code is not None:
        return code in (_SQLITE_BUSY, _SQLITE_LOCKED)
    if "database is locked" in str(orig) or "database table is locked" in str(orig):
        return True
    return getattr(orig, "sqlstate", None) in _PG_TRANSIENT


@dataclass(frozen=True)
class Violation:
    """A broken integrity constraint: its kind, and the table and columns it protects."""

    kind: str
    """`unique`, `not_null`, `check` or `foreign_key`."""
    table: str | None
    columns: tuple[str, ...]
    constraint: str | None = None

    @property
    def field(self) -> str:
        """The name a caller knows the value by: its column, else the check's own name."""
        if self.columns:
            return ", ".join(self.columns)
        if self.constraint and self.table and self.constraint.startswith(f"ck_{self.table}_"):
            return self.constraint.removeprefix(f"ck_{self.table}_")
        return self.table or "value"

    def describe(self) -> str:
        """What is wrong with the value, in a caller's words."""
        where = f" in {self.table}" if self.table else ""
        if self.kind == "unique":
            return f"a row{where} with this value already exists"
        if self.kind == "not_null":
            return "a value is required"
        if self.kind == "foreign_key":
            return f"refers to a row that does not exist{where}"
        return f"rejected by the check {self.constraint or '(unnamed)'}{where}"


@cache
def _constraints() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Every named constraint and index of the models: its table and columns."""
    from statekeeper.models import Base

    found: dict[str, tuple[str, tuple[str, ...]]] = {}
    for table in Base.metadata.tables.values():
        for item in [*table.constraints, *table.indexes]:
            if isinstance(item, ColumnCollectionConstraint | sa.Index) and isinstance(
                item.name, str
            ):
                found[item.name] = (table.name, tuple(column.name for column in item.columns))
    return found


def violation(exc: sa.exc.IntegrityError) -> Violation | None:
    """The constraint an IntegrityError broke, from PostgreSQL's diagnostics or SQLite's text."""
    orig = exc.orig
    diag = getattr(orig, "diag", None)
    if diag is not None:
        kind = _PG_VIOLATIONS.get(getattr(orig, "sqlstate", None) or "")
        if kind is None:
            return None
        name, table = diag.constraint_name, diag.table_name
        if kind == "not_null":
            return Violation(kind, table, (diag.column_name,) if diag.column_name else ())
        known_table, columns = _constraints().get(name or "", (table, ()))
        if kind == "check":
            columns = ()  # a check's columns are in its expression; its name says what
        return Violation(kind, table or known_table, columns, name)
    match = _SQLITE_VIOLATION.search(str(orig))
    if match is None:
        return None
    kind = _SQLITE_KINDS[match.group(1)]
    target = match.group("target") or ""
    if kind == "check":
        table = next((t for t in _tables() if target.startswith(f"ck_{t}_")), None)
        return Violation(kind, table, (), target or None)
    if kind == "foreign_key" or not target:
        return Violation(kind, None, ())
    qualified = [part.strip().split(".", 1) for part in target.split(",")]
    table = qualified[0][0] if len(qualified[0]) == 2 else None
    return Violation(kind, table, tuple(part[-1] for part in qualified))


@cache
def _tables() -> tuple[str, ...]:
    """The models' table names, longest first (a prefix match must find the longest)."""
    from statekeeper.models import Base

    return tuple(sorted(Base.metadata.tables, key=len, reverse=True))


def _first_line(orig: BaseException) -> str:
    text = str(orig).strip()
    return text.splitlines()[0] if text else type(orig).__name__


def is_connect_failure(exc: sa.exc.SQLAlchemyError) -> bool:
    """A DBAPI error raised while connecting, before any statement was sent."""
    return isinstance(exc, sa.exc.DBAPIError) and exc.statement is None


def _server(url: URL) -> str:
    """Where a server store is, without its password: `host:port, database 'db'`."""
    return f"{url.host or 'localhost'}:{url.port or 5432}, database {url.database!r}"


def _connect_error(url: URL, orig: BaseException) -> StorageError:
    """A PostgreSQL connection that failed: where, why, and what to check."""
    text = str(orig)
    reason = text.rsplit("FATAL:", 1)[-1] if "FATAL:" in text else text.split("failed:")[-1]
    reason = " ".join(reason.strip().splitlines()[0].split()) if reason.strip() else text
    if "does not exist" in reason and "database" in reason:
        hint = (
            f"create it (createdb -h {url.host or 'localhost'} -p {url.port or 5432} "
            f"-U {url.username or 'postgres'} {url.database}) or correct the URL"
        )
    elif "role" in reason or "password" in reason or "authentication" in reason:
        hint = "check the user name and password in the URL"
    elif "resolve host" in reason:
        hint = "check the host name in the URL"
    else:
        hint = "check that PostgreSQL is running there and accepts TCP connections"
    return StorageError(f"cannot connect to PostgreSQL at {_server(url)}: {reason}; {hint}")


def _sqlite_file_error(path: str, code: int, message: str) -> StorageError | None:
    """A store file SQLite cannot use as one, said with its path and what to do."""
    if code == _SQLITE_NOTADB:
        return StorageError(
            f"{path}: not a statekeeper store (the file is not an SQLite database); "
            "check the path or --url"
        )
    if code == _SQLITE_CORRUPT:
        return StorageError(
            f"{path}: the store is damaged ({message}); put a backup back with "
            f"`statekeeper db restore`, or salvage what is readable with `sqlite3 {path} .recover`"
        )
    if code == _SQLITE_CANTOPEN:
        return StorageError(
            f"{path}: cannot open the store file ({message}); check that the file and its "
            "directory exist, and that the directory is writable: SQLite keeps the store's "
            "-wal and -shm files beside it, so a store on a read-only file system needs a "
            "copy on a writable one"
        )
    return None


# SQLite primary result codes of a store it opened but cannot write (disk faults).
_SQLITE_READONLY, _SQLITE_IOERR, _SQLITE_FULL = 8, 10, 13


def _sqlite_disk_error(path: str, code: int, message: str) -> StorageError | None:
    """A write the disk refused (full, read-only, failing): the path, and that nothing of
    this change was written while everything committed before it is kept."""
    if code == _SQLITE_FULL:
        return StorageError(
            f"{path}: the disk is full ({message}); this change was not written and every "
            "change committed before it is kept: free some space, then retry"
        )
    if code == _SQLITE_READONLY:
        return StorageError(
            f"{path}: the store is read-only here ({message}); reading works, writing needs "
            "write permission on the file and its directory, on a writable file system"
        )
    if code == _SQLITE_IOERR:
        return StorageError(
            f"{path}: the operating system failed a read or write ({message}); this change "
            "was not committed: check the disk (space, file size limit, system log), then retry"
        )
    return None


def translate_error(exc: sa.exc.SQLAlchemyError, store: URL | None = None) -> StateError:
    """The StateError a caller sees for a database failure; `store` is the URL it was on."""
    orig = getattr(exc, "orig", None) or exc
    message = _first_line(orig)
    if is_transient(exc):
        return StorageBusy(f"database stayed busy after retries: {message}")
    if isinstance(exc, sa.orm.exc.StaleDataError):
        # An ORM flush of a versioned row (AgentRow) that someone else saved meanwhile.
        return VersionConflict(f"saved by someone else since it was loaded: {message}", None, None)
    if isinstance(exc, sa.exc.IntegrityError):
        broken = violation(exc)
        if broken is None:
            return InvalidInput("value", message)
        return InvalidInput(broken.field, broken.describe())
    if isinstance(exc, sa.exc.DataError):
        return InvalidInput("value", message)
    code = _sqlite_code(orig)
    if store is not None and code is not None and store.database:
        found = _sqlite_file_error(store.database, code, message) or _sqlite_disk_error(
            store.database, code, message
        )
        if found is not None:
            return found
    postgresql = store is not None and store.get_backend_name() == "postgresql"
    if store is not None and postgresql and is_connect_failure(exc):
        return _connect_error(store, orig)
    return StorageError(f"{type(orig).__name__}: {message}")
