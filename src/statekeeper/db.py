"""The unit of work: one database transaction per public call, retried when transient.

Services run on an Executor over a Core Connection (no ORM unit of work: statements are
prebuilt, hot ones go straight to the driver, rows come back as plain named rows).
Connections are scoped per thread or task and per `transaction()` block (a ContextVar),
so every call made inside a block joins that block's transaction. This is also the one
place where SQLAlchemy and driver errors become StateErrors.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from types import CodeType
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import PoolProxiedConnection

from statekeeper.config import WRITE_OPTION
from statekeeper.errors import InvalidInput, StateError, StorageBusy, StorageError
from statekeeper.executor import Executor, NeedsConnection, PlanCache, driver_errors

__all__ = ["Database", "ParkedConnections", "RetryPolicy", "is_transient", "translate_error"]

T = TypeVar("T")

_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6
_PG_TRANSIENT = {"40001", "40P01", "55P03"}  # serialization failure, deadlock, lock timeout


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter for transient failures."""

    attempts: int = 6
    base_delay: float = 0.02
    max_delay: float = 1.0

    def delay(self, attempt: int) -> float:
        """Seconds to sleep before retry number `attempt` (0-based)."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))  # noqa: S311


def is_transient(exc: BaseException) -> bool:
    """Lock contention or a serialization conflict: the same transaction may succeed later."""
    orig = getattr(exc, "orig", exc)
    code = getattr(orig, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
    if "database is locked" in str(orig) or "database table is locked" in str(orig):
        return True
    return getattr(orig, "sqlstate", None) in _PG_TRANSIENT


def translate_error(exc: sa.exc.SQLAlchemyError) -> StateError:
    """The StateError a caller sees for a database failure."""
    orig = getattr(exc, "orig", None) or exc
    message = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    if is_transient(exc):
        return StorageBusy(f"database stayed busy after retries: {message}")
    if isinstance(exc, sa.exc.IntegrityError | sa.exc.DataError):
        return InvalidInput("value", message)
    return StorageError(f"{type(orig).__name__}: {message}")


class _Reconnect(Exception):
    """A connection was lost before its unit of work committed: run it again."""


class ParkedConnections:
    """A few pool connections kept checked out between driver-only units of work.

    A pool checkout and checkin cost about 4 µs, as much as a keyed SELECT. At most `size`
    idle ones are kept, so SQLAlchemy's own path always finds the pool as configured. A
    connection whose transaction did not end cleanly goes back to the pool, which resets it.
    """

    def __init__(self, engine: Engine, size: int = 4) -> None:
        self._engine = engine
        self._size = size
        self._idle: list[PoolProxiedConnection] = []
        self._inherited: list[PoolProxiedConnection] = []
        self._pid = os.getpid()

    def take(self) -> PoolProxiedConnection:
        """An idle parked connection, or a new checkout from the pool."""
        if self._pid != os.getpid():
            # Forked: the parent's connections are never used, nor closed (SQLite forbids both).
            self._inherited += self._idle
            self._idle, self._pid = [], os.getpid()
        try:
            return self._idle.pop()
        except IndexError:
            return self._engine.raw_connection()

    def give_back(self, connection: PoolProxiedConnection, *, clean: bool) -> None:
        """Park a connection whose transaction ended, or return it to the pool."""
        if clean and len(self._idle) < self._size:
            self._idle.append(connection)
        else:
            connection.close()

    def close(self) -> None:
        """Return every parked connection to the pool."""
        while self._idle:
            self._idle.pop().close()


class Database:
    """An Engine plus the connection scope and unit of work of one StateManager."""

    def __init__(self, engine: Engine, retry: RetryPolicy | None = None) -> None:
        self.engine = engine
        self.retry = retry or RetryPolicy()
        # Views of the one engine (same pool) that tag their connections as writers or not,
        # prebuilt so a unit of work sets no options per call.
        self._engines = {
            True: engine.execution_options(**{WRITE_OPTION: True}),
            False: engine.execution_options(**{WRITE_OPTION: False}),
        }
        self._plans = PlanCache(engine.dialect)
        self._parked = ParkedConnections(engine)
        self._needs_connection: set[CodeType] = set()
        self._scope: ContextVar[Connection | None] = ContextVar(
            f"statekeeper_scope_{id(self)}", default=None
        )

    @property
    def dialect(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self.engine.dialect.name

    def run(self, fn: Callable[[Executor], T], *, write: bool) -> T:
        """Run `fn` in its own transaction (or the enclosing `transaction()` block's)."""
        scoped = self._scope.get()
        if scoped is not None:
            return self._run_in_block(scoped, fn, write=write)
        for attempt in range(self.retry.attempts):
            try:
                return self._attempt(fn, write=write)
            except _Reconnect as lost:
                cause = lost.__cause__
                assert isinstance(cause, sa.exc.DBAPIError)
                if attempt + 1 < self.retry.attempts:
                    continue  # the pool has replaced its connections: no wait needed
                raise translate_error(cause) from cause
            except sa.exc.SQLAlchemyError as exc:
                if is_transient(exc) and attempt + 1 < self.retry.attempts:
                    time.sleep(self.retry.delay(attempt))
                    continue
                raise translate_error(exc) from exc
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _attempt(self, fn: Callable[[Executor], T], *, write: bool) -> T:
        """One try: on the driver alone when every statement of `fn` can go there."""
        code = getattr(fn, "__code__", None)
        if self._plans.direct and code is not None and code not in self._needs_connection:
            try:
                return self._run_on_driver(fn, write=write)
            except NeedsConnection:
                # Remembered per call site, so the next call goes to SQLAlchemy at once.
                self._needs_connection.add(code)
        with self._engines[write].connect() as connection:
            transaction = connection.begin()
            try:
                result = fn(Executor(connection.dialect, self._plans, connection=connection))
            except sa.exc.DBAPIError as exc:
                if exc.connection_invalidated:
                    # Lost before the commit was sent: nothing was committed, so the unit
                    # of work may run again, on a new connection.
                    raise _Reconnect from exc
                raise
            transaction.commit()
            return result

    def _run_on_driver(self, fn: Callable[[Executor], T], *, write: bool) -> T:
        """A SQLite transaction on a driver connection, without SQLAlchemy's Connection.

        SQLAlchemy's connect, begin and commit cost about 17 µs a call; a parked connection
        and the driver's own BEGIN and COMMIT about 2 µs. Writers still BEGIN IMMEDIATE.
        """
        dialect = self.engine.dialect
        begin = "BEGIN IMMEDIATE" if write else "BEGIN"
        with driver_errors(dialect, "connect"):
            pooled = self._parked.take()
        clean = False
        try:
            driver = pooled.dbapi_connection
            with driver_errors(dialect, begin):
                driver.execute(begin)  # type: ignore[union-attr]
            try:
                result = fn(Executor(dialect, self._plans, driver=driver))
            except BaseException:
                driver.rollback()  # type: ignore[union-attr]
                clean = True
                raise
            with driver_errors(dialect, "COMMIT"):
                driver.commit()  # type: ignore[union-attr]
            clean = True
            return result
        finally:
            self._parked.give_back(pooled, clean=clean)

    def _run_in_block(
        self, connection: Connection, fn: Callable[[Executor], T], *, write: bool
    ) -> T:
        """Inside a block a rejected call is undone through a savepoint; the block goes on."""
        executor = Executor(connection.dialect, self._plans, connection=connection)
        try:
            if not write:
                return fn(executor)
            with connection.begin_nested():
                return fn(executor)
        except sa.exc.SQLAlchemyError as exc:
            raise translate_error(exc) from exc

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group every call made in the block, in this thread or task, into one transaction."""
        if self._scope.get() is not None:
            yield
            return
        try:
            connection = self._engines[True].connect()
        except sa.exc.SQLAlchemyError as exc:
            raise translate_error(exc) from exc
        token = self._scope.set(connection)
        try:
            try:
                with connection.begin():
                    yield
            except sa.exc.SQLAlchemyError as exc:
                raise translate_error(exc) from exc
        finally:
            self._scope.reset(token)
            connection.close()

    @contextmanager
    def connect(self) -> Iterator[sa.Connection]:
        """A raw connection for maintenance statements, with errors translated."""
        try:
            with self.engine.connect() as connection:
                yield connection
        except sa.exc.SQLAlchemyError as exc:
            raise translate_error(exc) from exc

    def dispose(self) -> None:
        """Close every pooled connection."""
        self._parked.close()
        self.engine.dispose()
