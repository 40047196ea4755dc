"""PostgreSQL units of work in as few round trips as they can take: psycopg, no SQLAlchemy.

A round trip costs 70-90 µs on one machine and 0.5-1 ms to another zone, more than the
work of most statements, so the sync manager's hot calls run on the psycopg connection
alone, in autocommit mode with their own transaction control:

- A read sends each statement by itself, with no BEGIN or COMMIT: under READ COMMITTED,
  every statement of a transaction takes a fresh snapshot anyway, so a transaction would
  only add two round trips. (With another isolation level set on the engine, reads keep
  their transaction.)
- A write runs in psycopg's pipeline mode: BEGIN travels with the first statement, a
  statement whose rows nobody reads travels with the next one that is read, and the last
  ones with the COMMIT. A write that reads nothing is one round trip; one that locks a row
  and then writes, two. A failed statement is reported when its batch is synced, so
  constraint failures reach the unit of work's `explain` handlers, not the statement's
  caller.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy as sa

from statekeeper.executor import DriverErrors, PlanCache, Reconnect, UnitOfWork
from statekeeper.sa_internals import await_

__all__ = ["AwaitedConnection", "read_committed", "release", "run_on_server"]

T = TypeVar("T")

_RETRYABLE_LOSS = ("57P01", "57P02", "57P03")
"""Server-sent reasons a session ended (admin or crash shutdown, not accepting): the server
read nothing of ours after it said so, and a COMMIT it had run would have answered first."""


def run_on_server(
    driver: Any,
    plans: PlanCache,
    fn: Callable[[UnitOfWork], T],
    *,
    write: bool,
    changed: set[str],
) -> T:
    """One attempt of a unit of work on a psycopg connection (or `AwaitedConnection`),
    outside SQLAlchemy; `release` hands the connection back afterwards."""
    dialect = plans.dialect
    driver.autocommit = True
    if write or not read_committed(driver, dialect.default_isolation_level):
        return _in_transaction(driver, plans, fn, changed)
    try:
        return fn(UnitOfWork(dialect, plans, driver=driver, changed=changed))
    except sa.exc.DBAPIError as exc:
        if _lost(driver):
            raise Reconnect from exc  # a read: running it again changes nothing
        raise


def release(driver: Any) -> bool:
    """Put the connection back as SQLAlchemy uses it (not autocommit); False when it is
    lost or still in a transaction, and must be dropped."""
    if _lost(driver):
        return False
    if not _idle(driver):
        driver.close()
        return False
    driver.autocommit = False
    return True


def read_committed(driver: Any, server_default: str | None) -> bool:
    """Whether the connection's transactions run at READ COMMITTED, where a read needs no
    transaction of its own: the level the engine set on it, else the server's default."""
    return (_level(driver) or server_default) == "READ COMMITTED"


def _in_transaction(
    driver: Any, plans: PlanCache, fn: Callable[[UnitOfWork], T], changed: set[str]
) -> T:
    """BEGIN, the work and COMMIT, pipelined; a failure rolls back before the error goes on."""
    dialect = plans.dialect
    uow: UnitOfWork | None = None
    begin = commit = None
    try:
        with DriverErrors(dialect, "COMMIT"), driver.pipeline() as pipeline:
            begin = driver.execute(_begin(driver))
            uow = UnitOfWork(dialect, plans, driver=driver, pipeline=pipeline, changed=changed)
            result = fn(uow)
            commit = driver.execute("COMMIT")
        return result  # leaving the pipeline sent the last batch and read every answer
    except sa.exc.DBAPIError as exc:
        if _lost(driver):
            if commit is None or _unanswered(exc, begin, commit):
                raise Reconnect from exc  # nothing was committed: run it again
            raise  # the COMMIT may have run: never run the work twice
        _roll_back(driver)
        if uow is not None and isinstance(exc, sa.exc.IntegrityError):
            uow.reject(exc)
        raise
    except BaseException:
        if not _lost(driver):
            _roll_back(driver)
        raise


