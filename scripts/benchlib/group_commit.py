"""Grouped commits, a prototype outside the library: several threads' units of work, one COMMIT.

At synchronous=FULL every SQLite commit ends in an fdatasync of the WAL, and only one
connection holds the write lock at a time. PostgreSQL's commit_delay lets commits that arrive
together share one WAL flush; the nearest SQLite can come, inside one process, is one
connection running several callers' units of work in one transaction. This module measures
what that would gain, with the floor's statements (floor_sql.py: statekeeper's own), before
anyone changes src/ for it.

Three ways for N threads to run units of work (a unit: the statements of one API call):

- `PlainExecutor`: a connection per thread, BEGIN IMMEDIATE ... COMMIT per unit; threads
  queue on SQLite's lock (its busy handler sleeps and polls). What statekeeper does today.
- `MutexExecutor`: one connection shared behind a threading.Lock, one commit per unit. It
  separates the cost of waiting on SQLite's busy handler from the cost of the fsyncs.
- `GroupExecutor`: one connection; the thread at the head of a queue (the leader) runs every
  unit queued so far in one transaction, each inside a SAVEPOINT (a unit that fails rolls back
  only itself), then COMMITs once. Each caller returns only after that COMMIT succeeded, so
  nothing acknowledged can be lost; if the COMMIT fails, every unit of the group fails.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from benchlib.floor_sql import PRAGMAS
from benchlib.stores import FloorStore

__all__ = [
    "CommitStats",
    "Executor",
    "GroupAborted",
    "GroupExecutor",
    "MutexExecutor",
    "PlainExecutor",
    "Unit",
    "UnitStore",
    "open_unit_store",
]


class UnitStore(FloorStore):
    """The floor's operations without their own BEGIN and COMMIT: the executor owns those."""

    def _begin(self, write: bool) -> None:
        pass

    def _commit(self) -> None:
        pass

    def _rollback(self) -> None:
        pass


def open_unit_store(path: str, synchronous: str) -> UnitStore:
    """A connection with statekeeper's pragmas (as the floor's), for an executor."""
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    for pragma in PRAGMAS:
        connection.execute(pragma.format(synchronous=synchronous.upper()))
    return UnitStore("sqlite", connection, {})


Unit = Callable[[UnitStore], None]
"""The statements of one call, run on the store (and so the connection) of the executor."""


class GroupAborted(Exception):
    """A unit's error ended the whole transaction (SQLite does that on a full disk, an I/O
    error, ...): every unit of the group fails with it, not only the one that caused it."""


@dataclass
class CommitStats:
    """Commits made, units they carried, and how long each held SQLite's write lock."""

    commits: int = 0
    units: int = 0
    hold_ns: list[int] = field(default_factory=list)

    def add(self, units: int, hold_ns: int) -> None:
        self.commits += 1
        self.units += units
        self.hold_ns.append(hold_ns)


class Executor:
    """Runs units of work; `run` returns only once the unit is committed, else raises."""

    def __init__(self, store: UnitStore) -> None:
        self.store = store
        self.stats = CommitStats()

    def run(self, unit: Unit) -> None:
        raise NotImplementedError

    def _one(self, unit: Unit) -> None:
        """BEGIN IMMEDIATE, the unit, COMMIT; on any error, ROLLBACK and raise."""
        cur = self.store.cur
        cur.execute("BEGIN IMMEDIATE")
        locked = time.perf_counter_ns()
        try:
            unit(self.store)
            cur.execute("COMMIT")
        except BaseException:
            if self.store.connection.in_transaction:
                cur.execute("ROLLBACK")
            raise
        self.stats.add(1, time.perf_counter_ns() - locked)

    def close(self) -> None:
        self.store.close()


class PlainExecutor(Executor):
    """One commit per unit on this thread's own connection (statekeeper today)."""

    def run(self, unit: Unit) -> None:
        self._one(unit)


class MutexExecutor(Executor):
    """One commit per unit on a connection the threads share, one thread at a time."""

    def __init__(self, store: UnitStore) -> None:
        super().__init__(store)
        self._lock = threading.Lock()

    def run(self, unit: Unit) -> None:
        with self._lock:
            self._one(unit)


@dataclass(eq=False)
class _Request:
    unit: Unit
    wake: threading.Event = field(default_factory=threading.Event)
    done: bool = False
    error: BaseException | None = None


class GroupExecutor(Executor):
    """Leader and followers: the head of the queue commits everything queued behind it.

    The queue is LevelDB's writer queue: a caller appends itself; the caller at the head runs
    the whole queue as it stands (its own unit first), pops it, wakes each member, and wakes
    the new head, which leads the next group. Callers that arrive while a group runs wait
    for the next one, so a group forms exactly when commits would have queued anyway:
    nobody waits on a timer (unlike PostgreSQL's commit_delay), and one caller alone pays
    only the queue and a SAVEPOINT.
    """

    def __init__(self, store: UnitStore, *, max_group: int = 64) -> None:
        super().__init__(store)
        self._mutex = threading.Lock()
        self._queue: deque[_Request] = deque()
        self._max_group = max_group

    @property
    def waiting(self) -> int:
        """Callers in the queue, the one leading a group included."""
        with self._mutex:
            return len(self._queue)

    def run(self, unit: Unit) -> None:
        request = _Request(unit)
        with self._mutex:
            self._queue.append(request)
            leads = len(self._queue) == 1
        if not leads:
            request.wake.wait()
        if not request.done:  # at the head of the queue: lead a group
            self._lead()
        if request.error is not None:
            raise request.error

    def _lead(self) -> None:
        with self._mutex:
            group = [self._queue[i] for i in range(min(len(self._queue), self._max_group))]
        try:
            self._commit_group(group)
        except BaseException as exc:  # never leave the followers waiting
            self._abort(group, exc)
        with self._mutex:
            for _ in group:
                self._queue.popleft()
            head = self._queue[0] if self._queue else None
        for request in group:
            request.done = True
            request.wake.set()
        if head is not None:
            head.wake.set()

    def _commit_group(self, group: list[_Request]) -> None:
        """One transaction: each unit in its own SAVEPOINT, one COMMIT for those that ran."""
        cur, connection = self.store.cur, self.store.connection
        try:
            cur.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:  # busy past the timeout: nothing ran, all fail alike
            for request in group:
                request.error = exc
            return
        locked = time.perf_counter_ns()
        committed = 0
        for request in group:
            cur.execute("SAVEPOINT unit")
            try:
                request.unit(self.store)
            except Exception as exc:
                request.error = exc
                if not connection.in_transaction:
                    # SQLite rolled the whole transaction back: the earlier units went too.
                    self._abort(group, exc)
                    return
                cur.execute("ROLLBACK TO unit")
                cur.execute("RELEASE unit")
            else:
                cur.execute("RELEASE unit")
                committed += 1
        if committed == 0:  # every unit failed: nothing to make durable
            cur.execute("ROLLBACK")
            return
        try:
            cur.execute("COMMIT")
        except sqlite3.Error as exc:  # one failed COMMIT fails every unit of the group
            if connection.in_transaction:
                cur.execute("ROLLBACK")
            self._abort(group, exc)
            return
        self.stats.add(committed, time.perf_counter_ns() - locked)

    def _abort(self, group: list[_Request], cause: BaseException) -> None:
        if self.store.connection.in_transaction:
            try:
                self.store.cur.execute("ROLLBACK")
            except sqlite3.Error:
                self.store.connection.close()  # unusable now; the next call will say so
        for request in group:
            if request.error is None:
                request.error = GroupAborted(f"the group's transaction failed: {cause!r}")
