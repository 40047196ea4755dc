"""The unit of work: one database transaction per public call, retried when transient.

Each call runs its service function on a UnitOfWork: statements, and an ORM Session on the
same connection made when first asked for. `transaction()` opens a block whose ORM Session
every call in the same thread or task joins (a ContextVar, checked against its owner).
The pieces here are synchronous and shared: the async manager (asyncdb.py) runs the very
same functions through `AsyncConnection.run_sync`. This is also the one place where
SQLAlchemy and driver errors become StateErrors.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import PoolProxiedConnection

from statekeeper.config import WRITE_OPTION, driver_sql
from statekeeper.errors import ReadOnlyError, StorageBusy
from statekeeper.executor import (
    DriverErrors,
    NeedsConnection,
    PlanCache,
    Reconnect,
    UnitOfWork,
)
from statekeeper.pipeline import read_committed, release, run_on_server
from statekeeper.translate import is_transient, translate_error

__all__ = [
    "Block",
    "Database",
    "ParkedConnections",
    "ReadOnlySession",
    "RetryPolicy",
    "Scope",
    "read_only",
    "run_in_block",
    "run_transaction",
]

T = TypeVar("T")
Work = Callable[[UnitOfWork], T]


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter for transient failures."""

    attempts: int = 6
    base_delay: float = 0.02
    max_delay: float = 1.0

    def delay(self, attempt: int) -> float:
        """Seconds to sleep before retry number `attempt` (0-based)."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))  # noqa: S311

    def after(self, exc: Exception, attempt: int, store: URL | None = None) -> float:
        """Seconds to wait before running a failed unit of work again, or the StateError
        (which names `store`, the URL the work ran on)."""
        last = attempt + 1 >= self.attempts
        if isinstance(exc, Reconnect):
            cause = exc.__cause__
            assert isinstance(cause, sa.exc.DBAPIError)
            if last:
                raise translate_error(cause, store) from cause
            return 0.0  # the pool has replaced its connections: no wait needed
        assert isinstance(exc, sa.exc.SQLAlchemyError)
        if is_transient(exc) and not last:
            return self.delay(attempt)
        raise translate_error(exc, store) from exc


def run_transaction(
    connection: Connection,
    plans: PlanCache,
    fn: Work[T],
    changed: set[str] | None = None,
    *,
    write: bool = True,
) -> T:
    """One attempt of a unit of work on SQLAlchemy: begin, run, flush the ORM, commit.

    `changed` collects the workspaces whose sessions it changed. A read on PostgreSQL at
    READ COMMITTED runs in autocommit mode: each statement takes a snapshot of its own
    there anyway, and BEGIN and COMMIT would cost two round trips.
    """
    if not write and _reads_alone(connection):
        connection.execution_options(isolation_level="AUTOCOMMIT")
    transaction = connection.begin()
    uow = UnitOfWork(connection.dialect, plans, connection=connection, changed=changed)
    try:
        result = fn(uow)
        uow.flush()
    except sa.exc.DBAPIError as exc:
        if isinstance(exc, sa.exc.IntegrityError):
            uow.reject(exc)
        if exc.connection_invalidated:
            # Lost before the commit was sent: nothing was committed, so the unit of work
            # may run again, on a new connection.
            raise Reconnect from exc
        raise
    finally:
        uow.close()
    transaction.commit()
    return result


def _reads_alone(connection: Connection) -> bool:
    if connection.dialect.name != "postgresql":
        return False
    driver = connection.connection.driver_connection
    return read_committed(driver, connection.default_isolation_level)


@dataclass(frozen=True)
class Block:
    """An open `transaction()` block: its connection and ORM session, and who opened it."""

    connection: Connection
    session: Session
    owner: object
    handle: Any
    """What the block yields: the Session, or the AsyncSession wrapping it."""
    runner: Any = None
    """The AsyncConnection the block's calls run through (async manager only)."""
    changed: set[str] = field(default_factory=set)
    """Workspaces whose sessions the block's calls changed."""


