"""The direct driver path: the same rows and values as SQLAlchemy's, and really taken.

Statements marked `prepared()` skip SQLAlchemy's execution context, on SQLite and on
PostgreSQL (psycopg, pipelined for writes). These tests run every such statement both ways
on one populated store of each engine and compare what comes back (values and their
types), then check that the hot calls reach the database without going through
SQLAlchemy's cursor execution at all.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import event

from statekeeper import AgentState, InvalidInput, StateManager, Task
from statekeeper.dialects import upsert
from statekeeper.executor import MAX_PLANS, PREPARED_OPTION, NeedsConnection, UnitOfWork, prepared
from statekeeper.queries import CONTEXT
from statekeeper.queries import events as qe
from statekeeper.queries import phases as qp
from statekeeper.queries import sessions as qs
from statekeeper.queries import worktree as qw


@pytest.fixture
def store(store_url: str) -> Iterator[tuple[StateManager, str]]:
    with StateManager(store_url) as sm:
        sid = sm.create_session("Ünïcode subject", task="find the bug", metadata={"k": [1, 2]})
        sm.save_phase_completion(sid, "p1", {"out": "x" * 50}, 10, "0.01", context={"a": 1})
        sm.save_phase_completion(sid, "p2", None, 20, Decimal("0.00000001"), tokens_in=5)
        sm.add_instance(
            sid, 1, worktree_path="/w/1", branch="b1", agent_name="a", tmux_session_id="t"
        )
        sm.add_instance(
            sid, 2, worktree_path="/w/2", branch="b2", agent_name="b", tmux_session_id="u"
        )
        for n in range(3):
            sm.add_chat_message(sid, "user", f"message {n}", instance_number=1)
        sm.update_session_status(sid, "failed", "boom")
        yield sm, sid


def _cases(sid: str) -> dict[str, tuple[Any, dict[str, Any]]]:
    chat_first = {"sids": [sid]}
    return {
        "by_id": (qs.BY_ID, {"sid": sid}),
        "lock": (qs.LOCK, {"sid": sid}),
        "timing": (qs.TIMING, {"sid": sid}),
        "cursor": (qs.CURSOR, {"sid": sid}),
        "count": (qs.COUNT, {}),
        "history": (
            qs.history(status=False, kind=False, workspace=False, after=False),
            {"limit": 5},
        ),
        "history_after": (
            qs.history(status=True, kind=False, workspace=False, after=True),
            {
                "limit": 5,
                "status": "failed",
                "after_created": datetime(2999, 1, 1, tzinfo=UTC),
                "after_id": "z",
            },
        ),
        "phases": (qp.PHASES_OF, {"sid": sid}),
        "phase": (qp.PHASE_OF, {"sid": sid, "pid": "p2"}),
        "previous": (qp.PREVIOUS, {"sid": sid, "pid": "p1"}),
        "exists": (qp.EXISTS, {"sid": sid, "pid": "p1"}),
        "context": (qp.CONTEXT_OF, {"sid": sid}),
        "events": (qe.page("session", after=False, limited=False), {"key": sid}),
        "events_by_type": (
            qe.page("type", after=True, limited=True),
            {"key": "phase.completed", "seq": 0, "limit": 10},
        ),
        "instances": (qw.INSTANCES_OF, {"sids": [sid, "other", "third"]}),
        "instance_exists": (qw.INSTANCE_EXISTS, {"sid": sid, "number": 2}),
        "chat": (qw.chat_of(after=False, limit=False), chat_first),
        "chat_page": (
            qw.chat_of(after=True, limit=True),
            {"sids": [sid], "after_seq": 1, "limit": 2},
        ),
        "existing_ids": (qw.EXISTING_IDS, {"sids": [sid, "missing"]}),
    }


@pytest.mark.parametrize("name", sorted(_cases("x")))
def test_direct_rows_equal_sqlalchemy_rows(store: tuple[StateManager, str], name: str) -> None:
    sm, sid = store
    statement, params = _cases(sid)[name]
    assert statement.get_execution_options().get(PREPARED_OPTION)
    with sm.engine.connect() as connection:
        expected = [tuple(row) for row in connection.execute(statement, params)]
        executor = UnitOfWork(connection.dialect, sm._db._plans, connection=connection)
        got = [tuple(row) for row in executor.execute(statement, params)]
    assert expected, "the case must return rows to compare"
    assert got == expected
    for got_row, expected_row in zip(got, expected, strict=True):
        assert [type(v) for v in got_row] == [type(v) for v in expected_row]
        for value in got_row:
            if isinstance(value, datetime):
                assert value.tzinfo is UTC


def test_direct_rows_have_column_attributes(store: tuple[StateManager, str]) -> None:
    sm, sid = store
    with sm.engine.connect() as connection:
        executor = UnitOfWork(connection.dialect, sm._db._plans, connection=connection)
        row = executor.execute(qp.CONTEXT_OF, {"sid": sid}).first()
    assert row.data == {"a": 1}
    assert row.last_phase == "p2"
    assert row.cost_usd == Decimal("0.01000001")
    assert row.status == "failed"


WRITTEN_AT = datetime(2030, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
STORED = {
    "sqlite": ("?", ('{"b":"é"}', 2, "2030-05-06 07:08:09.123456")),
    "postgresql": ("%(sid)s", ({"b": "é"}, 2, WRITTEN_AT)),
}
"""How each engine stores the upsert's values: SQLite as text, PostgreSQL as jsonb and
timestamptz."""


def test_direct_writes_convert_values_like_sqlalchemy(
    store: tuple[StateManager, str], engine_name: str
) -> None:
    sm, sid = store
    statement = upsert(engine_name, CONTEXT, ("session_id",), ("data", "updated_at"), "version")
    mark, expected = STORED[engine_name]
    with sm.engine.connect() as connection, connection.begin():
        executor = UnitOfWork(connection.dialect, sm._db._plans, connection=connection)
        params = {"session_id": sid, "data": {"b": "é"}, "version": 1, "updated_at": WRITTEN_AT}
        assert executor.execute(statement, params).rowcount == 1
        stored = connection.exec_driver_sql(
            f"SELECT data, version, updated_at FROM workflow_context WHERE session_id = {mark}",
            (sid,) if mark == "?" else {"sid": sid},
        ).one()
        connection.rollback()
    assert tuple(stored) == expected


def test_a_driver_only_unit_reruns_on_sqlalchemy_for_other_statements(
    store: tuple[StateManager, str],
) -> None:
    sm, _ = store
    unprepared = sa.select(sa.literal(1))
    executor = UnitOfWork(sm.engine.dialect, sm._db._plans)
    with pytest.raises(NeedsConnection):
        executor.execute(unprepared)
    with pytest.raises(NeedsConnection):
        executor.session  # noqa: B018 - asking for the ORM session needs a Connection too
    # A unit of work wrongly marked direct still runs, on SQLAlchemy, and is counted.
    assert sm._db.run(lambda uow: uow.scalar(unprepared), write=False, direct=True) == 1
    assert sm._db.fallbacks == 1
    assert sm._db.run(lambda uow: uow.scalar(unprepared), write=False) == 1
    assert sm._db.fallbacks == 1


def test_every_call_marked_direct_runs_on_the_driver_alone(
    store: tuple[StateManager, str], tmp_path: Path
) -> None:
    """The `direct=True` markers of the API are right: none of those calls falls back."""
    sm, sid = store
    new = sm.create_session("direct", workspace=tmp_path, metadata={"a": 1})
    sm.save_phase_completion(new, "p", {"o": 1}, 1, "0.1", context={"c": 1})
    sm.save_phase_completion(new, "p", {"o": 2}, 2, "0.2")
    sm.record_event("note", "n", session_id=new)
    sm.add_instance(new, 1, worktree_path="/w", branch="b", agent_name="a", tmux_session_id="t")
    sm.update_instance(new, 1, status="running", output="out")
    first = sm.add_chat_message(new, "user", "hi")
    sm.add_chat_message(new, "assistant", "hello", instance_number=1)
    assert sm.run_phase(new, "p", lambda: 1) == {"o": 2}
    sm.save_agent_state(AgentState(agent_id="direct", state_data={"s": 1}), expected_version=0)
    sm.save_agent_state(AgentState(agent_id="direct", status="running"), expected_version=1)
    sm.update_agent_status("direct", "paused", reason="r")
    sm.record_state_transition("direct", "a", "b")
    agent_snapshot = sm.create_snapshot(agent_id="direct")
    sm.create_snapshot(session_id=new)
    sm.restore_snapshot(agent_snapshot)
    sm.delete_agent("direct")
    sm.restore_agent("direct")
    task = sm.save_task(Task(title="t", assigned_to="direct"))
    reads = [
        sm.get_session(new),
        sm.get_session_history(5),
        sm.get_session_history(5, before=sid, status="failed"),
        sm.calculate_duration(new),
        sm.get_total_sessions(),
        sm.get_completed_phases(new),
        sm.is_phase_completed(new, "p"),
        sm.load_context(new),
        sm.resume_session(new),
        sm.get_events(new),
        sm.get_events_by_type("note"),
        sm.get_instances(new),
        sm.get_chat_history(new, after=first, limit=1),
        sm.get_worktree_session(new),
        sm.get_events(new, limit=2, after=first_event(sm, new)),
        sm.load_agent_state("direct"),
        sm.list_agents(status="paused"),
        sm.get_state_history("direct"),
        sm.get_snapshot(agent_snapshot),
        sm.list_snapshots(agent_id="direct"),
        sm.get_task(task.id),
        sm.get_tasks(assigned_to="direct"),
    ]
    assert all(value is not None for value in reads)
    sm.delete_session(new)
    assert sm._db.fallbacks == 0


def first_event(sm: StateManager, session_id: str) -> str:
    """The id of a session's first event."""
    return sm.get_events(session_id, limit=1)[0].id


