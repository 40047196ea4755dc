"""`python -m tests.sdk_session_worker URL SESSION_ID WORKER COUNT`: after `ready` and a
line on stdin, COUNT add_items calls to one SDK session, then `done` (test_openai_agents)."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from statekeeper.integrations.openai_agents import StatekeeperSession

__all__ = ["batch"]


def batch(worker: int, n: int) -> list[Any]:
    """What call `n` of `worker` appends: a plain message and a tool output, kept adjacent."""
    return [
        {"role": "user", "content": f"worker {worker} call {n}"},
        {"type": "function_call_output", "call_id": f"w{worker}-{n}", "output": f"out {n}"},
    ]


async def append(url: str, session_id: str, worker: int, count: int) -> None:
    """Wait for the go line, then append `count` batches one call at a time."""
    async with StatekeeperSession(session_id, url) as session:
        await session.get_items(limit=1)  # the schema check, before the common start
        print("ready", flush=True)
        sys.stdin.readline()
        for n in range(count):
            await session.add_items(batch(worker, n))
    print("done", flush=True)


if __name__ == "__main__":
    url, session_id, worker, count = sys.argv[1:5]
    asyncio.run(append(url, session_id, int(worker), int(count)))
