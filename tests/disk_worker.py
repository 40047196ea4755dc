"""Worker process for the disk-fault tests: a store written under a fault the OS imposes.

`python -m tests.disk_worker fsize URL SESSION_ID`: lowers this process's file size limit
(RLIMIT_FSIZE, SIGXFSZ ignored, so a write past it fails with EFBIG) just above the store's
files, saves phases until one fails, then lifts the limit and saves again. It prints
`ack p<i>` after each save returned, `error <class> <message>` for the failure and
`resumed p<i>` once a save succeeds again.

`python -m tests.disk_worker readonly URL SESSION_ID [--as-nobody]`: opens a store whose
file it may not write (with --as-nobody it first drops root's privileges, which would
otherwise write anything), prints `read <phases>` and `error <class> <message>` for a write.
"""

from __future__ import annotations

import argparse
import importlib
import os
import resource
import signal
import sys
from pathlib import Path

from statekeeper import StateError, StateManager
from tests.crash_worker import context_for, cost_for, output_for

__all__ = ["NOBODY", "checkpoint", "main"]

NOBODY = 65534
FILE_LIMIT_MARGIN = 64 * 1024
"""How far the store's biggest file may grow before the limit refuses a write."""
MAX_SAVES = 2_000
LAZY_IMPORTS = (
    "alembic.command",
    "alembic.runtime.migration",
    "alembic.script",
    "sqlalchemy.dialects.sqlite.pysqlite",
    "statekeeper.migrate",
)
"""What a manager imports lazily: imported while this process may still read everything."""


def checkpoint(sm: StateManager, session_id: str, i: int) -> None:
    """Save phase i with its context, as the crash checks expect it."""
    sm.save_phase_completion(
        session_id, f"p{i}", output_for(i), i % 50, cost_for(i), context=context_for(i)
    )


def _fsize(url: str, session_id: str) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    with StateManager(url) as sm:
        start = len(sm.get_completed_phases(session_id))
        files = [Path(url), Path(f"{url}-wal")]
        biggest = max(f.stat().st_size for f in files if f.exists())
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (biggest + FILE_LIMIT_MARGIN, hard))
        i = start
        for i in range(start, start + MAX_SAVES):
            try:
                checkpoint(sm, session_id, i)
            except StateError as exc:
                print(f"error {type(exc).__name__} {exc}", flush=True)
                break
            print(f"ack p{i}", flush=True)
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        checkpoint(sm, session_id, i)
        print(f"resumed p{i}", flush=True)


def _readonly(url: str, session_id: str, *, as_nobody: bool) -> None:
    if as_nobody:
        for module in LAZY_IMPORTS:
            importlib.import_module(module)
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    try:
        with StateManager(url) as sm:
            phases = [p.phase_id for p in sm.get_completed_phases(session_id)]
            print(f"read {','.join(phases)}", flush=True)
            try:
                checkpoint(sm, session_id, len(phases))
            except StateError as exc:
                print(f"error {type(exc).__name__} {exc}", flush=True)
            else:
                print("wrote", flush=True)
    except StateError as exc:
        print(f"open-error {type(exc).__name__} {exc}", flush=True)


def main(argv: list[str] | None = None) -> None:
    """Run one fault scenario and report on stdout."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["fsize", "readonly"])
    parser.add_argument("url")
    parser.add_argument("session_id")
    parser.add_argument("--as-nobody", action="store_true")
    args = parser.parse_args(argv)
    if args.mode == "fsize":
        _fsize(args.url, args.session_id)
    else:
        _readonly(args.url, args.session_id, as_nobody=args.as_nobody)
    sys.exit(0)


if __name__ == "__main__":
    main()