def test_a_rejected_write_on_the_driver_path_writes_nothing(
    store: tuple[StateManager, str],
) -> None:
    sm, sid = store
    before, events = sm.get_session(sid), sm.get_events(sid)
    with pytest.raises(InvalidInput, match="session_id"):
        sm.create_session("again", session_id=sid)
    assert sm.get_session(sid) == before
    assert sm.get_events(sid) == events
    assert sm.get_total_sessions() == 1


@pytest.mark.parametrize(
    "call",
    ["get_session", "load_context", "get_session_history", "get_chat_history", "save_phase"],
)
def test_hot_calls_bypass_sqlalchemy_execution(store: tuple[StateManager, str], call: str) -> None:
    sm, sid = store
    sm.update_session_status(sid, "running")
    calls: dict[str, Callable[[], object]] = {
        "get_session": lambda: sm.get_session(sid),
        "load_context": lambda: sm.load_context(sid),
        "get_session_history": lambda: sm.get_session_history(10),
        "get_chat_history": lambda: sm.get_chat_history(sid, limit=2),
        "save_phase": lambda: sm.save_phase_completion(sid, "p3", [1], 1, "0.5", context={}),
    }
    calls[call]()  # the first call of a call site may compile
    through_sqlalchemy: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        through_sqlalchemy.append(statement)

    event.listen(sm.engine, "before_cursor_execute", record)
    try:
        assert calls[call]() is not None or call == "save_phase"
    finally:
        event.remove(sm.engine, "before_cursor_execute", record)
    assert through_sqlalchemy == []


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ("2026-12-01 17:57:01.123456", datetime(2026, 12, 1, 17, 57, 1, 123456, tzinfo=UTC)),
        ("2026-12-01 17:57:01", datetime(2026, 12, 1, 17, 57, 1, tzinfo=UTC)),
        ("2026-12-01T17:57:01.5", datetime(2026, 12, 1, 17, 57, 1, 500000, tzinfo=UTC)),
        ("2026-12-01 19:57:01+02:00", datetime(2026, 12, 1, 17, 57, 1, tzinfo=UTC)),
        (None, None),
    ],
)
def test_sqlite_timestamps_read_back_as_utc(stored: str | None, expected: datetime | None) -> None:
    """The fast parse of SQLAlchemy's own text, and the general one for text written by others."""
    from sqlalchemy.dialects import sqlite

    from statekeeper.models.base import UTCDateTime

    process = UTCDateTime().result_processor(sqlite.dialect(), None)
    assert process is not None
    value = process(stored)
    assert value == expected
    assert value is None or value.tzinfo is UTC


