"""WAL pages and bytes each write commits, by b-tree: statekeeper's writes and LangGraph's put.

At synchronous=FULL every page a commit writes is written and synced before it returns, and
every page later goes through a checkpoint, so pages per commit explain much of the
difference between stores at equal durability. Each write runs 30 times after a warm-up on
a store of 50 sessions, few enough that SQLite's automatic checkpoint (at 1,000 pages) never
runs, so the WAL only grows (checked); its frames are then read back and each is charged to
the table or index owning its page (`dbstat`; "(header)": page 1, rewritten as the file
grows).
LangGraph needs the `bench` extra; without it, only statekeeper is measured.

`--timed CALLS` then times each write against LangGraph's put at FULL, in alternating turns
within each round, and prints the ratio of their ops/s per round (the autocheckpoint on).

    .venv/bin/python scripts/wal_pages.py [--by-btree] [--timed 500 [--rounds 3]]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import struct
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
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
LANGGRAPH = "LangGraph SqliteSaver.put (output and context)"
Write = Callable[[int], Any]


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


def measure(path: Path, write: Write) -> Measured:
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


@contextmanager
def statekeeper_writes(directory: Path) -> Iterator[dict[str, Write]]:
    """Each write the issue names, on a store of 50 sessions that each saved 4 phases."""
    with StateManager(directory / "statekeeper.db", synchronous="full") as sm:
        ids = [sm.create_session(f"s{i}", task="warm up the store") for i in range(50)]
        for i in range(200):
            sm.save_phase_completion(ids[i % 50], f"w{i}", OUTPUT, 100, "0.01", context=CONTEXT)
            sm.add_chat_message(ids[i % 50], "user", MESSAGE)
        yield {
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


@contextmanager
def langgraph_put(directory: Path) -> Iterator[Write | None]:
    """SqliteSaver.put of a checkpoint holding the same output and context, 50 threads."""
    try:
        from langgraph.checkpoint.base import empty_checkpoint
        from langgraph.checkpoint.sqlite import SqliteSaver
    except ImportError:
        yield None
        return
    with closing(sqlite3.connect(directory / "langgraph.db", check_same_thread=False)) as db:
        saver = SqliteSaver(db)
        saver.setup()

        def put(i: int) -> None:
            checkpoint = empty_checkpoint()
            checkpoint["channel_values"] = {"output": OUTPUT, "context": CONTEXT}
            config: Any = {"configurable": {"thread_id": f"t{i % 50}", "checkpoint_ns": ""}}
            saver.put(config, checkpoint, {"step": i}, {})

        for i in range(200):
            put(i)
        yield put


def _ops_per_second(write: Write, first: int, calls: int) -> float:
    """Calls per second of `calls` calls of `write`, numbered from `first`."""
    started = time.perf_counter()
    for i in range(first, first + calls):
        write(i)
    return calls / (time.perf_counter() - started)


def timed_against(
    writes: dict[str, Write], put: Write, calls: int, rounds: int
) -> dict[str, list[float]]:
    """Each write's ops/s over LangGraph's put's, one ratio per round, each measured in turn.

    Every round times each write and then put, alternating which goes first, so both see
    the same machine; the automatic checkpoint runs as it would in use.
    """
    ratios: dict[str, list[float]] = {name: [] for name in writes}
    first = 10_000
    for round_ in range(rounds):
        for name, write in writes.items():
            order = [("ours", write), ("theirs", put)][:: -1 if round_ % 2 else 1]
            speed = {who: _ops_per_second(w, first, calls) for who, w in order}
            ratios[name].append(speed["ours"] / speed["theirs"])
            first += calls
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--by-btree", action="store_true", help="pages per b-tree too")
    parser.add_argument(
        "--timed", type=int, metavar="CALLS", default=0, help="also time CALLS calls a round"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds of --timed")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="skwal-") as tmp,
        statekeeper_writes(Path(tmp)) as writes,
        langgraph_put(Path(tmp)) as put,
    ):
        results = {name: measure(Path(tmp) / "statekeeper.db", w) for name, w in writes.items()}
        if put is not None:
            results[LANGGRAPH] = measure(Path(tmp) / "langgraph.db", put)
        print(f"{'write':50s} {'pages':>6s} {'KiB':>6s}   per commit")
        for name, measured in results.items():
            print(f"{name:50s} {measured.pages:6.1f} {measured.bytes / 1024:6.1f}")
            if args.by_btree:
                for btree, frames in measured.by_btree.most_common():
                    print(f"    {btree:46s} {frames / SAVES:6.2f}")
        if put is None:
            print("LangGraph SqliteSaver.put: skipped (pip install -e '.[bench]')")
        elif args.timed:
            print(f"\nops/s ÷ LangGraph's put at FULL, {args.timed} calls, one ratio per round")
            for name, ratios in timed_against(writes, put, args.timed, args.rounds).items():
                shown = " ".join(f"{r:.2f}" for r in ratios)
                print(f"{name:50s} median {statistics.median(ratios):.2f}x   ({shown})")


if __name__ == "__main__":
    main()
