"""The records, the time slices and the report of scripts/writers.py (many writers, one store).

On a shared VM one fdatasync takes 0.1 ms one second and 4 ms the next, whatever this script
does, so cells measured one after another compare the disk's moods, not the writers. What is
compared therefore runs in the same run, in alternating time slices: all of a cell's writers
exist for its whole run, and each slice lets one mode write (writer 0 alone; all of them;
or, for the floor, one way of committing). The modes take turns in a palindrome (a b b a a b
...), so a drift of the disk during the run tilts no mode more than another.

Results cross from forked processes (pickled) and from runs under strace (JSON), so the
records live here, importable from both sides.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

__all__ = [
    "API_KINDS",
    "FLOOR_KINDS",
    "FLOOR_MODES",
    "INSERT_KINDS",
    "KINDS",
    "MODES",
    "SOLO",
    "Cell",
    "CellRun",
    "DiskProbe",
    "ModeStats",
    "Slice",
    "WriterResult",
    "report",
    "slices",
    "strace_fsyncs",
    "summarize",
]

API_KINDS = ("statekeeper/processes", "statekeeper/threads")
INSERT_KINDS = ("sqlite3-insert/processes", "sqlite3-insert/threads")
FLOOR_KINDS = ("floor/threads",)
KINDS = API_KINDS + INSERT_KINDS + FLOOR_KINDS
MODES = ("solo", "all")
"""statekeeper and sqlite3-insert: writer 0 alone, then every writer."""
FLOOR_MODES = ("plain-solo", "plain", "mutex", "grouped", "grouped-solo")
"""The floor: one commit per call (alone, then every thread), behind one mutex, grouped
(every thread), and grouped alone (what the queue and the SAVEPOINT cost one caller)."""
SOLO = frozenset({"solo", "plain-solo", "grouped-solo"})
"""Modes in which only writer 0 writes."""


class Cell(NamedTuple):
    """One run: how the writers run, the synchronous level, how many, which modes."""

    kind: str
    synchronous: str
    writers: int
    modes: tuple[str, ...]

    @property
    def spec(self) -> str:
        return f"{self.kind}:{self.synchronous}:{self.writers}:{','.join(self.modes)}"

    @classmethod
    def parse(cls, spec: str) -> Cell:
        kind, synchronous, writers, modes = spec.split(":")
        return cls(kind, synchronous, int(writers), tuple(modes.split(",")))


class Slice(NamedTuple):
    """A mode's turn: from `start_ns` to `end_ns` after the run's start."""

    mode: str
    start_ns: int
    end_ns: int


def slices(modes: tuple[str, ...], turns: int, slice_s: float, gap_s: float) -> list[Slice]:
    """`turns` slices per mode, in palindromic order; no new call starts in the last
    `gap_s` of a slice, so a call still running then rarely spills into the next mode."""
    order: list[str] = []
    for turn in range(turns):
        order += modes if turn % 2 == 0 else modes[::-1]
    size, gap = int(slice_s * 1e9), int(gap_s * 1e9)
    return [Slice(mode, k * size, (k + 1) * size - gap) for k, mode in enumerate(order)]


@dataclass
class WriterResult:
    """What one writer did: its calls' latencies by mode, and every write acknowledged."""

    index: int
    latencies_ns: dict[str, list[int]] = field(default_factory=dict)
    phases: dict[str, int] = field(default_factory=dict)
    chats: dict[str, int] = field(default_factory=dict)
    inserts: int = 0
    refused: int = 0
    error: str | None = None


@dataclass
class ModeStats:
    """Commits made in one mode, the calls they carried, how long each held the lock."""

    commits: int = 0
    units: int = 0
    hold_ns: list[int] = field(default_factory=list)


@dataclass
class CellRun:
    """A run's writers, the time each mode had, and (the floor) commits by mode."""

    spec: str
    writers: list[WriterResult]
    active_s: dict[str, float]
    commits: dict[str, ModeStats]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CellRun:
        return cls(
            spec=data["spec"],
            writers=[WriterResult(**w) for w in data["writers"]],
            active_s=data["active_s"],
            commits={mode: ModeStats(**s) for mode, s in data["commits"].items()},
        )


