"""WAL pages and bytes each write commits, by b-tree: statekeeper's writes and LangGraph's put.

At synchronous=FULL every page a commit writes is written and synced before it returns, and
every page later goes through a checkpoint, so pages per commit explain much of the
difference between stores at equal durability. Each write runs 30 times after a warm-up on
a store of 50 sessions, few enough that SQLite's automatic checkpoint (at 1,000 pages) never
runs, so the WAL only grows (checked); its frames are then read back and each is charged to
the table or index owning its page (`dbstat`; "(header)": page 1, rewritten as the file
grows).
LangGraph needs the `bench` extra; without it, only statekeeper is measured.

    .venv/bin/python scripts/wal_pages.py [--by-btree]
"""

from __future__ import annotations

import argparse
import sqlite3
import struct
import tempfile
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

from statekeeper import StateManager

SAVES = 30
_AUTOCHECKPOINT = 1_000  # SQLite's default, in pages
OUTPUT = {"text": "x" * 1_000}
CONTEXT = {f"k{i}": "v" * 40 for i in range(90)}
MESSAGE = "m" * 500
_HEADER = 32  # the WAL file's header
_FRAME_HEADER = 24  # before each page


class Measured:
    """Frames one write appended to the WAL, per call, and which b-tree each belongs to."""

    def __init__(self, frames: list[int], owners: dict[int, str], page_size: int) -> None:
        self.pages = len(frames) / SAVES
        self.bytes = len(frames) * (page_size + _FRAME_HEADER) / SAVES
        self.by_btree = Counter(owners.get(page, "(new page)") for page in frames)


def _frames(path: Path) -> tuple[list[int], int]:
    """The page number of every frame in the WAL, and the page size."""
    data = Path(f"{path}-wal").read_bytes()
    page_size = struct.unpack(">I", data[8:12])[0]
    frames, offset = [], _HEADER
    while offset + _FRAME_HEADER + page_size <= len(data):
        frames.append(struct.unpack(">I", data[offset : offset + 4])[0])
        offset += _FRAME_HEADER + page_size
    return frames, page_size


def measure(path: Path, write: Callable[[int], None]) -> Measured:
    """Frames appended by SAVES calls of `write`, from an empty WAL."""
    with closing(sqlite3.connect(path)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for i in range(SAVES):
        write(i)
    frames, page_size = _frames(path)
    if len(frames) >= _AUTOCHECKPOINT:
        raise RuntimeError("the WAL was checkpointed during the measurement: fewer SAVES")
    with closing(sqlite3.connect(path)) as connection:
        owners = dict(connection.execute("SELECT pageno, name FROM dbstat"))
    owners[1] = "(header)"
    return Measured(frames, owners, page_size)


def statekeeper_writes(directory: Path) -> dict[str, Measured]:
    """Each write the issue names, on a store of 50 sessions that each saved 4 phases."""
    path = directory / "statekeeper.db"
    results: dict[str, Measured] = {}
    with StateManager(path, synchronous="full") as sm:
        ids = [sm.create_session(f"s{i}", task="warm up the store") for i in range(50)]
        for i in range(200):
            sm.save_phase_completion(ids[i % 50], f"w{i}", OUTPUT, 100, "0.01", context=CONTEXT)
            sm.add_chat_message(ids[i % 50], "user", MESSAGE)
        writes: dict[str, Callable[[int], Any]] = {
            "create_session": lambda i: sm.create_session(
                f"subject {i}", task=f"research company number {i}", model="m"
            ),
            "save_phase_completion": lambda i: sm.save_phase_completion(
                ids[i % 50], f"p{i}", OUTPUT, 100, "0.01"
            ),
            "save_phase_completion with context": lambda i: sm.save_phase_completion(
                ids[i % 50], f"q{i}", OUTPUT, 100, "0.01", context=CONTEXT
            ),
            "add_chat_message": lambda i: sm.add_chat_message(ids[i % 50], "user", MESSAGE),
        }
        for name, write in writes.items():
            results[name] = measure(path, write)
    return results


def langgraph_put(directory: Path) -> Measured | None:
    """SqliteSaver.put of a checkpoint holding the same output and context, 50 threads."""
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

        for i in range(200):
            put(i)
        return measure(path, put)
    finally:
        connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--by-btree", action="store_true", help="pages per b-tree too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="skwal-") as tmp:
        results = statekeeper_writes(Path(tmp))
        theirs = langgraph_put(Path(tmp))
        if theirs is not None:
            results["LangGraph SqliteSaver.put (output and context)"] = theirs
        print(f"{'write':50s} {'pages':>6s} {'KiB':>6s}   per commit")
        for name, measured in results.items():
            print(f"{name:50s} {measured.pages:6.1f} {measured.bytes / 1024:6.1f}")
            if args.by_btree:
                for btree, frames in measured.by_btree.most_common():
                    print(f"    {btree:46s} {frames / SAVES:6.2f}")
        if theirs is None:
            print("LangGraph SqliteSaver.put: skipped (pip install -e '.[bench]')")


if __name__ == "__main__":
    main()