def run_in_block(block: Block, plans: PlanCache, fn: Work[T], *, write: bool) -> T:
    """A call inside a block; a rejected write is undone by a savepoint and the block goes on.

    The application's pending ORM objects are flushed first, so statekeeper's statements
    see them (a foreign key to its own row, say).
    """
    session = block.session
    try:
        if session.new or session.dirty or session.deleted:
            session.flush()
        uow = UnitOfWork(
            block.connection.dialect,
            plans,
            connection=block.connection,
            session=session,
            changed=block.changed,
            in_block=True,
        )
        if not write:
            return fn(uow)
        with session.begin_nested():
            session.connection()  # SAVEPOINT now: services also run statements on the connection
            try:
                return fn(uow)
            except sa.exc.IntegrityError as exc:
                uow.reject(exc)
                raise
    except sa.exc.SQLAlchemyError as exc:
        raise translate_error(exc, block.connection.engine.url) from exc


def current_owner() -> object:
    """Who a block belongs to: the running asyncio task, else the thread."""
    try:
        task = asyncio.current_task()
    except RuntimeError:
        task = None
    return task if task is not None else threading.get_ident()


class Scope:
    """The open block of one manager, seen only by the thread or task that opened it.

    A ContextVar alone would also be seen by tasks and threads started inside the block
    (they copy the context), which would then share one connection concurrently.
    """

    def __init__(self, name: str) -> None:
        self._var: ContextVar[Block | None] = ContextVar(name, default=None)

    def current(self) -> Block | None:
        """This thread's or task's open block, if any."""
        block = self._var.get()
        if block is None or block.owner != current_owner():
            return None
        return block

    def enter(self, block: Block) -> Token[Block | None]:
        """Make `block` the current one until `leave`."""
        return self._var.set(block)

    def leave(self, token: Token[Block | None]) -> None:
        """Forget the block entered with `token`."""
        self._var.reset(token)


class ReadOnlySession(Session):
    """An ORM Session that refuses to flush changes: `StateManager.session()`."""


@event.listens_for(ReadOnlySession, "before_flush")
def _refuse_writes(session: Session, _context: Any, _instances: Any) -> None:
    changed = [obj for obj in session.dirty if session.is_modified(obj)]
    if session.new or session.deleted or changed:
        raise ReadOnlyError(
            "this ORM session is read-only: change the store through the manager's API, "
            "or add your own rows in `with sm.transaction() as s:`"
        )


def read_only(connection: Connection, *, on: bool) -> None:
    """Make a connection refuse writes in the database itself, or undo that."""
    if connection.dialect.name == "sqlite":
        driver_sql(connection, f"PRAGMA query_only={'ON' if on else 'OFF'}")
    elif on:
        connection.execution_options(postgresql_readonly=True)


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
            self.forget()
        try:
            return self._idle.pop()
        except IndexError:
            return self._engine.raw_connection()

    def forget(self) -> None:
        """After a fork: the parent's connections are never used, nor closed (SQLite forbids
        both), only kept from being garbage collected."""
        self._inherited += self._idle
        self._idle, self._pid = [], os.getpid()

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


def _after_fork(database: weakref.ReferenceType[Database]) -> None:
    """In a forked child, leave the parent's pooled connections alone (SQLAlchemy's advice)."""
    alive = database()
    if alive is not None:
        alive._parked.forget()
        alive.engine.dispose(close=False)
        if alive._turns is not None:
            alive._turns = WriteTurns(alive._turns.timeout_ms)  # a parent thread's turn is gone


_NO_TURN = nullcontext()
"""What readers, and writers on PostgreSQL, enter instead of a WriteTurns."""


class WriteTurns:
    """SQLite: the writers of one process take turns on a mutex before their BEGIN IMMEDIATE.

    SQLite's busy handler polls with growing sleeps, so a waiting writer loses the lock again
    and again to the thread that just released it: with 8 threads on one store, one made
    1,217 calls while another made 1, and the slowest call waited 1.6-2.4 s of the 5 s
    timeout. Taking turns, the slowest took 28-31 ms, at 0.89-0.91x the throughput at FULL
    and 0.77x at NORMAL (scripts/writers.py; docs/benchmarks.md). Other processes, and
    `transaction()` blocks, still meet at SQLite's lock; a writer waits for its turn at most
    `busy_timeout_ms`, then gets StorageBusy.
    """

    def __init__(self, timeout_ms: int) -> None:
        self.timeout_ms = timeout_ms
        self._mutex = threading.Lock()

    def take(self) -> None:
        """Wait for this process's other writers; StorageBusy after the busy timeout."""
        if not self._mutex.acquire(timeout=self.timeout_ms / 1000):
            raise StorageBusy(
                f"database stayed busy: other writers in this process held it for "
                f"{self.timeout_ms} ms (busy_timeout_ms)"
            )

    def give_up(self) -> None:
        """Let the next writer in."""
        self._mutex.release()

    def __enter__(self) -> None:
        self.take()

    def __exit__(self, *exc: object) -> None:
        self.give_up()


