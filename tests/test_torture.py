"""Crash torture: SIGKILL workers doing mixed writes at random moments, many times per run.

Each child of tests/torture_worker.py resumes where the store left off and then saves
phases with their context, appends chat messages, records events, saves an agent with
`expected_version` and takes snapshots, acknowledging each call only after it returned. A
timer, not an acknowledgement, picks the moment of the SIGKILL. After every kill the store
must hold every acknowledged write and of the rest at most the one call in flight, no unit
of work in part (a phase without its context or event, an agent save without its transition,
a snapshot without its event, a torn payload), totals equal to the exact Decimal sums, a
clean integrity check (SQLite's `PRAGMA integrity_check` among it), and the next child must
resume from it.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from statekeeper import StateManager
from statekeeper.models import AgentRow, EventRow, SnapshotRow, StateTransitionRow
from tests.crash_worker import context_for, cost_for, output_for
from tests.test_crash import verify
from tests.torture_worker import STEP_EVENT, agent_data, agent_status, step_text
from tests.workers import Forker, Worker

pytestmark = pytest.mark.slow

# The long version (docs/reliability.md): SK_TORTURE_KILLS=1000 SK_TORTURE_SEED=$RANDOM.
SEED = int(os.environ.get("SK_TORTURE_SEED", "1103"))
_SCALE = int(os.environ.get("SK_TORTURE_KILLS", "50"))
KILLS = {"sqlite": _SCALE, "postgresql": max(10, _SCALE // 4)}
MAX_KILL_DELAY_S = {"sqlite": 0.15, "postgresql": 0.6}
"""The longest wait before a kill, unless the machine is slower than that (kill_delay)."""
STEPS_PER_KILL = 3.0
"""On a slow machine, waits stretch to this many of the steps measured so far."""


def kill_delay(rng: random.Random, engine: str, waited_s: float, known: Known) -> float:
    """How long the next child runs before its SIGKILL: uniform up to the engine's bound,
    or up to STEPS_PER_KILL of the steps measured so far if those are slower, so every kind
    of write (the snapshot ends a step) is reached many times on any machine."""
    steps = known.acks["snapshot"]
    pace = waited_s / steps if steps else MAX_KILL_DELAY_S[engine]
    return rng.uniform(0.0, min(2.0, max(MAX_KILL_DELAY_S[engine], STEPS_PER_KILL * pace)))


AGENT_ID = "tortured"
KINDS = ("phase", "chat", "event", "agent", "snapshot")


@dataclass
class Known:
    """What the children acknowledged, and what the checks found, so far."""

    phases: int = 0
    """Phases acknowledged, or found stored by the last check (the next child goes on)."""
    agent_version: int = 0
    """The agent's version as the last check found it."""
    chat: dict[str, str] = field(default_factory=dict)
    events: dict[str, str] = field(default_factory=dict)
    snapshots: set[str] = field(default_factory=set)
    snapshot_pk: int = 0
    """Snapshots up to this pk have been checked already."""
    acks: Counter[str] = field(default_factory=Counter)
    unacked: Counter[str] = field(default_factory=Counter)
    """Writes that committed though the kill came before their acknowledgement."""


def take_acks(lines: list[str], run: int, known: Known) -> int:
    """Record the acknowledgements of child `run`; the last agent version it acknowledged
    (0 if none)."""
    step, version = None, 0
    for line in lines:
        if not line.startswith("ack "):
            continue
        _, kind, value = line.split()
        known.acks[kind] += 1
        if kind == "phase":
            assert value == f"p{known.phases}", f"phase {value} acknowledged out of order"
            step, known.phases = known.phases, known.phases + 1
        elif kind in ("chat", "event"):
            assert step is not None, f"a {kind} acknowledged before its step's phase"
            log = known.chat if kind == "chat" else known.events
            log[value] = step_text(run, step)
        elif kind == "agent":
            version = int(value)
        else:
            known.snapshots.add(value)
    return version


def check_log(kind: str, stored: list[tuple[str, str]], acked: dict[str, str]) -> int:
    """An append-only log (chat, events): every acknowledged entry is stored with its text,
    in step order, and each child left at most one more (its call in flight); their count."""
    texts = dict(stored)
    lost = [entry for entry, text in acked.items() if texts.get(entry) != text]
    assert lost == [], f"{kind}: acknowledged but not stored: {lost}"
    steps = [tuple(int(part) for part in text.split("/")) for _, text in stored]
    assert steps == sorted(set(steps)), f"{kind}: not in step order, or repeated: {steps}"
    extra = [text for entry, text in stored if entry not in acked]
    runs = [text.split("/")[0] for text in extra]
    assert len(runs) == len(set(runs)), f"{kind}: unacknowledged beyond one per child: {extra}"
    return len(extra)


