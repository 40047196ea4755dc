"""Contention: 8 processes x 500 mixed reads and writes over 3 shared sessions, both engines.

Every operation of every process must succeed at default settings (no StorageBusy, no other
error), and the store must then hold exactly what the plans wrote: not one increment of a
read-modify-write counter lost, every phase with its exact Decimal cost, every chat message
in its writer's order. On PostgreSQL, writers to different sessions never wait for each
other: proven with one process holding its write transaction open while another, whose
lock waits fail fast, writes to another session.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from statekeeper import StateManager
from tests.contention_worker import OPERATIONS, cost_of, plan
from tests.workers import Forker, Worker

pytestmark = pytest.mark.slow

PROCESSES = 8


def start_forker(url: str, workers: list[Worker]) -> Forker:
    """The contention worker, ready to fork children on the store at `url`."""
    forker = Forker("tests.contention_worker", url, url)
    workers.append(forker)
    forker.wait_for("ready")
    return forker


def expected(sessions: list[str]) -> dict[str, dict[str, object]]:
    """What the plans leave in each session: increments, phases and costs, chat per writer."""
    wanted: dict[str, dict[str, object]] = {
        sid: {"n": 0, "phases": set(), "cost": Decimal(0), "chat": {}} for sid in sessions
    }
    for child in range(PROCESSES):
        for k, (kind, index) in enumerate(plan(child)):
            session: dict[str, object] = wanted[sessions[index]]
            if kind == "increment":
                session["n"] = int(str(session["n"])) + 1
            elif kind == "phase":
                session["phases"] = {*session["phases"], f"c{child}-{k}"}  # type: ignore[misc]
                session["cost"] = Decimal(str(session["cost"])) + cost_of(child, k)
            elif kind == "chat":
                chat = session["chat"]
                assert isinstance(chat, dict)
                chat.setdefault(child, []).append(f"{child}/{k}")
    return wanted


def stored(sm: StateManager, session_id: str) -> dict[str, object]:
    """The same, as the store holds it."""
    context = sm.load_context(session_id)
    session = sm.get_session(session_id)
    assert context is not None and session is not None
    phases = sm.get_completed_phases(session_id)
    chat: dict[int, list[str]] = {}
    for message in sm.get_chat_history(session_id):
        chat.setdefault(int(message.content.split("/")[0]), []).append(message.content)
    assert session.cost_usd == sum((p.cost_usd for p in phases), Decimal(0))
    return {
        "n": context.data["n"],
        "phases": {p.phase_id for p in phases},
        "cost": session.cost_usd,
        "chat": chat,
    }


def test_processes_contending_for_shared_sessions_lose_nothing(
    engine_name: str, store_url: str, workers: list[Worker], tmp_path: Path
) -> None:
    forker = start_forker(store_url, workers)
    with StateManager(store_url) as sm:
        sessions = [
            sm.create_session(f"shared {i}", kind="contention", workspace=tmp_path)
            for i in range(3)
        ]
        for session_id in sessions:
            sm.save_context(session_id, {"n": 0})
        go = tmp_path / "go"
        children = [
            forker.fork("mix", store_url, str(child), str(go), *sessions)
            for child in range(PROCESSES)
        ]
        for child in children:
            forker.wait_child(child, "ready", "error ")
        go.touch()  # all start at once
        errors: Counter[str] = Counter()
        for child in children:
            status, lines = forker.reap(child, timeout=300)
            assert status == 0 and lines[-1].startswith("done "), lines
            errors.update(json.loads(lines[-1].removeprefix("done ")))

        assert errors == Counter(), f"errors under contention at default settings: {errors}"
        wanted = expected(sessions)
        for session_id in sessions:
            assert stored(sm, session_id) == wanted[session_id]
        report = sm.integrity_check()
        assert report.ok, report.problems
    operations = Counter(kind for child in range(PROCESSES) for kind, _ in plan(child))
    print(f"{PROCESSES} x {OPERATIONS} operations on {engine_name}: {dict(operations)}")


def hold_and_write(forker: Forker, held: str, written: str, tmp: Path) -> str:
    """One process holds a transaction with every kind of write on session `held` open;
    meanwhile another, whose lock waits fail after LOCK_TIMEOUT_MS, writes the same on
    `written`: its last line (`done`, or `error ...`), and the holder then commits."""
    url = forker.url
    release = tmp / f"release-{held}-{written}"
    holder = forker.fork("hold", url, held, str(release))
    assert forker.wait_child(holder, "holding", "error ") == "holding"
    writer = forker.fork("write", url, written)
    outcome = forker.wait_child(writer, "done", "error ")
    # The holder's block was open all along: it commits only now.
    assert "committed" not in forker.child_lines(holder)
    release.touch()
    assert forker.wait_child(holder, "committed", "error ") == "committed"
    for child in (holder, writer):
        forker.reap(child)
    return outcome


@pytest.mark.parametrize("engine_name", ["postgresql"])
def test_postgresql_writers_to_different_sessions_never_wait(
    store_url: str, workers: list[Worker], tmp_path: Path
) -> None:
    """Every kind of session write (phase with context, chat, event, snapshot) to session B
    completes while a transaction holding the same writes to session A stays open, though
    any lock wait would fail it; the same writes to A itself do fail: the check can fail."""
    forker = start_forker(store_url, workers)
    with StateManager(store_url) as sm:
        a, b = (sm.create_session(name, workspace=tmp_path) for name in ("a", "b"))
        assert hold_and_write(forker, a, b, tmp_path) == "done"
        blocked = hold_and_write(forker, a, a, tmp_path)
        assert blocked.startswith("error StorageBusy"), blocked
        assert "lock timeout" in blocked, blocked
        for session_id in (a, b):
            assert [p.phase_id for p in sm.get_completed_phases(session_id)] == ["held"]


@pytest.mark.parametrize("engine_name", ["postgresql"])
def test_postgresql_context_read_in_a_block_waits_for_the_other_block(store_url: str) -> None:
    """The lost update found by the contention test, step by step: a block that reads the
    context holds the session until it commits, so a second block's read waits for it and
    sees its write (SQLite's BEGIN IMMEDIATE serializes whole blocks already)."""
    app = "sk_second_block"
    second_url = make_url(store_url).update_query_dict({"application_name": app})
    with StateManager(store_url) as first, StateManager(second_url) as second:
        session_id = first.create_session("counter")
        first.save_context(session_id, {"n": 0})

        def increment(sm: StateManager) -> None:
            with sm.transaction():
                context = sm.load_context(session_id)
                assert context is not None
                sm.save_context(session_id, {"n": context.data["n"] + 1})

        with first.transaction():
            context = first.load_context(session_id)
            assert context is not None
            thread = threading.Thread(target=increment, args=(second,))
            thread.start()
            waiting = sa.text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE application_name = :app AND wait_event_type = 'Lock'"
            )
            deadline = time.monotonic() + 60
            engine = sa.create_engine(store_url)
            try:
                with engine.connect() as monitor:
                    while not monitor.execute(waiting, {"app": app}).scalar():
                        assert thread.is_alive(), "the second block read without waiting"
                        assert time.monotonic() < deadline, "the second block never waited"
                        monitor.rollback()
                        time.sleep(0.01)
            finally:
                engine.dispose()
            first.save_context(session_id, {"n": context.data["n"] + 1})
        thread.join()
        final = first.load_context(session_id)
        assert final is not None
        assert final.data == {"n": 2}, "an increment was lost"