class Database:
    """An Engine plus the connection scope and unit of work of one StateManager."""

    def __init__(
        self, engine: Engine, retry: RetryPolicy | None = None, *, busy_timeout_ms: int = 5_000
    ) -> None:
        self.engine = engine
        self.retry = retry or RetryPolicy()
        self._turns = WriteTurns(busy_timeout_ms) if engine.dialect.name == "sqlite" else None
        # Views of the one engine (same pool) that tag their connections as writers or not,
        # prebuilt so a unit of work sets no options per call.
        self._engines = {
            True: engine.execution_options(**{WRITE_OPTION: True}),
            False: engine.execution_options(**{WRITE_OPTION: False}),
        }
        self._plans = PlanCache(engine.dialect)
        self._parked = ParkedConnections(engine)
        self._scope = Scope(f"statekeeper_scope_{id(self)}")
        self.on_commit: Callable[[set[str]], None] | None = None
        """Called after a commit with the workspaces whose sessions changed (legacy mirror)."""
        self.fallbacks = 0
        """Direct units of work that had to rerun on SQLAlchemy (tests keep this at 0)."""
        reference = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _after_fork(reference))

    @property
    def dialect(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self.engine.dialect.name

    def run(self, fn: Work[T], *, write: bool, direct: bool = False) -> T:
        """Run `fn` in its own transaction (or the enclosing `transaction()` block's).

        `direct` marks a unit of work made of prepared statements only: on SQLite it runs
        on a driver connection alone, without SQLAlchemy's Connection.
        """
        block = self._scope.current()
        if block is not None:
            return run_in_block(block, self._plans, fn, write=write)
        for attempt in range(self.retry.attempts):
            changed: set[str] = set()
            try:
                result = self._attempt(fn, write=write, direct=direct, changed=changed)
            except (Reconnect, sa.exc.SQLAlchemyError) as exc:
                time.sleep(self.retry.after(exc, attempt, self.engine.url))
                continue
            if changed and self.on_commit is not None:
                self.on_commit(changed)
            return result
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _attempt(self, fn: Work[T], *, write: bool, direct: bool, changed: set[str]) -> T:
        """One try: on the driver alone when the caller marked every statement as direct."""
        if direct and self._plans.direct:
            try:
                if self.dialect == "postgresql":
                    return self._run_on_server(fn, write=write, changed=changed)
                return self.run_on_driver(fn, write=write, changed=changed)
            except NeedsConnection:
                self.fallbacks += 1  # a statement only SQLAlchemy can run: a wrong marker
                changed.clear()
        with self._turn(write), self._engines[write].connect() as connection:
            return run_transaction(connection, self._plans, fn, changed, write=write)

    def _turn(self, write: bool) -> AbstractContextManager[None]:
        """A writer's turn on SQLite (WriteTurns); readers, and PostgreSQL, take none."""
        return self._turns if write and self._turns is not None else _NO_TURN

    def _run_on_server(self, fn: Work[T], *, write: bool, changed: set[str]) -> T:
        """A PostgreSQL unit of work on a parked psycopg connection (pipeline.py)."""
        with DriverErrors(self.engine.dialect, "connect"):
            pooled = self._parked.take()
        driver = pooled.dbapi_connection
        try:
            result = run_on_server(driver, self._plans, fn, write=write, changed=changed)
        except Reconnect:
            pooled.invalidate()
            self._parked.give_back(pooled, clean=False)
            # A server restart ends every connection: start the pool afresh, as SQLAlchemy
            # does on a disconnect, rather than meet them one retry at a time.
            self._parked.close()
            self.engine.dispose()
            raise
        except BaseException:
            self._settle(pooled, driver)
            raise
        self._settle(pooled, driver)
        return result

    def _settle(self, pooled: PoolProxiedConnection, driver: Any) -> None:
        """Park a connection that can take the next unit of work; drop one that cannot."""
        usable = release(driver)
        if not usable:
            pooled.invalidate()
        self._parked.give_back(pooled, clean=usable)

    def run_on_driver(self, fn: Work[T], *, write: bool, changed: set[str]) -> T:
        """A SQLite transaction on a driver connection, without SQLAlchemy's Connection.

        SQLAlchemy's connect, begin and commit cost about 17 µs a call; a parked connection
        and the driver's own BEGIN and COMMIT about 2 µs. Writers still BEGIN IMMEDIATE.
        Raises NeedsConnection, having rolled back, for a statement only SQLAlchemy can run.
        The async manager calls it from worker threads (asyncdb.py).
        """
        dialect = self.engine.dialect
        begin = "BEGIN IMMEDIATE" if write else "BEGIN"
        with self._turn(write):
            with DriverErrors(dialect, "connect"):
                pooled = self._parked.take()
            clean = False
            try:
                driver = pooled.dbapi_connection
                with DriverErrors(dialect, begin):
                    driver.execute(begin)  # type: ignore[union-attr]
                uow = UnitOfWork(dialect, self._plans, driver=driver, changed=changed)
                try:
                    result = fn(uow)
                except BaseException as exc:
                    driver.rollback()  # type: ignore[union-attr]
                    clean = True
                    if isinstance(exc, sa.exc.IntegrityError):
                        uow.reject(exc)
                    raise
                with DriverErrors(dialect, "COMMIT"):
                    driver.commit()  # type: ignore[union-attr]
                clean = True
                return result
            finally:
                self._parked.give_back(pooled, clean=clean)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One transaction for every call in the block, in this thread or task; yields its
        ORM Session, whose objects commit or roll back with them."""
        block = self._scope.current()
        if block is not None:
            yield block.session
            return
        try:
            connection = self._engines[True].connect()
            connection.begin()
        except sa.exc.SQLAlchemyError as exc:
            raise translate_error(exc, self.engine.url) from exc
        session = Session(bind=connection, expire_on_commit=False)
        block = Block(connection, session, current_owner(), session)
        token = self._scope.enter(block)
        try:
            yield session
            try:
                session.flush()
                connection.commit()
            except sa.exc.SQLAlchemyError as exc:
                raise translate_error(exc, self.engine.url) from exc
        finally:
            self._scope.leave(token)
            session.close()
            connection.close()
        if block.changed and self.on_commit is not None:
            self.on_commit(block.changed)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A read-only ORM Session on its own connection and snapshot."""
        try:
            connection = self._engines[False].connect()
            read_only(connection, on=True)
        except sa.exc.SQLAlchemyError as exc:
            raise translate_error(exc, self.engine.url) from exc
        session = ReadOnlySession(bind=connection, expire_on_commit=False)
        try:
            yield session
        finally:
            session.close()
            try:
                connection.rollback()
                read_only(connection, on=False)
            except sa.exc.SQLAlchemyError:
                connection.invalidate()  # never back to the pool still read-only
            finally:
                connection.close()

    def offload(self, fn: Callable[..., T], *args: Any) -> T:
        """Call blocking file work (the async manager runs it in a worker thread)."""
        return fn(*args)

    def run_on_connection(self, fn: Callable[[Connection], T]) -> T:
        """Run maintenance on a connection of its own (no transaction opened for it)."""
        try:
            with self.engine.connect() as connection:
                return fn(connection)
        except sa.exc.SQLAlchemyError as exc:
            raise translate_error(exc, self.engine.url) from exc

    def with_sync_engine(self, fn: Callable[[Engine], T]) -> T:
        """Run a whole-store operation (backup, copy) that needs an Engine of its own."""
        try:
            return fn(self.engine)
        except sa.exc.SQLAlchemyError as exc:
            raise translate_error(exc, self.engine.url) from exc

    def dispose(self) -> None:
        """Close every pooled connection."""
        self._parked.close()
        self.engine.dispose()
