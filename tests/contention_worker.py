"""Worker for tests/test_contention.py: processes contending for a few shared sessions.

`python -m tests.contention_worker URL` opens the store once, then serves forks
(tests/workers.py `serve`). A child runs one of:

- `mix URL CHILD GO SESSION...`: once the file GO exists, the operations `plan(CHILD)`
  lists, at default settings, then `done ERRORS` (a JSON object: error class -> count).
- `hold URL SESSION RELEASE`: in one `transaction()` block, every kind of write on SESSION;
  prints `holding` with the block still open, and commits once the file RELEASE exists.
- `write URL SESSION`: the same writes, each its own call, on a connection whose lock waits
  fail after LOCK_TIMEOUT_MS (PostgreSQL); `done` once all returned.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from statekeeper import StateError, StateManager
from tests.workers import serve_store

__all__ = ["LOCK_TIMEOUT_MS", "OPERATIONS", "cost_of", "main", "plan"]

SEED = 808
OPERATIONS = int(os.environ.get("SK_CONTENTION_OPS", "500"))  # per process
"""Operations per mixing child."""
SESSIONS = 3
LOCK_TIMEOUT_MS = 200
WEIGHTS = {"increment": 3, "phase": 2, "chat": 2, "read": 3}


def plan(child: int) -> list[tuple[str, int]]:
    """Child `child`'s operations: (kind, index of the session), the same in every run."""
    rng = random.Random(f"{SEED}/{child}")
    kinds = rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()), k=OPERATIONS)
    return [(kind, rng.randrange(SESSIONS)) for kind in kinds]


def cost_of(child: int, k: int) -> Decimal:
    """The cost of the phase saved by operation k of child `child`: sub-cent, so any
    floating-point sum would show."""
    return Decimal(f"0.0{child % 10}{k % 97:02d}1")


def _wait_for(path: Path) -> None:
    while not path.exists():
        time.sleep(0.001)


def _mix(sm: StateManager, child: int, go: Path, sessions: list[str]) -> Counter[str]:
    """Run the plan once `go` exists; the StateErrors met, by class."""
    errors: Counter[str] = Counter()
    _wait_for(go)
    for k, (kind, index) in enumerate(plan(child)):
        session_id = sessions[index]
        try:
            if kind == "increment":  # a read-modify-write: no increment may be lost
                with sm.transaction():
                    context = sm.load_context(session_id)
                    assert context is not None
                    sm.save_context(session_id, {**context.data, "n": context.data["n"] + 1})
            elif kind == "phase":
                sm.save_phase_completion(
                    session_id, f"c{child}-{k}", {"k": k}, k, cost_of(child, k)
                )
            elif kind == "chat":
                sm.add_chat_message(session_id, "user", f"{child}/{k}")
            elif k % 3 == 0:
                sm.get_session(session_id)
            elif k % 3 == 1:
                sm.get_chat_history(session_id, limit=5)
            else:
                sm.is_phase_completed(session_id, f"c{child}-{k - 1}")
        except StateError as exc:
            errors[type(exc).__name__] += 1
    return errors


def _writes(sm: StateManager, session_id: str) -> None:
    """One of each kind of write on a session: phase with context, chat, event, snapshot."""
    sm.save_phase_completion(session_id, "held", {}, 1, "0.01", context={"held": True})
    sm.add_chat_message(session_id, "user", "held")
    sm.record_event("contention.held", "held", session_id=session_id)
    sm.create_snapshot(session_id=session_id)


def _child(args: list[str], emit: Callable[[str], None]) -> None:
    command, url, *rest = args
    if command == "mix":
        child, go, *sessions = rest
        with StateManager(url) as sm:
            sm.get_session(sessions[0])  # connected before the start
            emit("ready")
            errors = _mix(sm, int(child), Path(go), sessions)
        emit(f"done {json.dumps(errors)}")
    elif command == "hold":
        session_id, release = rest
        with StateManager(url) as sm, sm.transaction():
            _writes(sm, session_id)
            emit("holding")
            _wait_for(Path(release))
        emit("committed")
    else:
        assert command == "write", args
        (session_id,) = rest
        lock_timeout = {"options": f"-c lock_timeout={LOCK_TIMEOUT_MS}"}
        with StateManager(url, connect_args=lock_timeout) as sm:
            _writes(sm, session_id)
        emit("done")


def main() -> None:
    """Open the store once, then fork a child per command."""
    serve_store(_child)


if __name__ == "__main__":
    main()