def _quantile(values: list[int], q: float) -> float:
    """Nearest-rank quantile of sorted `values`, in milliseconds."""
    return values[min(len(values) - 1, int(q * len(values)))] / 1e6 if values else 0.0


def summarize(run: CellRun) -> dict[str, dict[str, Any]]:
    """By mode: ops/s over the mode's time, latency quantiles, fairness, calls per commit."""
    modes: dict[str, dict[str, Any]] = {}
    for mode, active_s in run.active_s.items():
        per_writer = [len(w.latencies_ns.get(mode, [])) for w in run.writers]
        if mode in SOLO:
            per_writer = per_writer[:1]
        latencies = sorted(ns for w in run.writers for ns in w.latencies_ns.get(mode, []))
        stats = run.commits.get(mode)
        hold = sorted(stats.hold_ns) if stats else []
        modes[mode] = {
            "calls": len(latencies),
            "ops_s": round(len(latencies) / active_s, 1) if active_s else 0.0,
            "p50_ms": round(_quantile(latencies, 0.50), 3),
            "p95_ms": round(_quantile(latencies, 0.95), 3),
            "max_ms": round(_quantile(latencies, 1.0), 3),
            "writer_calls": [min(per_writer), max(per_writer)],
            "units_per_commit": round(stats.units / stats.commits, 2)
            if stats and stats.commits
            else None,
            "hold_p50_ms": round(_quantile(hold, 0.50), 3) if hold else None,
            "hold_p95_ms": round(_quantile(hold, 0.95), 3) if hold else None,
        }
    return modes


class DiskProbe:
    """fdatasync latency of the disk while a run goes on: one 4 KB append and sync every
    50 ms to a file of its own, from a thread of the parent process. It says what mood the
    disk was in; the modes' ratios do not depend on it."""

    def __init__(self, path: Path, every_s: float = 0.05) -> None:
        self.path, self.every_s = path, every_s
        self.latencies_ns: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._probe, daemon=True)

    def _probe(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            while not self._stop.wait(self.every_s):
                os.write(fd, b"p" * 4_096)
                started = time.perf_counter_ns()
                os.fdatasync(fd)
                self.latencies_ns.append(time.perf_counter_ns() - started)
        finally:
            os.close(fd)
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> DiskProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def quantiles_ms(self) -> list[float] | None:
        """The median and 90th percentile fdatasync, in milliseconds."""
        values = sorted(self.latencies_ns)
        if not values:
            return None
        return [round(_quantile(values, 0.5), 2), round(_quantile(values, 0.9), 2)]


def strace_fsyncs(report: Path) -> int:
    """fsync and fdatasync calls in an `strace -c` summary."""
    calls = 0
    for line in report.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[-1] in ("fsync", "fdatasync"):
            calls += int(parts[3])
    return calls


# The report: medians over the rounds; every ratio is taken within one run, then its median
# (and range over the rounds) shown.


def _values(rows: list[dict[str, Any]], cell: Cell, mode: str, key: str) -> list[Any]:
    return [
        r["modes"][mode][key]
        for r in sorted(rows, key=lambda r: r["round"])
        if r["cell"] == cell.spec and r["modes"][mode][key] is not None
    ]


def _median(values: list[Any], fmt: str) -> str:
    return fmt.format(statistics.median(values)) if values else ""


def _ratio(rows: list[dict[str, Any]], cell: Cell, mode: str, base: str) -> str:
    mine, theirs = _values(rows, cell, mode, "ops_s"), _values(rows, cell, base, "ops_s")
    ratios = [a / b for a, b in zip(mine, theirs, strict=True) if b]
    if not ratios:
        return ""
    return f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})"


def _disk(rows: list[dict[str, Any]], cell: Cell) -> str:
    disk = [r["disk_fdatasync_ms"] for r in rows if r["cell"] == cell.spec]
    return " · ".join(f"{d[0]:.1f}/{d[1]:.1f}" for d in disk if d)


def _fsyncs(results: dict[str, Any], cell: Cell, mode: str) -> str:
    for f in results["fsyncs"]:
        measured = Cell.parse(f["cell"])
        if measured[:3] == cell[:3] and measured.modes == (mode,):
            return f"{f['per_commit']} / {f['per_unit']}"
    return ""