@given(st.datetimes(timezones=st.timezones()))
def test_sqlite_timestamps_are_written_as_sqlalchemy_writes_them(value: datetime) -> None:
    """The fast format is byte for byte SQLAlchemy's storage format, in UTC: stored text sorts
    and compares (retention, a thread's refresh) with what was written before it."""
    from sqlalchemy.dialects import sqlite

    from statekeeper.models.base import UTCDateTime

    dialect = sqlite.dialect()
    fast = UTCDateTime().bind_processor(dialect)
    general = sa.DateTime().dialect_impl(dialect).bind_processor(dialect)
    assert fast is not None and general is not None
    try:
        utc = value.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:
        with pytest.raises(OverflowError):
            fast(value)
        return
    assert fast(value) == general(utc)


def test_a_naive_timestamp_is_refused_before_sqlite() -> None:
    from sqlalchemy.dialects import sqlite

    from statekeeper.models.base import UTCDateTime

    fast = UTCDateTime().bind_processor(sqlite.dialect())
    assert fast is not None
    with pytest.raises(ValueError, match="naive"):
        fast(datetime(2026, 12, 4, 12, 0))
    assert fast(None) is None


def test_driver_connections_are_parked_and_bounded(store: tuple[StateManager, str]) -> None:
    sm, sid = store
    parked = sm._db._parked
    for _ in range(5):
        sm.get_session(sid)
    assert len(parked._idle) == 1  # one connection serves sequential calls

    def read() -> None:
        for _ in range(50):
            assert sm.get_session(sid) is not None

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert 1 <= len(parked._idle) <= 4
    sm.close()
    assert parked._idle == []