def check_agent(sm: StateManager, floor: int) -> int:
    """The agent is at `floor` or one save more, with the state, status, transitions and
    events of exactly that many saves; its version."""
    agent = sm.load_agent_state(AGENT_ID)
    version = 0
    if agent is not None:
        assert agent.version is not None
        version = agent.version
        assert agent.state_data == agent_data(version)
        assert agent.status == agent_status(version)
    assert floor <= version <= floor + 1, f"agent at version {version}, acknowledged {floor}"
    with sm.session() as orm:
        transitions = orm.scalar(
            sa.select(sa.func.count()).where(StateTransitionRow.agent_id == AGENT_ID)
        )
        logged = orm.scalar(
            sa.select(sa.func.count()).where(
                EventRow.actor_id == AGENT_ID,
                EventRow.event_type.in_(["agent.created", "agent.status_changed"]),
            )
        )
    assert (transitions, logged) == (version, version), "an agent save in part"
    return version


def payload_problem(row: SnapshotRow) -> str | None:
    """What is wrong with a snapshot's payload, given what its description says it holds."""
    payload: Any = row.decoded_payload
    description = str(row.description)
    if row.agent_id is not None:
        version = int(description.removeprefix("v"))
        wanted = {
            "status": agent_status(version).value,
            "state_data": agent_data(version),
            "version": version,
        }
        return None if payload == wanted else f"agent snapshot {description}: {payload}"
    count = int(description.removeprefix("p")) + 1  # taken right after phase p{count-1}
    phases = payload["phases"]
    if [(p["phase_id"], p["output"], Decimal(p["cost_usd"])) for p in phases] != [
        (f"p{i}", output_for(i), cost_for(i)) for i in range(count)
    ]:
        return f"session snapshot {description}: phases {[p['phase_id'] for p in phases]}"
    if payload["context"] != context_for(count - 1):
        return f"session snapshot {description}: context {payload['context']}"
    if Decimal(payload["cost_usd"]) != sum((cost_for(i) for i in range(count)), Decimal(0)):
        return f"session snapshot {description}: cost {payload['cost_usd']}"
    return None


def check_snapshots(sm: StateManager, known: Known) -> int:
    """Every acknowledged snapshot is stored, whole, each with exactly one event; how many
    new rows there are beyond those acknowledged."""
    with sm.session() as orm:
        new = orm.scalars(
            sa.select(SnapshotRow)
            .where(SnapshotRow.pk > known.snapshot_pk)
            .order_by(SnapshotRow.pk)
        ).all()
        problems = [problem for row in new if (problem := payload_problem(row)) is not None]
        stored = set(orm.scalars(sa.select(SnapshotRow.id)))
        logged = Counter(
            metadata["snapshot_id"]
            for metadata in orm.scalars(
                sa.select(EventRow.metadata_).where(EventRow.event_type == "snapshot.created")
            )
        )
    assert problems == []
    assert known.snapshots <= stored, f"acknowledged, not stored: {known.snapshots - stored}"
    assert logged == Counter(stored), "a snapshot without its one event, or an event without it"
    if new:
        known.snapshot_pk = new[-1].pk
    return len({row.id for row in new} - known.snapshots)


def check_store(sm: StateManager, session_id: str, known: Known, agent_floor: int) -> None:
    """Everything a kill must leave intact, given what was acknowledged up to it."""
    stored = verify(sm, session_id, known.phases)  # phases, context, Decimal totals, events
    known.unacked["phase"] += stored - known.phases
    known.phases = stored
    if sm.engine.dialect.name == "sqlite":
        with sm.engine.connect() as connection:
            result = connection.exec_driver_sql("PRAGMA integrity_check").scalars().all()
        assert result == ["ok"], result
    chat = [(m.id, m.content) for m in sm.get_chat_history(session_id)]
    known.unacked["chat"] = check_log("chat", chat, known.chat)
    events = [(e.id, e.content) for e in sm.get_events_by_type(STEP_EVENT)]
    known.unacked["event"] = check_log("event", events, known.events)
    version = check_agent(sm, agent_floor)
    known.unacked["agent"] += version - agent_floor
    known.agent_version = version
    unacked = check_snapshots(sm, known)
    assert unacked <= 1, f"{unacked} snapshots committed without an acknowledgement"
    known.unacked["snapshot"] += unacked


