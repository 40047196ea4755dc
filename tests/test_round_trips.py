"""Round trips per call on PostgreSQL, counted through a TCP proxy: a count, never a timing.

Reads are one statement without BEGIN or COMMIT, on the driver or on SQLAlchemy. Writes
pipeline BEGIN with their first statement and COMMIT with their last, so a write that
reads nothing first is one round trip, and one that locks its session and then writes is
two (pipeline.py).
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from benchlib.proxy import RoundTripProxy
from sqlalchemy.engine import URL, make_url

from statekeeper import (
    AsyncStateManager,
    InvalidInput,
    InvalidTransition,
    SessionCompleted,
    SessionNotFound,
    StateManager,
)
from tests.async_facade import AsyncFacade
from tests.conftest import PgDatabases

SID = "counted"


@pytest.fixture
def proxied(pg_databases: PgDatabases) -> Iterator[tuple[URL, RoundTripProxy]]:
    """A new store, migrated directly, and its URL through a counting proxy."""
    url = pg_databases.create()
    StateManager(url).close()
    proxy = RoundTripProxy((str(url.host), int(url.port or 5432)))
    yield make_url(str(url)).set(host="127.0.0.1", port=proxy.port), proxy
    proxy.close()


@pytest.fixture
def counted(proxied: tuple[URL, RoundTripProxy]) -> Iterator[tuple[StateManager, RoundTripProxy]]:
    through, proxy = proxied
    with StateManager(through) as sm:
        yield sm, proxy


CALLS: list[tuple[str, Callable[[Any], Any], int]] = [  # the sync or the async manager
    ("create_session", lambda sm: sm.create_session("s", task="t", session_id=SID), 1),
    ("save_phase_completion", lambda sm: sm.save_phase_completion(SID, "a", {}, 1, "0.1"), 2),
    (
        "save_phase_completion with context",
        lambda sm: sm.save_phase_completion(SID, "b", {}, 1, "0.1", context={"k": 1}),
        2,
    ),
    ("save a phase again", lambda sm: sm.save_phase_completion(SID, "a", {}, 1, "0.2"), 2),
    ("load_context", lambda sm: sm.load_context(SID), 1),
    ("resume_session", lambda sm: sm.resume_session(SID), 1),
    ("get_session", lambda sm: sm.get_session(SID), 1),
    ("get_completed_phases", lambda sm: sm.get_completed_phases(SID), 1),
    ("get_session_history", lambda sm: sm.get_session_history(50), 1),
    ("add_chat_message", lambda sm: sm.add_chat_message(SID, "user", "hello"), 2),
    ("get_chat_history", lambda sm: sm.get_chat_history(SID, limit=100), 1),
    ("search_sessions", lambda sm: sm.search_sessions("task", limit=10), 1),
    ("get_session_history by status", lambda sm: sm.get_session_history(50, status="running"), 1),
    ("get_events", lambda sm: sm.get_events(SID), 1),
    ("get_total_sessions", lambda sm: sm.get_total_sessions(), 1),
    ("get_statistics", lambda sm: sm.get_statistics(), 1),
    ("update_session_status", lambda sm: sm.update_session_status(SID, "completed"), 2),
]


def test_each_call_takes_its_round_trips(counted: tuple[StateManager, RoundTripProxy]) -> None:
    sm, proxy = counted
    sm.create_session("warm-up")  # the pool's connections are open before counting
    sm.get_session("warm-up")
    sm.search_sessions("warm-up")
    found = {}
    for name, call, _expected in CALLS:
        with proxy.counting() as turns:
            call(sm)
        found[name] = turns[0]
    assert found == {name: expected for name, _call, expected in CALLS}


def test_rejected_pipelined_writes_leave_nothing_and_the_connection_usable(
    counted: tuple[StateManager, RoundTripProxy],
) -> None:
    sm, _proxy = counted
    sid = sm.create_session("kept")
    with pytest.raises(InvalidInput) as taken:
        sm.create_session("again", session_id=sid)  # found only at the batch's COMMIT
    assert taken.value.field == "session_id"
    with pytest.raises(SessionNotFound):
        sm.save_phase_completion("missing", "p", {}, 1, "0.1")
    with pytest.raises(SessionNotFound):
        sm.add_chat_message("missing", "user", "orphan")
    sm.update_session_status(sid, "completed")
    with pytest.raises(SessionCompleted):
        sm.save_phase_completion(sid, "p", {}, 1, "0.1")
    with pytest.raises(InvalidTransition):
        sm.update_session_status(sid, "running")
    session = sm.get_session(sid)
    assert session is not None and session.subject == "kept" and session.cost_usd == Decimal(0)
    assert sm.get_completed_phases(sid) == []
    assert sm.get_total_sessions() == 1
    assert [e.event_type for e in sm.get_events(sid)] == [
        "session.created",
        "session.status_changed",
    ]


@pytest.mark.parametrize("manager_kind", ["sync", "async"])
def test_a_connection_dropped_without_a_word_is_replaced_before_a_write(
    proxied: tuple[URL, RoundTripProxy], manager_kind: str
) -> None:
    """A proxy or firewall drops idle connections silently. A one-round-trip write sends
    BEGIN, its statements and COMMIT together; sent on such a connection its outcome could
    not be known, so the end of the stream is looked for first (no round trip), and the
    write runs once, on a new connection."""
    through, proxy = proxied
    manager = StateManager if manager_kind == "sync" else AsyncFacade
    with manager(through) as sm:
        sm.get_total_sessions()  # a pooled connection to lose
        proxy.cut()
        sid = sm.create_session("after a silent drop")
        assert sm.get_total_sessions() == 1
        assert [e.event_type for e in sm.get_events(sid)] == ["session.created"]


def test_writes_keep_the_engines_isolation_level(proxied: tuple[URL, RoundTripProxy]) -> None:
    """BEGIN is written by hand on the pipeline: it must still say the engine's level, and
    reads at that level keep their transaction."""
    through, proxy = proxied
    with StateManager(through, isolation_level="REPEATABLE READ") as sm:
        sid = sm.create_session("levels")
        sm.save_phase_completion(sid, "p", {}, 1, "0.1")
        assert bytes(proxy.sent).count(b"BEGIN ISOLATION LEVEL REPEATABLE READ") >= 2
        with proxy.counting() as turns:
            assert [p.phase_id for p in sm.get_completed_phases(sid)] == ["p"]
        assert turns[0] == 2  # BEGIN with the read, then COMMIT


def test_the_async_manager_takes_the_same_round_trips(
    proxied: tuple[URL, RoundTripProxy],
) -> None:
    through, proxy = proxied

    async def scenario() -> dict[str, int]:
        async with AsyncStateManager(through) as sm:
            await sm.create_session("warm-up")  # the pool's connection is open before counting
            await sm.search_sessions("warm-up")
            found = {}
            for name, call, _expected in CALLS:
                with proxy.counting() as turns:
                    await call(sm)
                found[name] = turns[0]
            assert sm._db.fallbacks == 0
            return found

    assert asyncio.run(scenario()) == {name: expected for name, _call, expected in CALLS}


def test_the_langgraph_saver_puts_in_one_round_trip(
    counted: tuple[StateManager, RoundTripProxy],
) -> None:
    """A put creates or locks its thread's session with statements that wait for nothing."""
    base = pytest.importorskip("langgraph.checkpoint.base")
    from statekeeper.integrations.langgraph import StatekeeperSaver

    sm, proxy = counted
    saver = StatekeeperSaver(sm)
    thread: Any = {"configurable": {"thread_id": "graph", "checkpoint_ns": ""}}
    found = {}
    parent = thread
    for step in range(2):  # the thread's first put creates it; the second locks it
        checkpoint = base.empty_checkpoint()
        checkpoint["channel_values"] = {"step": step}
        with proxy.counting() as turns:
            parent = saver.put(parent, checkpoint, {"step": step}, {})
        found[f"put {step}"] = turns[0]
    with proxy.counting() as turns:
        saver.put_writes(parent, [("step", 2)], "task")
    found["put_writes"] = turns[0]
    with proxy.counting() as turns:
        assert saver.get_tuple(thread) is not None
    found["get_tuple"] = turns[0]  # the checkpoint joined with its pending writes
    assert found == {"put 0": 1, "put 1": 1, "put_writes": 1, "get_tuple": 1}
    assert [e.event_type for e in sm.get_events("graph")] == ["session.created"]


def test_the_proxy_counts_a_batch_split_in_two_once() -> None:
    """A batch that reaches the server in two pieces, answered in between, is one round trip:
    the client asked for an answer only at its end (Sync). The next batch is another."""
    upstream = socket.create_server(("127.0.0.1", 0))

    def answer_everything() -> None:
        server, _ = upstream.accept()
        with server:
            while data := server.recv(1 << 16):
                server.sendall(b"!" * len(data))

    threading.Thread(target=answer_everything, daemon=True).start()
    proxy = RoundTripProxy(upstream.getsockname())
    startup = struct.pack("!ii", 8, 196608)
    parse = b"P" + struct.pack("!i", 8) + b"abcd"
    sync = b"S" + struct.pack("!i", 4)
    try:
        with socket.create_connection(("127.0.0.1", proxy.port)) as client:
            client.sendall(startup)
            client.recv(1 << 16)
            with proxy.counting() as turns:
                client.sendall(parse[:3])
                client.recv(1 << 16)  # the server answered the first piece
                client.sendall(parse[3:] + sync)
                client.recv(1 << 16)
                client.sendall(parse + sync)
                client.recv(1 << 16)
    finally:
        proxy.close()
        upstream.close()
    assert turns[0] == 2
