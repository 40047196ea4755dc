"""Worker processes for tests/test_agent_concurrency.py: racers saving one agent, and a
snapshotter that acknowledges each snapshot on stdout only once it is committed.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import zstandard

from statekeeper import AgentState, StateManager, VersionConflict
from statekeeper.models import EventRow, SnapshotRow
from statekeeper.values import dump_json
from tests.crash_worker import context_for, cost_for, output_for, tokens_for

__all__ = [
    "AGENT_STATUS",
    "COMPRESS_THRESHOLD",
    "SESSION_PHASES",
    "agent_state",
    "description",
    "main",
    "populate",
    "race_state",
]

SNAPSHOT_LIMIT = 100_000
"""More snapshots than any worker takes before it is killed."""
SESSION_PHASES = 5
"""Phases p0..p4 of the snapshotted session."""
COMPRESS_THRESHOLD = 64
"""Every snapshot payload is larger: each one is stored zstd-compressed."""
AGENT_STATUS = "running"


def agent_state() -> dict[str, Any]:
    """The snapshotted agent's large state (about 150 kB of JSON), the same in every run."""
    return {
        "goal": "summarise the corpus",
        "notes": [
            {"i": i, "text": f"note {i}: " + "observation " * (i % 13), "score": i * 7 % 101}
            for i in range(2_000)
        ],
    }


def race_state(agent_id: str, racer: int) -> dict[str, Any]:
    """The state racer `racer` saves on `agent_id`: distinct per racer and agent."""
    return {
        "agent": agent_id,
        "racer": racer,
        "plan": [f"{agent_id}-{racer}-{j}" for j in range(50)],
    }


def description(run: int, i: int) -> str:
    """The description of snapshot i of worker run `run`; i even: session, odd: agent."""
    return f"{run}/{i}"


def populate(sm: StateManager, agent_id: str) -> str:
    """Create the session (phases, context) and the agent the snapshotter snapshots."""
    session_id = sm.create_session("snapshot crash test", kind="crash")
    for i in range(SESSION_PHASES):
        tokens_in, tokens_out = tokens_for(i)
        sm.save_phase_completion(
            session_id,
            f"p{i}",
            output_for(i),
            10 * i,
            cost_for(i),
            context=context_for(i),
            tokens_in=tokens_in,
            tokens_out=tokens_out,
        )
    sm.save_agent_state(
        AgentState(agent_id=agent_id, status=AGENT_STATUS, state_data=agent_state())
    )
    return session_id


def _race(url: str, racer: int) -> None:
    """`race URL RACER`: per stdin line `save AGENT EXPECTED STATUS START_NS [naive]`, save at
    START_NS (monotonic) and print `won VERSION T0 T1` or `conflict EXPECTED ACTUAL T0 T1`."""
    with StateManager(url) as sm:
        sm.load_agent_state("warm-up")  # connect now, not at the start signal
        print("ready", flush=True)
        for line in sys.stdin:
            command, agent_id, expected_text, status, start_text, *mode = line.split()
            assert command == "save", line
            expected = int(expected_text)
            state = AgentState(
                agent_id=agent_id, status=status, state_data=race_state(agent_id, racer)
            )
            time.sleep(max(0, int(start_text) - time.monotonic_ns()) / 1e9)
            t0 = time.monotonic_ns()
            try:
                if mode == ["naive"]:
                    current = sm.load_agent_state(agent_id)
                    actual = None if current is None else current.version
                    if actual != expected:
                        raise VersionConflict(agent_id, expected, actual)
                    time.sleep(0.5)  # every racer has checked before any saves
                    saved = sm.save_agent_state(state)
                else:
                    saved = sm.save_agent_state(state, expected_version=expected)
            except VersionConflict as exc:
                print(
                    f"conflict {exc.expected} {exc.actual} {t0} {time.monotonic_ns()}", flush=True
                )
            else:
                print(f"won {saved.version} {t0} {time.monotonic_ns()}", flush=True)


def _snapshot(url: str, session_id: str, agent_id: str, run: int) -> None:
    """`snapshot URL SESSION AGENT RUN`: until killed, snapshot the session (even i) or the
    agent (odd i), described `RUN/i`, printing `ack i ID` once create_snapshot returns."""
    with StateManager(url, compress_threshold=COMPRESS_THRESHOLD, max_snapshots=None) as sm:
        print("ready", flush=True)
        for i in range(SNAPSHOT_LIMIT):
            text = description(run, i)
            if i % 2 == 0:
                snapshot_id = sm.create_snapshot(session_id=session_id, description=text)
            else:
                snapshot_id = sm.create_snapshot(agent_id=agent_id, description=text)
            print(f"ack {i} {snapshot_id}", flush=True)


def _faults(url: str, session_id: str, agent_id: str, run: int) -> None:
    """`snapshot ... --faults`: three broken snapshots a check must catch (torn, without its
    event, acknowledged before its commit), then stall until killed."""
    with StateManager(url, max_snapshots=None) as sm:
        print("ready", flush=True)
        text = dump_json(
            {"status": AGENT_STATUS, "state_data": agent_state(), "version": 1}, "payload"
        )
        blob = zstandard.ZstdCompressor().compress(text.encode())
        for i, torn in ((1, True), (3, False)):
            snapshot_id = str(uuid.uuid4())
            owner = {"namespace": "default", "agent_id": agent_id}
            with sm.transaction() as session:
                session.add(
                    SnapshotRow(
                        id=snapshot_id,
                        **owner,
                        description=description(run, i),
                        payload=None,
                        payload_zstd=blob[: len(blob) // 2] if torn else blob,
                        size_bytes=len(text.encode()),
                        created_at=datetime.now(UTC),
                    )
                )
                if torn:  # the event is there: only the payload is broken
                    session.add(
                        EventRow(
                            event_type="snapshot.created",
                            content=f"snapshot {snapshot_id}",
                            metadata_={"snapshot_id": snapshot_id, **owner, "session_id": None},
                        )
                    )
            print(f"ack {i} {snapshot_id}", flush=True)
        with sm.transaction():
            snapshot_id = sm.create_snapshot(session_id=session_id, description=description(run, 4))
            print(f"ack 4 {snapshot_id}", flush=True)  # before its transaction commits
            time.sleep(60)  # the parent kills us here


def main(argv: list[str] | None = None) -> None:
    """Race saves of agents, or snapshot until killed."""
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    race = commands.add_parser("race")
    race.add_argument("url")
    race.add_argument("racer", type=int)
    snapshot = commands.add_parser("snapshot")
    snapshot.add_argument("url")
    snapshot.add_argument("session_id")
    snapshot.add_argument("agent_id")
    snapshot.add_argument("run", type=int)
    snapshot.add_argument("--faults", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "race":
        _race(args.url, args.racer)
    elif args.faults:
        _faults(args.url, args.session_id, args.agent_id, args.run)
    else:
        _snapshot(args.url, args.session_id, args.agent_id, args.run)
    sys.exit(0)


if __name__ == "__main__":
    main()
