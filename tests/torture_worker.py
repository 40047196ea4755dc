"""Worker for tests/test_torture.py: mixed writes on one session and one agent until killed.

`python -m tests.torture_worker URL` imports and opens the store once, then serves forks
(tests/workers.py `serve`). Each child, given `URL SESSION_ID AGENT_ID RUN`, resumes from
what the store holds and prints `ready PHASES LAST_PHASE VERSION` (the phases completed, the
phase its context is of, the agent's version). Then, step after step, it saves a phase with
its context, appends a chat message, records an event, saves the agent with
`expected_version` and takes a snapshot (of the session on even steps, of the agent on odd
ones), printing `ack KIND ...` only after each call returned. With `--early-acks` it
acknowledges before its commit instead, for the test that the checks catch that.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from statekeeper import AgentState, AgentStatus, StateManager
from tests.crash_worker import checkpoint
from tests.workers import serve_store

__all__ = ["STEP_EVENT", "agent_data", "agent_status", "main", "step_text"]

STEP_LIMIT = 100_000
"""More steps than any child reaches before it is killed."""
STEP_EVENT = "torture.step"


def step_text(run: int, i: int) -> str:
    """The chat message and event content of step i of child `run`."""
    return f"{run}/{i}"


def agent_data(version: int) -> dict[str, Any]:
    """The agent's state at `version`: a stale or torn save shows as a mismatch."""
    return {"version": version, "plan": [f"step {version}.{j}" for j in range(version % 7 + 1)]}


def agent_status(version: int) -> AgentStatus:
    """The agent's status at `version`: it changes with every save, so each one records a
    transition and an event in its transaction."""
    return AgentStatus.RUNNING if version % 2 else AgentStatus.PAUSED


def _early_acks(sm: StateManager, session_id: str, run: int, emit: Callable[[str], None]) -> None:
    """Deliberately wrong: acknowledge a chat message and an event inside a transaction,
    before its commit, and stall there until killed (the check must catch it)."""
    with sm.transaction():
        step = len(sm.get_completed_phases(session_id))
        message_id = sm.add_chat_message(session_id, "assistant", step_text(run, step))
        emit(f"ack chat {message_id}")
        event_id = sm.record_event(STEP_EVENT, step_text(run, step), session_id=session_id)
        emit(f"ack event {event_id}")
        time.sleep(60)  # the parent kills us here


def _torture(args: list[str], emit: Callable[[str], None]) -> None:
    url, session_id, agent_id, run_text, *mode = args
    run = int(run_text)
    with StateManager(url, max_snapshots=None) as sm:
        if mode == ["--early-acks"]:
            _early_acks(sm, session_id, run, emit)
            return
        start = len(sm.get_completed_phases(session_id))
        context = sm.load_context(session_id)
        # The context it resumes from: the parent checks that it is the last phase's.
        resumed = "none" if context is None else context.data["last_phase"]
        agent = sm.load_agent_state(agent_id)
        version = 0 if agent is None else int(agent.version or 0)
        emit(f"ready {start} {resumed} {version}")
        for i in range(start, STEP_LIMIT):
            checkpoint(sm, session_id, i)
            emit(f"ack phase p{i}")
            message_id = sm.add_chat_message(session_id, "assistant", step_text(run, i))
            emit(f"ack chat {message_id}")
            event_id = sm.record_event(
                STEP_EVENT, step_text(run, i), session_id=session_id, metadata={"i": i}
            )
            emit(f"ack event {event_id}")
            state = AgentState(
                agent_id=agent_id,
                status=agent_status(version + 1),
                state_data=agent_data(version + 1),
            )
            version = int(sm.save_agent_state(state, expected_version=version).version or 0)
            emit(f"ack agent {version}")
            if i % 2 == 0:
                snapshot_id = sm.create_snapshot(session_id=session_id, description=f"p{i}")
            else:
                snapshot_id = sm.create_snapshot(agent_id=agent_id, description=f"v{version}")
            emit(f"ack snapshot {snapshot_id}")


def main() -> None:
    """Open the store once, then fork a torture child per command."""
    serve_store(_torture)


if __name__ == "__main__":
    main()
