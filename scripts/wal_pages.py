"""WAL pages one checkpoint writes: statekeeper's save_phase_completion and LangGraph's put.

At synchronous=FULL every page a commit writes is synced before it returns, so pages per
commit explain most of the difference between the two at equal durability. Both write the
same ~1 KB output and ~4 KB context, 80 times: few enough that SQLite's automatic checkpoint
(at 1,000 pages) never runs, so the WAL only grows. LangGraph needs the `bench` extra;
without it, only statekeeper is measured.

    .venv/bin/python scripts/wal_pages.py
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

from statekeeper import StateManager

SAVES = 80
OUTPUT = {"text": "x" * 1_000}
CONTEXT = {f"k{i}": "v" * 40 for i in range(90)}
_FRAME = 4_096 + 24  # a WAL frame: one page and its header


def pages_per_commit(path: Path, write: Callable[[int], None]) -> float:
    """WAL frames appended per call of `write`, from an empty WAL."""
    with closing(sqlite3.connect(path)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    wal = Path(f"{path}-wal")
    before = wal.stat().st_size if wal.exists() else 0
    for i in range(SAVES):
        write(i)
    return (wal.stat().st_size - before) / _FRAME / SAVES


def statekeeper_pages(directory: Path) -> float:
    """Pages per save_phase_completion, with its context, on a store of 50 sessions."""
    path = directory / "statekeeper.db"
    with StateManager(path, synchronous="full") as sm:
        ids = [sm.create_session(f"s{i}") for i in range(50)]

        def save(i: int) -> None:
            sm.save_phase_completion(
                ids[i % 50], f"phase-{i}", OUTPUT, 100, "0.01", context=CONTEXT
            )

        return pages_per_commit(path, save)


def langgraph_pages(directory: Path) -> float | None:
    """Pages per SqliteSaver.put of a checkpoint holding the same output and context."""
    try:
        from langgraph.checkpoint.base import empty_checkpoint
        from langgraph.checkpoint.sqlite import SqliteSaver
    except ImportError:
        return None
    path = directory / "langgraph.db"
    connection = sqlite3.connect(path, check_same_thread=False)
    try:
        saver = SqliteSaver(connection)
        saver.setup()

        def put(i: int) -> None:
            checkpoint = empty_checkpoint()
            checkpoint["channel_values"] = {"output": OUTPUT, "context": CONTEXT}
            config: Any = {"configurable": {"thread_id": f"t{i % 50}", "checkpoint_ns": ""}}
            saver.put(config, checkpoint, {"step": i}, {})

        return pages_per_commit(path, put)
    finally:
        connection.close()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="skwal-") as tmp:
        print(f"statekeeper save_phase_completion: {statekeeper_pages(Path(tmp)):.1f} pages")
        theirs = langgraph_pages(Path(tmp))
        if theirs is None:
            print("LangGraph SqliteSaver.put: skipped (pip install -e '.[bench]')")
        else:
            print(f"LangGraph SqliteSaver.put:         {theirs:.1f} pages")


if __name__ == "__main__":
    main()