def test_a_forked_process_never_reuses_the_parents_connections(
    store: tuple[StateManager, str],
) -> None:
    """A real os.fork(): the child opens connections of its own, parked and pooled alike,
    writes, and the parent's connections still work afterwards."""
    sm, sid = store
    sm.get_session(sid)
    (parents,) = sm._db._parked._idle
    parent_driver = parents.dbapi_connection
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report through the pipe, never return into pytest
        status = 1
        try:
            child_sid = sm.create_session("from the child")
            own = sm._db._parked._idle[0].dbapi_connection is not parent_driver
            kept = sm._db._parked._inherited == [parents]
            with sm.transaction():  # a pooled SQLAlchemy connection, not the parent's
                sm.save_context(child_sid, {"child": True})
            os.write(write, f"{child_sid} {own} {kept}".encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    message = os.read(read, 1000).decode()
    os.close(read)
    assert os.waitstatus_to_exitcode(status) == 0
    child_sid, reported_own, reported_kept = message.split()
    assert (reported_own, reported_kept) == ("True", "True")
    assert sm._db._parked._idle[0] is parents  # the parent keeps its own
    context = sm.load_context(child_sid)
    assert context is not None and context.data == {"child": True}
    assert sm.get_total_sessions() == 2


def test_threads_writing_on_the_driver_path_lose_nothing(store: tuple[StateManager, str]) -> None:
    """Eight threads contend for SQLite's write lock through BEGIN IMMEDIATE and the parked
    connections: every acknowledged write is there, each thread's chat in its order."""
    sm, sid = store
    sm.update_session_status(sid, "running")
    sessions = [sm.create_session(f"t{n}") for n in range(8)]
    failures: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(25):
                sm.add_chat_message(sid, "user", f"{n}:{i}")
                sm.save_phase_completion(sessions[n], f"p{i}", {"i": i}, 1, "0.01")
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    chat = [m.content for m in sm.get_chat_history(sid) if ":" in m.content]
    for n in range(8):
        assert [c for c in chat if c.startswith(f"{n}:")] == [f"{n}:{i}" for i in range(25)]
    for n in range(8):
        session = sm.get_session(sessions[n])
        assert session is not None and session.cost_usd == Decimal("0.25")
        assert len(sm.get_completed_phases(sessions[n])) == 25
    assert sm.integrity_check().ok


def test_the_plan_cache_is_bounded(store: tuple[StateManager, str]) -> None:
    """Prepared statements built per call would fill it: past the bound they run on
    SQLAlchemy, with the same result."""
    sm, _ = store
    plans = sm._db._plans
    with sm.engine.connect() as connection:
        executor = UnitOfWork(connection.dialect, plans, connection=connection)
        for n in range(MAX_PLANS + 10):
            statement = prepared(sa.select(sa.literal(n)))
            assert executor.execute(statement).scalar() == n
    assert len(plans._plans) == MAX_PLANS


def test_columns_no_named_row_can_hold_go_to_sqlalchemy(store: tuple[StateManager, str]) -> None:
    sm, _ = store
    statement = prepared(sa.select(sa.literal(1).label("from"), sa.literal(2).label("_x")))
    with sm.engine.connect() as connection:
        executor = UnitOfWork(connection.dialect, sm._db._plans, connection=connection)
        row = executor.execute(statement).first()
    assert tuple(row) == (1, 2)
    assert sm._db._plans.plan(statement, {}) is None