def report(results: dict[str, Any]) -> str:
    """Two markdown tables: writers against one writer; the grouped-commit experiment."""
    rows: list[dict[str, Any]] = results["runs"]
    cells = list(dict.fromkeys(Cell.parse(r["cell"]) for r in rows))
    lines = [
        f"{results['rounds']} round(s); per run, each mode wrote for {results['mode_s']} s in "
        f"slices of {results['slice_s']} s taking turns. Medians over the rounds; ratios are "
        "taken within each run (median, and range over the rounds). fsyncs: per commit / per "
        "call, strace -c on runs of that mode alone. Disk: the probe's fdatasync p50/p90 ms "
        "during each run.",
        "",
        "| writers as | sync | N | 1 writer ops/s | N writers ops/s | ÷ 1 writer "
        "| p50 ms (1 / N) | p95 ms (1 / N) | slowest call ms (N) | calls per writer, min-max "
        "| fsyncs per commit (1 / N) | disk |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for cell in cells:
        if cell.kind in FLOOR_KINDS:
            continue
        spread = _values(rows, cell, "all", "writer_calls")
        fs = [_fsyncs(results, cell, mode).split(" / ")[0] or "-" for mode in cell.modes]
        lines.append(
            f"| {cell.kind} | {cell.synchronous} | {cell.writers} "
            f"| {_median(_values(rows, cell, 'solo', 'ops_s'), '{:,.0f}')} "
            f"| {_median(_values(rows, cell, 'all', 'ops_s'), '{:,.0f}')} "
            f"| {_ratio(rows, cell, 'all', 'solo')} "
            f"| {_median(_values(rows, cell, 'solo', 'p50_ms'), '{:.2f}')} / "
            f"{_median(_values(rows, cell, 'all', 'p50_ms'), '{:.2f}')} "
            f"| {_median(_values(rows, cell, 'solo', 'p95_ms'), '{:.2f}')} / "
            f"{_median(_values(rows, cell, 'all', 'p95_ms'), '{:.2f}')} "
            f"| {_median(_values(rows, cell, 'all', 'max_ms'), '{:.0f}')} "
            f"| {min(s[0] for s in spread)}-{max(s[1] for s in spread)} "
            f"| {' / '.join(fs) if set(fs) != {'-'} else ''} | {_disk(rows, cell)} |"
        )
    lines += [
        "",
        "Grouped-commit experiment: threads in one process, the floor's statements (plain: a "
        "connection per thread, one commit per call, as statekeeper does).",
        "",
        "| sync | N | mode | ops/s | ÷ plain | ÷ plain-solo | p50 ms | p95 ms "
        "| calls per commit | lock held p50 / p95 ms | fsyncs per commit / call | disk |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for cell in cells:
        if cell.kind not in FLOOR_KINDS:
            continue
        for mode in cell.modes:
            lines.append(
                f"| {cell.synchronous} | {cell.writers} | {mode} "
                f"| {_median(_values(rows, cell, mode, 'ops_s'), '{:,.0f}')} "
                f"| {_ratio(rows, cell, mode, 'plain')} "
                f"| {_ratio(rows, cell, mode, 'plain-solo')} "
                f"| {_median(_values(rows, cell, mode, 'p50_ms'), '{:.2f}')} "
                f"| {_median(_values(rows, cell, mode, 'p95_ms'), '{:.2f}')} "
                f"| {_median(_values(rows, cell, mode, 'units_per_commit'), '{:.2f}')} "
                f"| {_median(_values(rows, cell, mode, 'hold_p50_ms'), '{:.2f}')} / "
                f"{_median(_values(rows, cell, mode, 'hold_p95_ms'), '{:.2f}')} "
                f"| {_fsyncs(results, cell, mode)} | {_disk(rows, cell)} |"
            )
    problems = [f"{r['cell']}: {p}" for r in rows + results["fsyncs"] for p in r["problems"]]
    lines += ["", f"Checks: {len(problems)} problem(s)."]
    lines += [f"- {p}" for p in problems[:50]]
    return "\n".join(lines) + "\n"
