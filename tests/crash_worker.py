"""Worker process for the crash test: checkpoints phases until it is killed.

Run as `python -m tests.crash_worker URL SESSION_ID [--split-context] [--async]`. It continues from
the number of phases already stored, and prints `ack p<i>` (flushed) only after the save of
phase i has returned, so every acknowledged phase must survive a SIGKILL.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from decimal import Decimal
from typing import Any

from statekeeper import AsyncStateManager, StateManager

__all__ = ["checkpoint", "context_for", "cost_for", "main", "output_for", "tokens_for"]

PHASE_LIMIT = 100_000
"""More phases than any worker reaches before it is killed."""


def cost_for(i: int) -> Decimal:
    """Cost of phase i: cents plus a sub-cent tail, so any float rounding would show."""
    return Decimal("0.01") + Decimal(i % 7) / 1000 + Decimal(i) / 10**8


def tokens_for(i: int) -> tuple[int, int]:
    """Tokens in and out of phase i."""
    return 100 + i, 7 * (i % 11) + 1


def output_for(i: int) -> dict[str, Any]:
    """Output of phase i."""
    return {"i": i, "summary": f"result of phase {i}"}


def context_for(i: int) -> dict[str, Any]:
    """The workflow context after phase i: changes with every phase, so a stale one shows."""
    return {"last_phase": f"p{i}", "count": i + 1, "history": [f"p{j}" for j in range(i + 1)][-20:]}


def checkpoint(sm: Any, session_id: str, i: int, *, context: bool = True) -> None:
    """Save phase i as the crash checks expect it, with its context unless told not to."""
    tokens_in, tokens_out = tokens_for(i)
    sm.save_phase_completion(
        session_id,
        f"p{i}",
        output_for(i),
        i % 50,
        cost_for(i),
        context=context_for(i) if context else None,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
    )


class _Awaited:
    """AsyncStateManager's calls, each awaited to completion on this process's event loop."""

    def __init__(self, url: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._manager = AsyncStateManager(url)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._manager, name)
        return lambda *args, **kwargs: self._loop.run_until_complete(method(*args, **kwargs))

    def __enter__(self) -> _Awaited:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._loop.run_until_complete(self._manager.close())
        self._loop.close()


def _manager(url: str, *, use_async: bool) -> Any:
    return _Awaited(url) if use_async else StateManager(url)


def main(argv: list[str] | None = None) -> None:
    """Save phases from where the store left off, acknowledging each one on stdout."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("session_id")
    parser.add_argument(
        "--async",
        dest="use_async",
        action="store_true",
        help="save through AsyncStateManager, acknowledging after each awaited save returns",
    )
    parser.add_argument(
        "--split-context",
        action="store_true",
        help="deliberately non-atomic: save the phase, ack, stall, then save the context",
    )
    args = parser.parse_args(argv)
    with _manager(args.url, use_async=args.use_async) as sm:
        start = len(sm.get_completed_phases(args.session_id))
        print(f"ready {start}", flush=True)
        for i in range(start, PHASE_LIMIT):
            checkpoint(sm, args.session_id, i, context=not args.split_context)
            print(f"ack p{i}", flush=True)
            if args.split_context:
                time.sleep(60)  # the parent kills us here, between the two transactions
                sm.save_context(args.session_id, context_for(i))
    sys.exit(0)


if __name__ == "__main__":
    main()