def torture(
    forker: Forker, sm: StateManager, session_id: str, run: int, delay: float, known: Known
) -> None:
    """Start child `run`, check where it resumes from, SIGKILL it after `delay` seconds and
    check the store."""
    child = forker.fork(forker.url, session_id, AGENT_ID, str(run))
    ready = forker.wait_child(child, "ready ", "error ").split()
    assert ready[0] == "ready", forker.child_lines(child)
    start, last_phase, version = int(ready[1]), ready[2], int(ready[3])
    # Resume: the child goes on from the phases, context and version the store holds.
    assert (start, version) == (known.phases, known.agent_version)
    assert last_phase == (f"p{start - 1}" if start else "none")
    time.sleep(delay)
    status, lines = forker.reap(child, kill=True)
    # Killed by us, never ended by an error of its own.
    assert os.WIFSIGNALED(status), lines
    assert os.WTERMSIG(status) == signal.SIGKILL
    acked_version = take_acks(lines, run, known)
    check_store(sm, session_id, known, max(version, acked_version))


def start_forker(url: str, workers: list[Worker]) -> Forker:
    """The torture worker, ready to fork children on the store at `url`."""
    forker = Forker("tests.torture_worker", url, url)
    workers.append(forker)
    forker.wait_for("ready")
    return forker


def test_sigkill_at_random_moments_loses_no_acknowledged_write(
    engine_name: str, store_url: str, workers: list[Worker]
) -> None:
    rng = random.Random(SEED)
    forker = start_forker(store_url, workers)
    known = Known()
    waited = 0.0
    with StateManager(store_url) as sm:
        session_id = sm.create_session("torture", kind="crash")
        check_store(sm, session_id, known, 0)
        for run in range(KILLS[engine_name]):
            delay = kill_delay(rng, engine_name, waited, known)
            waited += delay
            try:
                torture(forker, sm, session_id, run, delay, known)
            except AssertionError as exc:
                raise AssertionError(f"seed {SEED}, kill {run + 1}: {exc}") from exc

    # Not vacuous: every kind of write was acknowledged, many times over.
    assert all(known.acks[kind] >= 10 for kind in KINDS), known.acks
    print(
        f"{KILLS[engine_name]} kills on {engine_name}: acknowledged {dict(known.acks)}, "
        f"committed in flight {dict(known.unacked)}"
    )


def test_torture_checks_catch_early_acks_and_partial_writes(
    store_url: str, workers: list[Worker]
) -> None:
    """The checks can fail: writes acknowledged before their commit, an agent save without
    its transition and event, and a snapshot without its event are each caught."""
    forker = start_forker(store_url, workers)
    known = Known()
    with StateManager(store_url) as sm:
        session_id = sm.create_session("torture", kind="crash")
        while known.acks["snapshot"] < 2:  # a few whole steps, some of each kind
            torture(forker, sm, session_id, len(forker.pids), 0.2, known)
        run = len(forker.pids)
        child = forker.fork(store_url, session_id, AGENT_ID, str(run), "--early-acks")
        forker.wait_child(child, "ack event ")
        _, lines = forker.reap(child, kill=True)
        for line in lines:  # `ack chat ID`, `ack event ID`, both of step known.phases
            _, kind, entry = line.split()
            log = known.chat if kind == "chat" else known.events
            log[entry] = step_text(run, known.phases)
        with pytest.raises(AssertionError, match="chat: acknowledged but not stored"):
            check_store(sm, session_id, known, known.agent_version)

        with sm.engine.begin() as connection:  # a save whose transition and event are lost
            connection.execute(
                sa.update(AgentRow)
                .where(AgentRow.agent_id == AGENT_ID)
                .values(
                    version=AgentRow.version + 1,
                    status=agent_status(known.agent_version + 1).value,
                    state_data=agent_data(known.agent_version + 1),
                )
            )
        with pytest.raises(AssertionError, match="an agent save in part"):
            check_agent(sm, known.agent_version)

        with sm.engine.begin() as connection:  # a snapshot whose event is lost
            connection.execute(
                sa.delete(EventRow).where(
                    EventRow.seq
                    == sa.select(sa.func.max(EventRow.seq))
                    .where(EventRow.event_type == "snapshot.created")
                    .scalar_subquery()
                )
            )
        with pytest.raises(AssertionError, match="a snapshot without its one event"):
            check_snapshots(sm, known)
