"""Many writers on one SQLite store: throughput at synchronous FULL (and NORMAL) against one.

Issue 13, item 3. N writers (4 and 8 by default), each on sessions of its own, write to ONE
store file: as processes (fork; each opens its own StateManager) and as threads sharing one
StateManager. Each writer alternates `save_phase_completion` (about 1 KB of output, 4 KB of
context, cost 0.01) and `add_chat_message` (about 500 bytes). SQLite lets one connection
write at a time, so the question is how much of one writer's rate N writers keep, and what
the fsync ending each FULL commit costs them. Beside statekeeper, in the same run:

- `sqlite3-insert`: the same writers doing the least there is, one INSERT per commit with
  statekeeper's pragmas: what SQLite's single write lock allows N writers at all.
- `floor/threads`, the grouped-commit experiment (benchlib/group_commit.py): N threads run
  the floor's statements (statekeeper's, by hand) one commit per call on a connection each
  (`plain`, as statekeeper does), behind one mutex (`mutex`), or with several callers' units
  of work in one transaction and one COMMIT (`grouped`). Writer 0's every 25th call there
  is a unit that writes and then fails: it must roll back alone, whatever its group.

One writer and N writers are measured in the same run, in alternating time slices (see
benchlib/many_writers.py: the disk's fsync time here moves 40x from one second to the next),
and the runs are repeated in rounds, the second in reverse order.

Every run is checked afterwards, never only timed: rows equal to the acknowledged writes per
session (phases, chat messages, phase events, context versions), exact Decimal cost totals,
no row of a failed unit, `integrity_check` clean; for `sqlite3-insert`, each writer's rows.
Nothing is asserted on timings. fsyncs per commit come from `strace -c` on separate runs of a
few modes alone (a run making only the warm-up writes is subtracted).

    .venv/bin/python scripts/writers.py            # about 4 minutes on 2 cores
    .venv/bin/python scripts/writers.py --quick    # the smallest form, a few seconds

Writes DIR/results.json and DIR/results.md (default DIR: bench-results/writers/). Exits 1
when a run fails or a check finds a wrong result.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

ROOT = Path(__file__).resolve().parents[1]
# This checkout's statekeeper and benchlib, even when another one is installed: a worktree
# of a commit measures that commit.
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT / "src")]

from benchlib.floor_sql import PRAGMAS  # noqa: E402
from benchlib.group_commit import (  # noqa: E402
    Executor,
    GroupExecutor,
    MutexExecutor,
    PlainExecutor,
    UnitStore,
    open_unit_store,
)
from benchlib.many_writers import (  # noqa: E402
    FLOOR_KINDS,
    FLOOR_MODES,
    INSERT_KINDS,
    KINDS,
    MODES,
    SOLO,
    Cell,
    CellRun,
    DiskProbe,
    ModeStats,
    Slice,
    WriterResult,
    report,
    slices,
    strace_fsyncs,
    summarize,
)
from benchlib.workload import ChatArgs, PhaseArgs  # noqa: E402

from statekeeper import StateManager  # noqa: E402

FSYNC_RUNS = (
    "statekeeper/processes:full:4:solo",
    "statekeeper/processes:full:4:all",
    "statekeeper/threads:full:4:all",
    "statekeeper/processes:normal:4:all",
    "sqlite3-insert/processes:full:4:all",
    "floor/threads:full:8:plain",
    "floor/threads:full:8:grouped",
)
"""Modes run alone under strace to count fsyncs (those whose kind, level and N are planned)."""

SESSIONS_PER_WRITER = 4
WARMUP = 2  # untimed writes per writer and mode: connections opened, statements cached
DOOM_EVERY = 25
COST = Decimal("0.01")
OUTPUT = {"text": "o" * 1_000}
CONTEXT = {f"k{i}": "v" * 40 for i in range(90)}
CHAT = "c" * 500
DOOMED = "doomed unit"
INSERT = "INSERT INTO writes (writer, n) VALUES (?, ?)"
BARRIER_S = 120.0
START_MARGIN_NS = 50_000_000  # every writer is awake before the first slice begins


class Writer(Protocol):
    """Makes the i-th write of one writer in a mode; counts only what was acknowledged."""

    modes: tuple[str, ...]
    phases: Counter[str]
    chats: Counter[str]
    inserts: int
    refused: int

    def write(self, i: int, mode: str) -> None: ...

    def close(self) -> None: ...


class _Counts:
    modes: tuple[str, ...] = ("all",)

    def __init__(self) -> None:
        self.phases: Counter[str] = Counter()
        self.chats: Counter[str] = Counter()
        self.inserts = 0
        self.refused = 0


def _context(i: int) -> dict[str, Any]:
    return {**CONTEXT, "step": i}


class ApiWriter(_Counts):
    """statekeeper's public API: a phase save with its context, then a chat message."""

    def __init__(self, sm: StateManager, sessions: list[str], *, owned: bool) -> None:
        super().__init__()
        self.sm, self.sessions, self.owned = sm, sessions, owned

    def write(self, i: int, mode: str) -> None:
        session = self.sessions[(i // 2) % len(self.sessions)]
        if i % 2 == 0:
            self.sm.save_phase_completion(
                session, f"p{i}", OUTPUT, 100, str(COST), context=_context(i)
            )
            self.phases[session] += 1
        else:
            self.sm.add_chat_message(session, "user", CHAT)
            self.chats[session] += 1

    def close(self) -> None:
        if self.owned:
            self.sm.close()


class InsertWriter(_Counts):
    """The least a commit can be: BEGIN IMMEDIATE, one INSERT, COMMIT."""

    def __init__(self, path: str, synchronous: str, index: int) -> None:
        super().__init__()
        self.index = index
        self.connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for pragma in PRAGMAS:
            self.connection.execute(pragma.format(synchronous=synchronous.upper()))

    def write(self, i: int, mode: str) -> None:
        cur = self.connection.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            cur.execute(INSERT, (self.index, i))
            cur.execute("COMMIT")
        except BaseException:
            if self.connection.in_transaction:
                cur.execute("ROLLBACK")
            raise
        self.inserts += 1

    def close(self) -> None:
        self.connection.close()


class Doomed(Exception):
    """Raised by a unit of work after it wrote: its write must not survive."""


def _doomed(store: UnitStore, message: ChatArgs) -> None:
    store.add_chat_message(message)
    raise Doomed


class FloorWriter(_Counts):
    """The floor's statements through the executor of each mode; with `doom`, every 25th
    call is a unit that fails after writing."""

    def __init__(self, executors: dict[str, Executor], sessions: list[str], *, doom: bool) -> None:
        super().__init__()
        self.executors, self.sessions, self.doom = executors, sessions, doom
        self.modes = tuple(executors)

    def write(self, i: int, mode: str) -> None:
        executor = self.executors[mode]
        session = self.sessions[(i // 2) % len(self.sessions)]
        if self.doom and i % DOOM_EVERY == DOOM_EVERY - 1:
            message = ChatArgs(session, DOOMED)
            try:
                executor.run(lambda store: _doomed(store, message))
            except Doomed:
                self.refused += 1
                return
            raise RuntimeError("a failing unit of work returned")
        if i % 2 == 0:
            phase = PhaseArgs(session, f"p{i}", i, OUTPUT, _context(i), COST, 100, 0, 0)
            executor.run(lambda store: store.save_phase_completion(phase))
            self.phases[session] += 1
        else:
            chat = ChatArgs(session, CHAT)
            executor.run(lambda store: store.add_chat_message(chat))
            self.chats[session] += 1

    def close(self) -> None:
        pass  # the run closes the executors


# The writers' loop, in a process or a thread.


class _Barrier(Protocol):
    def wait(self, timeout: float | None = ...) -> int: ...

    def abort(self) -> None: ...


class _Start(Protocol):
    value: int


def _drive(
    make: Callable[[int], Writer],
    index: int,
    turns: list[Slice],
    barrier: _Barrier,
    start: _Start,
) -> WriterResult:
    """Warm up, wait for every writer, then write in this writer's slices, timing each call."""
    result = WriterResult(index)
    writer: Writer | None = None
    clock = time.perf_counter_ns  # CLOCK_MONOTONIC: one clock for every process
    try:
        writer = make(index)
        i = 0
        for mode in writer.modes:
            for _ in range(WARMUP):
                writer.write(i, mode)
                i += 1
        barrier.wait(BARRIER_S)  # its action set start.value
        for turn in turns:
            if turn.mode in SOLO and index != 0:
                continue
            time.sleep(max(0, start.value + turn.start_ns - clock()) / 1e9)
            latencies = result.latencies_ns.setdefault(turn.mode, [])
            end = start.value + turn.end_ns
            while (begun := clock()) < end:
                writer.write(i, turn.mode)
                latencies.append(clock() - begun)
                i += 1
    except BaseException as exc:
        barrier.abort()
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        if writer is not None:
            result.phases, result.chats = dict(writer.phases), dict(writer.chats)
            result.inserts, result.refused = writer.inserts, writer.refused
            writer.close()
    return result


def _in_processes(make: Callable[[int], Writer], n: int, turns: list[Slice]) -> list[WriterResult]:
    # fork: children start in milliseconds; each opens its own store after the fork.
    context = multiprocessing.get_context("fork")
    start = context.Value("q", 0)
    barrier = context.Barrier(
        n, action=lambda: setattr(start, "value", time.perf_counter_ns() + START_MARGIN_NS)
    )
    queue: Any = context.Queue()

    def child(index: int) -> None:
        queue.put(_drive(make, index, turns, barrier, start))

    processes = [context.Process(target=child, args=(w,)) for w in range(n)]
    for process in processes:
        process.start()
    wait_s = BARRIER_S + (turns[-1].end_ns / 1e9 if turns else 0) + 60
    results = [queue.get(timeout=wait_s) for _ in processes]
    for process in processes:
        process.join()
    return sorted(results, key=lambda r: r.index)


class _Value:
    value = 0


def _in_threads(make: Callable[[int], Writer], n: int, turns: list[Slice]) -> list[WriterResult]:
    start = _Value()
    barrier = threading.Barrier(
        n, action=lambda: setattr(start, "value", time.perf_counter_ns() + START_MARGIN_NS)
    )
    results = [WriterResult(w) for w in range(n)]

    def body(index: int) -> None:
        results[index] = _drive(make, index, turns, barrier, start)

    threads = [threading.Thread(target=body, args=(w,)) for w in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def _floor_writers(
    cell: Cell, path: Path, sessions: dict[int, list[str]], by_mode: dict[str, list[Executor]]
) -> Callable[[int], Writer]:
    """Executors for each floor mode (shared by the threads, or one per thread for plain),
    collected in `by_mode` so that the run can count their commits and close them."""
    level = cell.synchronous
    shared: dict[str, Executor] = {}
    for mode in cell.modes:
        if mode == "mutex":
            shared[mode] = MutexExecutor(open_unit_store(str(path), level))
        elif mode.startswith("grouped"):
            shared[mode] = GroupExecutor(open_unit_store(str(path), level))
        if mode in shared:
            by_mode[mode] = [shared[mode]]

    def make(w: int) -> Writer:
        executors: dict[str, Executor] = {}
        for mode in cell.modes:
            if mode in SOLO and w != 0:
                continue
            if mode not in shared:  # plain: this thread's own connection
                by_mode.setdefault(mode, []).append(
                    PlainExecutor(open_unit_store(str(path), level))
                )
            executors[mode] = shared.get(mode) or by_mode[mode][-1]
        return FloorWriter(executors, sessions[w], doom=w == 0)

    return make


def run_cell(cell: Cell, path: Path, turns: list[Slice]) -> CellRun:
    """Run one cell's writers on the store at `path` (a fresh copy of the template)."""
    sessions = sessions_of(path) if cell.kind not in INSERT_KINDS else {}
    by_mode: dict[str, list[Executor]] = {}
    cleanup: Callable[[], None] = lambda: None  # noqa: E731
    level = cell.synchronous
    make: Callable[[int], Writer]
    if cell.kind == "statekeeper/processes":
        make = lambda w: ApiWriter(  # noqa: E731
            StateManager(path, synchronous=level), sessions[w], owned=True
        )
    elif cell.kind == "statekeeper/threads":
        shared = StateManager(path, synchronous=level)
        make = lambda w: ApiWriter(shared, sessions[w], owned=False)  # noqa: E731
        cleanup = shared.close
    elif cell.kind in INSERT_KINDS:
        make = lambda w: InsertWriter(str(path), level, w)  # noqa: E731
    else:
        make = _floor_writers(cell, path, sessions, by_mode)
    runner = _in_processes if cell.kind.endswith("/processes") else _in_threads
    try:
        writers = runner(make, cell.writers, turns)
    finally:
        cleanup()
        for executors in by_mode.values():
            for executor in executors:
                executor.close()
    active: dict[str, float] = {}
    for turn in turns:
        active[turn.mode] = active.get(turn.mode, 0.0) + (turn.end_ns - turn.start_ns) / 1e9
    commits = {}
    for mode, executors in by_mode.items():
        stats = ModeStats()
        for executor in executors:
            stats.commits += executor.stats.commits
            stats.units += executor.stats.units
            stats.hold_ns += executor.stats.hold_ns
        commits[mode] = stats
    return CellRun(cell.spec, writers, active, commits)


def acknowledged(run: CellRun) -> int:
    """Calls acknowledged in the run, warm-up included."""
    return sum(sum(w.phases.values()) + sum(w.chats.values()) + w.inserts for w in run.writers)


# Stores, and the checks that follow every run.


def make_templates(directory: Path, writers: int) -> tuple[Path, Path]:
    """A migrated store holding each writer's sessions, and the sqlite3-insert store."""
    api = directory / "template.db"
    with StateManager(api) as sm:
        for w in range(writers):
            for k in range(SESSIONS_PER_WRITER):
                sm.create_session(f"writer-{w}-{k}")
        sm.checkpoint()
    inserts = directory / "inserts.db"
    with sqlite3.connect(inserts) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(
            "CREATE TABLE writes (id INTEGER PRIMARY KEY, writer INTEGER NOT NULL, "
            "n INTEGER NOT NULL)"
        )
    connection.close()
    return api, inserts


def sessions_of(path: Path) -> dict[int, list[str]]:
    """Each writer's session ids, from their subjects (`writer-W-K`)."""
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT id, subject FROM sessions ORDER BY subject").fetchall()
    connection.close()
    sessions: dict[int, list[str]] = {}
    for session_id, subject in rows:
        sessions.setdefault(int(subject.split("-")[1]), []).append(session_id)
    return sessions


_STORED = {
    "phases": "SELECT session_id, count(*) FROM phase_completions GROUP BY session_id",
    "chats": "SELECT session_id, count(*) FROM chat_messages GROUP BY session_id",
    "events": "SELECT session_id, count(*) FROM events "
    "WHERE event_type = 'phase.completed' GROUP BY session_id",
    "versions": "SELECT session_id, version FROM workflow_context",
    "doomed": "SELECT session_id, count(*) FROM chat_messages WHERE content = :doomed "
    "GROUP BY session_id",
}


def check(cell: Cell, path: Path, run: CellRun) -> list[str]:
    """What is wrong with the store after `run`, compared with what was acknowledged."""
    problems = [f"writer {w.index}: {w.error}" for w in run.writers if w.error]
    if cell.kind in INSERT_KINDS:
        with sqlite3.connect(path) as connection:
            rows = connection.execute(
                "SELECT writer, count(*), count(DISTINCT n) FROM writes GROUP BY writer"
            ).fetchall()
        connection.close()
        found = {writer: (count, distinct) for writer, count, distinct in rows}
        for w in run.writers:
            if found.get(w.index, (0, 0)) != (w.inserts, w.inserts):
                problems.append(f"writer {w.index}: {found.get(w.index)} rows, {w.inserts} acked")
        return problems
    phases: Counter[str] = Counter()
    chats: Counter[str] = Counter()
    for w in run.writers:
        phases.update(w.phases)
        chats.update(w.chats)
    with sqlite3.connect(path) as connection:
        stored: dict[str, dict[str, int]] = {
            name: dict(connection.execute(sql, {"doomed": DOOMED}).fetchall())
            for name, sql in _STORED.items()
        }
    connection.close()
    expected = {"phases": phases, "chats": chats, "events": phases, "versions": phases}
    ids = {s for per in sessions_of(path).values() for s in per}
    for name, want in expected.items():
        for session in ids:
            if stored[name].get(session, 0) != want.get(session, 0):
                problems.append(
                    f"{session}: {stored[name].get(session, 0)} {name}, "
                    f"{want.get(session, 0)} acknowledged"
                )
    if stored["doomed"]:
        problems.append(f"rows of failed units survived: {stored['doomed']}")
    with StateManager(path, auto_migrate=False) as sm:
        for session in ids:
            got = sm.get_session(session)
            cost = got.cost_usd if got is not None else None
            if cost != COST * phases.get(session, 0):
                problems.append(f"{session}: cost {cost}, {COST * phases.get(session, 0)} saved")
        problems += [f"integrity_check: {p}" for p in sm.integrity_check().problems]
    return problems


class Stores:
    """Fresh copies of the templates, one per run, removed after it."""

    def __init__(self, directory: Path, writers: int) -> None:
        self.directory = directory
        self.api, self.inserts = make_templates(directory, writers)
        self.made = 0

    def fresh(self, cell: Cell) -> Path:
        self.made += 1
        path = self.directory / f"run-{self.made}.db"
        shutil.copyfile(self.inserts if cell.kind in INSERT_KINDS else self.api, path)
        return path

    @staticmethod
    def remove(path: Path) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


def measure(cell: Cell, stores: Stores, turns: list[Slice]) -> dict[str, Any]:
    """One run of one cell, checked."""
    path = stores.fresh(cell)
    try:
        with DiskProbe(path.with_suffix(".probe")) as probe:
            run = run_cell(cell, path, turns)
        problems = check(cell, path, run)
    finally:
        stores.remove(path)
    return {
        "cell": cell.spec,
        "modes": summarize(run),
        "disk_fdatasync_ms": probe.quantiles_ms(),
        "problems": problems,
    }


def count_fsyncs(cell: Cell, stores: Stores, args: argparse.Namespace) -> dict[str, Any]:
    """fsyncs per commit and per call of a mode run alone, from two runs under strace: one
    making only the warm-up writes, one writing for the mode's time; their difference
    leaves out opening, warming up and closing. strace stops the traced processes only at
    the fsyncs (--seccomp-bpf), but each stop slows them: the runs' rates are not kept."""
    counted: list[tuple[int, int, int]] = []
    problems: list[str] = []
    for turns in (0, args.turns):
        path = stores.fresh(cell)
        trace, result = path.with_suffix(".strace"), path.with_suffix(".json")
        command = [
            *("strace", "-f", "--seccomp-bpf", "-c", "-e", "trace=fsync,fdatasync"),
            *("-o", str(trace), sys.executable, str(Path(__file__).resolve())),
            *("--cell", cell.spec, "--store", str(path), "--result", str(result)),
            *("--turns", str(turns), "--slice", str(args.slice), "--gap", str(args.gap)),
        ]
        try:
            subprocess.run(command, check=True, capture_output=True, timeout=600)
            run = CellRun.from_json(json.loads(result.read_text()))
            problems += check(cell, path, run)
            commits = sum(s.commits for s in run.commits.values()) or acknowledged(run)
            counted.append((strace_fsyncs(trace), commits, acknowledged(run)))
        finally:
            stores.remove(path)
            trace.unlink(missing_ok=True)
            result.unlink(missing_ok=True)
    (f0, c0, u0), (f1, c1, u1) = counted
    return {
        "cell": cell.spec,
        "fsyncs": f1 - f0,
        "commits": c1 - c0,
        "units": u1 - u0,
        "per_commit": round((f1 - f0) / (c1 - c0), 2) if c1 > c0 else None,
        "per_unit": round((f1 - f0) / (u1 - u0), 2) if u1 > u0 else None,
        "problems": problems,
    }


def code_version() -> dict[str, Any]:
    """The commit measured, and whether src/ differed from it (then the figures belong to
    no commit)."""

    def git(*arguments: str) -> str:
        run = subprocess.run(["git", *arguments], cwd=ROOT, capture_output=True, text=True)
        return run.stdout.strip() if run.returncode == 0 else "?"

    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "src_changed": bool(git("status", "--porcelain", "--", "src")),
    }


def plan(args: argparse.Namespace) -> list[Cell]:
    """The runs of one round: each kind at each level and writer count, all its modes."""
    return [
        Cell(kind, level, n, FLOOR_MODES if kind in FLOOR_KINDS else MODES)
        for kind in args.kinds
        for level in args.synchronous
        for n in args.writers
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="2 writers, FULL, short slices")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--turns", type=int, default=4, help="slices per mode and run")
    parser.add_argument("--slice", type=float, default=0.4, help="seconds")
    parser.add_argument("--gap", type=float, default=0.04, help="seconds closing a slice")
    parser.add_argument("--writers", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--synchronous", nargs="+", default=["full", "normal"])
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    parser.add_argument("--no-fsyncs", action="store_true", help="skip the strace runs")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "writers")
    # One run on a given store, for strace: --cell SPEC --store PATH --result FILE
    parser.add_argument("--cell", help=argparse.SUPPRESS)
    parser.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.writers, args.synchronous, args.rounds, args.no_fsyncs = [2], ["full"], 1, True
        args.turns, args.slice, args.gap = 2, 0.15, 0.03
    if args.cell:
        cell = Cell.parse(args.cell)
        run = run_cell(cell, args.store, slices(cell.modes, args.turns, args.slice, args.gap))
        args.result.write_text(json.dumps(asdict(run)))
        return 0
    started, load_before = time.monotonic(), os.getloadavg()
    cells = plan(args)
    runs: list[dict[str, Any]] = []
    fsyncs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="skwriters-") as tmp:
        stores = Stores(Path(tmp), max(args.writers))
        for number in range(1, args.rounds + 1):
            for cell in cells if number % 2 else cells[::-1]:
                turns = slices(cell.modes, args.turns, args.slice, args.gap)
                runs.append({"round": number, **measure(cell, stores, turns)})
                rates = ", ".join(f"{m} {s['ops_s']:,.0f}" for m, s in runs[-1]["modes"].items())
                flag = f"  PROBLEMS: {len(runs[-1]['problems'])}" if runs[-1]["problems"] else ""
                print(f"round {number} {cell.spec:44} ops/s: {rates}{flag}", flush=True)
        if not args.no_fsyncs and shutil.which("strace"):
            for spec in FSYNC_RUNS:
                cell = Cell.parse(spec)
                if any(c[:3] == cell[:3] for c in cells):
                    fsyncs.append(count_fsyncs(cell, stores, args))
                    print(f"fsyncs {spec:44} {fsyncs[-1]['per_commit']} a commit", flush=True)
    results = {
        "code": code_version(),
        "rounds": args.rounds,
        "mode_s": round(args.turns * args.slice, 2),
        "slice_s": args.slice,
        "gap_s": args.gap,
        "sqlite": sqlite3.sqlite_version,
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "elapsed_s": round(time.monotonic() - started, 1),
        "load_average": {"before": load_before, "after": os.getloadavg()},
        "runs": runs,
        "fsyncs": fsyncs,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    markdown = report(results)
    (args.out / "results.md").write_text(markdown)
    print(markdown)
    return 1 if any(r["problems"] for r in runs + fsyncs) else 0


if __name__ == "__main__":
    sys.exit(main())
