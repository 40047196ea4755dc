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
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa

from statekeeper.executor import PlanCache, Reconnect, UnitOfWork, driver_errors

__all__ = ["read_committed", "run_on_server"]

T = TypeVar("T")

_RETRYABLE_LOSS = ("57P01", "57P02", "57P03")
"""Server-sent reasons a session ended (admin or crash shutdown, not accepting): the server
read nothing of ours after it said so, and a COMMIT it had run would have answered first."""


class Connections(Protocol):
    """Where driver connections come from and go back to (db.ParkedConnections)."""

    def take(self) -> Any: ...

    def give_back(self, connection: Any, *, clean: bool) -> None: ...


def run_on_server(
    connections: Connections,
    plans: PlanCache,
    fn: Callable[[UnitOfWork], T],
    *,
    write: bool,
    changed: set[str],
) -> T:
    """One attempt of a unit of work on a psycopg connection, outside SQLAlchemy."""
    dialect = plans.dialect
    with driver_errors(dialect, "connect"):
        pooled = connections.take()
    driver = pooled.dbapi_connection
    clean = False
    try:
        driver.autocommit = True
        if write or not read_committed(driver, dialect.default_isolation_level):
            threshold, driver.prepare_threshold = driver.prepare_threshold, None
            try:
                result = _in_transaction(driver, plans, fn, changed)
            finally:
                driver.prepare_threshold = threshold
        else:
            try:
                result = fn(UnitOfWork(dialect, plans, driver=driver, changed=changed))
            except sa.exc.DBAPIError as exc:
                if _lost(driver):
                    raise Reconnect from exc  # a read: running it again changes nothing
                raise
        clean = True
        return result
    finally:
        if _lost(driver):
            pooled.invalidate()
        else:
            clean = clean and _idle(driver)
            driver.autocommit = False
        connections.give_back(pooled, clean=clean)


def read_committed(driver: Any, server_default: str | None) -> bool:
    """Whether the connection's transactions run at READ COMMITTED, where a read needs no
    transaction of its own: the level the engine set on it, else the server's default."""
    level = driver.isolation_level
    name = server_default if level is None else level.name.replace("_", " ")
    return name == "READ COMMITTED"


def _in_transaction(
    driver: Any, plans: PlanCache, fn: Callable[[UnitOfWork], T], changed: set[str]
) -> T:
    """BEGIN, the work and COMMIT, pipelined; a failure rolls back before the error goes on."""
    dialect = plans.dialect
    uow: UnitOfWork | None = None
    begin = commit = None
    try:
        with driver_errors(dialect, "COMMIT"), driver.pipeline() as pipeline:
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
    level = driver.isolation_level
    if level is None:
        return "BEGIN"
    return f"BEGIN ISOLATION LEVEL {level.name.replace('_', ' ')}"


def _roll_back(driver: Any) -> None:
    """End a failed transaction; a connection that cannot is closed, so never parked."""
    if _idle(driver):
        return
    try:
        driver.execute("ROLLBACK")
    except Exception:  # the original error is the one to report
        driver.close()


def _lost(driver: Any) -> bool:
    return bool(driver.closed or driver.broken)


def _idle(driver: Any) -> bool:
    """Whether no transaction is left open on the connection."""
    return bool(driver.info.transaction_status.name == "IDLE")