def _unanswered(exc: sa.exc.DBAPIError, begin: Any, commit: Any) -> bool:
    """Whether a lost connection's last batch surely did not commit: the server ended the
    session by message, and the COMMIT (or already the BEGIN) got no answer."""
    ended_by_server = getattr(exc.orig, "sqlstate", None) in _RETRYABLE_LOSS
    return ended_by_server and (begin.statusmessage is None or commit.statusmessage is None)


def _begin(driver: Any) -> str:
    """BEGIN at the isolation level the engine set on the connection, if any."""
    level = _level(driver)
    return "BEGIN" if level is None else f"BEGIN ISOLATION LEVEL {level}"


def _level(driver: Any) -> str | None:
    """The isolation level set on the connection, as SQL names it, or None (the server's)."""
    level = driver.isolation_level
    return None if level is None else str(level.name).replace("_", " ")


def _roll_back(driver: Any) -> None:
    """End a failed transaction; a connection that cannot is closed, so never parked.

    psycopg's `rollback()`, not a ROLLBACK statement: it also forgets the statements psycopg
    prepared on the connection, and deallocates them. A statement it began to prepare in a
    batch that an earlier failure aborted was never prepared, but psycopg took it as done;
    a ROLLBACK sent as a statement only makes psycopg forget them the first time it runs.
    """
    if _idle(driver):
        return
    try:
        driver.rollback()
    except Exception:  # the original error is the one to report
        driver.close()


def _lost(driver: Any) -> bool:
    return bool(driver.closed or driver.broken)


def _idle(driver: Any) -> bool:
    """Whether no transaction is left open on the connection."""
    return bool(driver.info.transaction_status.name == "IDLE")


class AwaitedConnection:
    """psycopg's AsyncConnection behind the sync interface `run_on_server` uses, for the
    async manager: each call is awaited from inside SQLAlchemy's `run_sync` greenlet."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    @property
    def autocommit(self) -> bool:
        return bool(self._connection.autocommit)

    @autocommit.setter
    def autocommit(self, value: bool) -> None:
        await_(self._connection.set_autocommit(value))

    @property
    def isolation_level(self) -> Any:
        return self._connection.isolation_level

    @property
    def info(self) -> Any:
        return self._connection.info

    @property
    def closed(self) -> bool:
        return bool(self._connection.closed)

    @property
    def broken(self) -> bool:
        return bool(self._connection.broken)

    def cursor(self) -> _AwaitedCursor:
        return _AwaitedCursor(self._connection.cursor())

    def execute(self, sql: str) -> _AwaitedCursor:
        return _AwaitedCursor(await_(self._connection.execute(sql)))

    def rollback(self) -> None:
        await_(self._connection.rollback())

    def pipeline(self) -> _AwaitedPipeline:
        return _AwaitedPipeline(self._connection.pipeline())

    def close(self) -> None:
        await_(self._connection.close())


class _AwaitedCursor:
    """An AsyncCursor behind the sync cursor interface the unit of work calls."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Any = None) -> _AwaitedCursor:
        await_(self._cursor.execute(sql, params))
        return self

    def executemany(self, sql: str, params: Any) -> None:
        await_(self._cursor.executemany(sql, params))

    def fetchall(self) -> list[Any]:
        return await_(self._cursor.fetchall())

    def close(self) -> None:
        await_(self._cursor.close())

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount)

    @property
    def statusmessage(self) -> str | None:
        return self._cursor.statusmessage  # type: ignore[no-any-return]


class _AwaitedPipeline:
    """An AsyncPipeline as a sync context manager with a sync `sync()`."""

    def __init__(self, manager: Any) -> None:
        self._manager = manager
        self._pipeline: Any = None

    def __enter__(self) -> _AwaitedPipeline:
        self._pipeline = await_(self._manager.__aenter__())
        return self

    def __exit__(self, *exc: Any) -> bool | None:
        return await_(self._manager.__aexit__(*exc))  # type: ignore[no-any-return]

    def sync(self) -> None:
        await_(self._pipeline.sync())
