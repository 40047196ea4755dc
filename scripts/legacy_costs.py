"""What the legacy migration's in-between phases cost (docs/benchmarks.md).

    .venv/bin/python scripts/legacy_costs.py [--sessions 1000] [--out DIR]

1. Re-importing a directory with `update=True` when nothing changed (the check the old
   app's start would run), against a plain first import and a plain re-import.
2. One `add_chat_message` with `legacy_mirror=DIR` against the same call without it, for
   workspaces of several sizes (the mirror rewrites the whole workspace file).
Timings are medians of a few runs on fresh SQLite files; ratios are within one run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.legacy_fixtures import generate  # noqa: E402

from statekeeper import StateManager  # noqa: E402


def median_s(fn: Callable[[], object], runs: int) -> float:
    """The median wall time of `runs` calls of `fn`."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def import_costs(work: Path, sessions: int) -> None:
    """First import, plain re-import, and update re-import of the same directory."""
    legacy = generate(work / "legacy", sessions=sessions, instances=5, messages=10, files=10)
    first, plain, update = [], [], []
    for run in range(3):
        with StateManager(work / f"import-{run}.db") as sm:
            first.append(median_s(partial(sm.import_json, legacy), 1))
            plain.append(median_s(partial(sm.import_json, legacy), 1))
            update.append(median_s(partial(sm.import_json, legacy, update=True), 1))
    a, b, c = (statistics.median(x) for x in (first, plain, update))
    print(f"{sessions:,} sessions: first import {a:.2f} s, re-import {b:.2f} s ({b / a:.2f}x),")
    print(f"  re-import with update=True, nothing changed {c:.2f} s ({c / a:.2f}x of the first)")


def mirror_costs(work: Path, sizes: tuple[int, ...], calls: int) -> None:
    """add_chat_message with and without the mirror, per workspace size."""
    for size in sizes:
        result = {}
        for mirrored in (False, True):
            mirror = work / f"mirror-{size}" if mirrored else None
            with StateManager(work / f"mirror-{size}-{mirrored}.db", legacy_mirror=mirror) as sm:
                ids = [sm.create_session(f"s{n}", workspace=work) for n in range(size)]
                for sid in ids:
                    for m in range(10):
                        sm.add_chat_message(sid, "user", f"message {m} " + "x" * 200)
                result[mirrored] = median_s(
                    partial(sm.add_chat_message, ids[0], "user", "hi"), calls
                )
        ratio = result[True] / result[False]
        print(
            f"workspace of {size:>4} sessions (10 messages each): add_chat_message "
            f"{result[False] * 1e6:,.0f} µs, with the mirror {result[True] * 1e6:,.0f} µs "
            f"({ratio:.0f}x)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1_000)
    parser.add_argument("--out", type=Path, help="work directory (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.out or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        import_costs(work, args.sessions)
        mirror_costs(work, (1, 10, 100), calls=30)


if __name__ == "__main__":
    main()
