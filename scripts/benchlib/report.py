"""The results: ratios to the floor, tables (terminal and Markdown), results.json, plots."""

from __future__ import annotations

import importlib
import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchlib.adapters import FRAMEWORK_OPS, ITEMS_LIMIT, LIST_LIMIT
from benchlib.scale import SCALE_OPS
from benchlib.workload import OPS

__all__ = [
    "add_peer_ratios",
    "add_ratios",
    "best_of_rounds",
    "markdown",
    "plot_ops",
    "plot_scale",
    "print_tables",
    "write_json",
]

GROUPS = (
    ("sqlite", "normal", "SQLite, synchronous=NORMAL"),
    ("sqlite", "full", "SQLite, synchronous=FULL (the peers' default)"),
    ("postgresql", "on", "PostgreSQL, synchronous_commit=on"),
    ("postgresql", "on_1ms", "PostgreSQL, 1 ms added to every round trip (another zone)"),
)
IMPL_NAMES = {
    "statekeeper": "statekeeper",
    "statekeeper_async": "statekeeper async",
    "floor": "floor",
    "bare": "bare sqlite3",
    "langgraph": "LangGraph SqliteSaver",
    "agents": "Agents SQLiteSession",
}
IMPL_ORDER = tuple(IMPL_NAMES)
PG_PEER_NAMES = {"langgraph": "LangGraph PostgresSaver", "agents": "Agents SQLAlchemySession"}
_PG_LABELS = {"on": "PG", "on_1ms": "PG +1 ms"}


def _setting(record: dict[str, Any]) -> str:
    """A short name for where a record ran: NORMAL, FULL, PG or PG +1 ms."""
    if record["engine"] == "postgresql":
        return _PG_LABELS[record["durability"]]
    return str(record["durability"]).upper()


def impl_name(impl: str, engine: str) -> str:
    """What the report calls an implementation on an engine (the peers' stores differ)."""
    if engine == "postgresql" and impl in PG_PEER_NAMES:
        return PG_PEER_NAMES[impl]
    return IMPL_NAMES[impl]


_COLORS = {
    "statekeeper": "#1f77b4",
    "statekeeper_async": "#9467bd",
    "floor": "#7f7f7f",
    "bare": "#bcbd22",
    "langgraph": "#ff7f0e",
    "agents": "#2ca02c",
}
SCALE_NAMES = {
    "history": "history, first page of 50",
    "history_deep": "history, page 50 deep (before=)",
    "get_session": "get_session",
    "search_two_words": "search, two words",
    "search_one_word": "search, one word",
    "search_rare": "search, a word in one session",
    "total_sessions": "get_total_sessions",
    "statistics": "get_statistics",
}


def best_of_rounds(ops: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per implementation and operation, the round with the most ops/s (the least disturbed
    by the rest of a shared machine); every round's ops/s is kept in `rounds_ops_per_s`."""
    best: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    rounds: dict[tuple[str, str, str, str], list[float]] = {}
    for record in ops:
        key = (record["engine"], record["durability"], record["impl"], record["op"])
        rounds.setdefault(key, []).append(round(record["ops_per_s"], 1))
        if key not in best or record["ops_per_s"] > best[key]["ops_per_s"]:
            best[key] = record
    return [{**record, "rounds_ops_per_s": rounds[key]} for key, record in best.items()]


def add_ratios(ops: list[dict[str, Any]], imports: list[dict[str, Any]]) -> None:
    """Each record's speed relative to the floor of its engine and durability (same run),
    and its median call's relative to the bare store's, where that has the operation."""
    floors = {(r["engine"], r["durability"], r["op"]): r for r in ops if r["impl"] == "floor"}
    bares = {(r["engine"], r["durability"], r["op"]): r for r in ops if r["impl"] == "bare"}
    for record in ops:
        floor = floors.get((record["engine"], record["durability"], record["op"]))
        record["ratio_ops"] = record["ops_per_s"] / floor["ops_per_s"] if floor else None
        record["ratio_p50"] = record["p50_us"] / floor["p50_us"] if floor else None
        bare = bares.get((record["engine"], record["durability"], record["op"]))
        record["ratio_bare_p50"] = record["p50_us"] / bare["p50_us"] if bare else None
    for record in imports:
        record["median_s"] = statistics.median(record["runs_s"]) if record["runs_s"] else None
        record["sessions_per_s"] = (
            record["sessions"] / record["median_s"] if record["median_s"] else None
        )
    import_floors = {(r["engine"], r["durability"]): r for r in imports if r["impl"] == "floor"}
    for record in imports:
        floor = import_floors.get((record["engine"], record["durability"]))
        if floor and floor["sessions_per_s"] and record["sessions_per_s"]:
            record["ratio_ops"] = record["sessions_per_s"] / floor["sessions_per_s"]
        else:
            record["ratio_ops"] = None


def add_peer_ratios(adapters: list[dict[str, Any]]) -> None:
    """Each adapter record's speed relative to its framework's own store (the "peer") at the
    same engine and durability, in the same run: p50 ÷ peer below 1 is a faster median call,
    ops/s ÷ peer above 1 more calls a second."""
    peers = {
        (r["framework"], r["engine"], r["durability"], r["op"]): r
        for r in adapters
        if r["impl"] == "peer"
    }
    for record in adapters:
        peer = peers.get(
            (record["framework"], record["engine"], record["durability"], record["op"])
        )
        record["peer_ratio_p50"] = record["p50_us"] / peer["p50_us"] if peer else None
        record["peer_ratio_ops"] = record["ops_per_s"] / peer["ops_per_s"] if peer else None


def _x(value: float | None) -> str:
    """A ratio: 2 decimals, 3 below 0.1 (so 0.004x does not read as 0.00x)."""
    if value is None:
        return ""
    return f"{value:.3f}x" if value < 0.1 else f"{value:.2f}x"


def _n(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def _sorted(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(records, key=lambda r: (OPS.index(r["op"]), IMPL_ORDER.index(r["impl"])))


def op_tables(results: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of every table, in the order they are shown."""
    tables = []
    header = ["operation", "implementation", "calls", "ops/s", "p50 µs", "p95 µs"]
    header += ["ops/s ÷ floor", "p50 ÷ floor"]
    for engine, durability, title in GROUPS:
        records = [
            r for r in results["ops"] if (r["engine"], r["durability"]) == (engine, durability)
        ]
        if records:
            rows = [
                [
                    r["op"],
                    impl_name(r["impl"], r["engine"]),
                    f"{r['n']:,}",
                    _n(r["ops_per_s"]),
                    _n(r["p50_us"]),
                    _n(r["p95_us"]),
                    _x(r["ratio_ops"]),
                    _x(r["ratio_p50"]),
                ]
                for r in _sorted(records)
            ]
            tables.append((title, header, rows))
    if results["import"]:
        rows = [
            [
                f"{r['engine']}, {r['durability']}",
                IMPL_NAMES[r["impl"]],
                f"{r['sessions']:,}",
                f"{r['median_s']:.2f}" if r["median_s"] else "",
                _n(r["sessions_per_s"]),
                _x(r["ratio_ops"]),
            ]
            for r in results["import"]
        ]
        tables.append(
            (
                "Legacy JSON import (median of runs, each on a fresh database)",
                ["engine, durability", "implementation", "sessions", "s", "sessions/s", "÷ floor"],
                rows,
            )
        )
    return tables


def headline(results: dict[str, Any]) -> tuple[str, list[str], list[list[str]]]:
    """ops/s ÷ floor for statekeeper per group, and the peers' at FULL, one row per op."""
    index = {(r["engine"], r["durability"], r["impl"], r["op"]): r for r in results["ops"]}
    columns = [
        ("sqlite", "normal", "statekeeper"),
        ("sqlite", "full", "statekeeper"),
        ("postgresql", "on", "statekeeper"),
        ("postgresql", "on_1ms", "statekeeper"),
        ("sqlite", "full", "langgraph"),
        ("sqlite", "full", "agents"),
    ]
    header = ["operation", "statekeeper NORMAL", "statekeeper FULL", "statekeeper PG"]
    header += ["statekeeper PG +1 ms", "LangGraph FULL", "Agents FULL"]
    rows = []
    for op in OPS:
        cells = []
        for engine, durability, impl in columns:
            record = index.get((engine, durability, impl, op))
            cells.append(_x(record["ratio_ops"]) if record else "n/a")
        rows.append([op, *cells])
    imports = {(r["engine"], r["durability"], r["impl"]): r for r in results["import"]}
    cells = []
    for engine, durability, impl in columns:
        record = imports.get((engine, durability, impl))
        cells.append(_x(record["ratio_ops"]) if record else "n/a")
    rows.append(["import_json", *cells])
    title = "ops/s as a fraction of the floor's (same run; 1.00x = as fast as hand-written SQL)"
    return title, header, rows


def bare_table(results: dict[str, Any]) -> tuple[str, list[str], list[list[str]]]:
    """statekeeper's and the floor's median call against the bare store's (stdlib sqlite3 on
    a minimal schema of its own), per operation it has, at each SQLite level measured."""
    index = {(r["engine"], r["durability"], r["impl"], r["op"]): r for r in results["ops"]}
    rows = []
    for engine, durability, _title in GROUPS:
        for op in OPS:
            bare = index.get((engine, durability, "bare", op))
            ours = index.get((engine, durability, "statekeeper", op))
            if bare is None or ours is None:
                continue
            floor = index.get((engine, durability, "floor", op))
            rows.append(
                [
                    durability.upper(),
                    op,
                    _n(ours["p50_us"]),
                    _n(floor["p50_us"]) if floor else "",
                    _n(bare["p50_us"]),
                    _x(ours["p50_us"] / bare["p50_us"]),
                    _x(floor["p50_us"] / bare["p50_us"]) if floor else "",
                ]
            )
    header = ["synchronous", "operation", "statekeeper p50 µs", "floor p50 µs", "bare p50 µs"]
    header += ["statekeeper p50 ÷ bare", "floor p50 ÷ bare"]
    title = (
        "statekeeper against a bare sqlite3 store on a minimal schema of its own (same run; "
        "issue 13's target: the reads at NORMAL within 3x)"
    )
    return title, header, rows


def peers_table(results: dict[str, Any]) -> tuple[str, list[str], list[list[str]]]:
    """statekeeper against each peer, operation by operation: on SQLite at FULL (the peers'
    default), on PostgreSQL directly and with 1 ms added to every round trip."""
    index = {(r["engine"], r["durability"], r["impl"], r["op"]): r for r in results["ops"]}
    settings = [("sqlite", "full", "SQLite FULL"), ("postgresql", "on", "PostgreSQL")]
    settings.append(("postgresql", "on_1ms", "PostgreSQL +1 ms"))
    rows = []
    for engine, durability, where in settings:
        for op in OPS:
            ours = index.get((engine, durability, "statekeeper", op))
            for impl in ("langgraph", "agents"):
                peer = index.get((engine, durability, impl, op))
                if ours is None or peer is None:
                    continue
                rows.append(
                    [
                        where,
                        op,
                        impl_name(impl, engine),
                        _n(ours["ops_per_s"]),
                        _n(peer["ops_per_s"]),
                        _x(ours["ops_per_s"] / peer["ops_per_s"]),
                        _x(ours["p50_us"] / peer["p50_us"]),
                    ]
                )
    header = ["where", "operation", "peer", "statekeeper ops/s", "peer ops/s", "ops/s ÷ peer"]
    header.append("p50 ÷ peer")
    title = "statekeeper against the peers (SQLite at FULL, the peers' default; PostgreSQL)"
    return title, header, rows


def async_table(results: dict[str, Any]) -> tuple[str, list[str], list[list[str]]]:
    """AsyncStateManager against StateManager, same engine and durability, per operation."""
    index = {(r["engine"], r["durability"], r["impl"], r["op"]): r for r in results["ops"]}
    rows = []
    for engine, durability, title in GROUPS:
        for op in OPS:
            ours = index.get((engine, durability, "statekeeper_async", op))
            sync = index.get((engine, durability, "statekeeper", op))
            if ours is None or sync is None:
                continue
            rows.append(
                [
                    title.split(",")[0],
                    op,
                    _n(sync["p50_us"]),
                    _n(ours["p50_us"]),
                    _x(ours["p50_us"] / sync["p50_us"]),
                    _x(ours["ops_per_s"] / sync["ops_per_s"]),
                ]
            )
    header = ["engine", "operation", "sync p50 µs", "async p50 µs", "p50 ÷ sync", "ops/s ÷ sync"]
    return "The async manager against the sync one (same run, same engine)", header, rows


ADAPTER_NAMES = {
    ("langgraph", "statekeeper"): "StatekeeperSaver",
    ("langgraph", "peer"): "SqliteSaver",
    ("agents", "statekeeper"): "StatekeeperSession on a StateManager",
    ("agents", "statekeeper_async"): "StatekeeperSession on an AsyncStateManager",
    ("agents", "peer"): "SQLiteSession",
}
ADAPTER_CALLS = {
    "put": "put (a checkpoint: 4 channels, ~3.7 KB)",
    "put_writes": "put_writes (a task's 2 writes, ~0.6 KB)",
    "get_tuple": "get_tuple (a thread's newest)",
    "list": f"list (a thread's newest {LIST_LIMIT})",
    "add_items": "add_items (a turn: 2 items, ~1 KB)",
    "get_items": f"get_items(limit={ITEMS_LIMIT})",
    "pop_item": "pop_item",
}
_ADAPTER_OPS = [op for ops in FRAMEWORK_OPS.values() for op in ops]
PEER_ON_POSTGRESQL = {"langgraph": "PostgresSaver", "agents": "SQLAlchemySession"}
"""The frameworks' own PostgreSQL stores, in place of their SQLite ones."""
_ADAPTER_GROUPS = (
    ("sqlite", "normal", "SQLite, synchronous=NORMAL on both sides", "NORMAL"),
    ("sqlite", "full", "SQLite, synchronous=FULL on both sides", "FULL"),
    ("postgresql", "on", "PostgreSQL, synchronous_commit=on", "PostgreSQL"),
    (
        "postgresql",
        "on_1ms",
        "PostgreSQL, 1 ms added to every round trip (a database in another zone)",
        "PostgreSQL +1 ms",
    ),
)


def adapter_name(framework: str, impl: str, engine: str) -> str:
    """What the report calls an adapter, or a framework's own store on that engine."""
    if impl == "peer" and engine == "postgresql":
        return PEER_ON_POSTGRESQL[framework]
    return ADAPTER_NAMES[(framework, impl)]


def _adapter_key(record: dict[str, Any]) -> tuple[int, int]:
    impls = [impl for framework, impl in ADAPTER_NAMES if framework == record["framework"]]
    return _ADAPTER_OPS.index(record["op"]), impls.index(record["impl"])


def adapter_ratio_table(results: dict[str, Any]) -> tuple[str, list[str], list[list[str]]]:
    """Each adapter against its framework's own store, per call: p50 and ops/s ratios on
    every engine and setting measured."""
    records = results.get("adapters", [])
    index = {(r["framework"], r["engine"], r["durability"], r["impl"], r["op"]): r for r in records}
    measured = {(r["engine"], r["durability"]) for r in records if r["impl"] == "peer"}
    groups = [g for g in _ADAPTER_GROUPS if (g[0], g[1]) in measured]
    rows = []
    for framework, impl in ADAPTER_NAMES:
        if impl == "peer":
            continue
        for op in FRAMEWORK_OPS[framework]:
            cells = []
            for engine, durability, _title, _short in groups:
                record = index.get((framework, engine, durability, impl, op))
                cells += [
                    _x(record["peer_ratio_p50"]) if record else "n/a",
                    _x(record["peer_ratio_ops"]) if record else "n/a",
                ]
            if any(cell != "n/a" for cell in cells):
                rows.append([ADAPTER_CALLS[op], ADAPTER_NAMES[(framework, impl)], *cells])
    header = ["call", "adapter"]
    for _engine, _durability, _title, short in groups:
        header += [f"p50 ÷ peer {short}", f"ops/s ÷ peer {short}"]
    title = (
        "statekeeper's adapters against the frameworks' own stores (SqliteSaver and "
        "SQLiteSession; PostgresSaver and SQLAlchemySession on PostgreSQL), same calls and "
        "data (p50 ÷ peer < 1 and ops/s ÷ peer > 1: the adapter is faster)"
    )
    return title, header, rows


def adapter_tables(results: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """Every adapter and peer record, per engine and durability."""
    tables = []
    header = ["call", "implementation", "calls", "ops/s", "p50 µs", "p95 µs"]
    header += ["p50 ÷ peer", "ops/s ÷ peer"]
    for engine, durability, title, _short in _ADAPTER_GROUPS:
        records = sorted(
            (
                r
                for r in results.get("adapters", [])
                if (r["engine"], r["durability"]) == (engine, durability)
            ),
            key=_adapter_key,
        )
        rows = [
            [
                ADAPTER_CALLS[r["op"]],
                adapter_name(r["framework"], r["impl"], r["engine"]),
                f"{r['n']:,}",
                _n(r["ops_per_s"]),
                _n(r["p50_us"]),
                _n(r["p95_us"]),
                _x(r["peer_ratio_p50"]),
                _x(r["peer_ratio_ops"]),
            ]
            for r in records
        ]
        if rows:
            tables.append((f"Framework calls: {title}", header, rows))
    runs = results.get("adapter_runs", [])
    if runs:
        peak: dict[tuple[str, str, str, str], int] = {}
        size: dict[tuple[str, str, str, str], int] = {}
        for r in runs:
            key = (r["framework"], r["engine"], r["durability"], r["impl"])
            peak[key] = max(peak.get(key, 0), r.get("rss_kb") or 0)
            if r.get("round", 0) == 0 and r.get("size"):
                size[key] = r["size"]["bytes"]
        rows = [
            [
                f"{engine}, {durability}",
                adapter_name(framework, impl, engine),
                r["setting"],
                f"{peak[(framework, engine, durability, impl)] / 1024:.0f}",
                f"{size[(framework, engine, durability, impl)] / 2**20:.2f}"
                if (framework, engine, durability, impl) in size
                else "",
            ]
            for r in runs
            if r.get("round", 0) == 0
            for framework, engine, durability, impl in [
                (r["framework"], r["engine"], r["durability"], r["impl"])
            ]
        ]
        header = ["engine, durability", "implementation", "synchronous (read back)"]
        header += ["peak RSS MiB", "db MiB"]
        tables.append(("Framework runs: durability, peak memory, database size", header, rows))
    return tables


def _over_raw(kinds: dict[str, int] | None) -> float | None:
    """All b-trees against a raw schema's: the rows and their unique constraints only (no
    secondary indexes, no full-text index). SQLite only (dbstat)."""
    if not kinds:
        return None
    raw = kinds.get("rows", 0) + kinds.get("unique", 0)
    return sum(kinds.values()) / raw if raw else None


def resource_table(results: dict[str, Any]) -> tuple[str, list[str], list[list[str]]]:
    """Peak RSS of each run's process (most over its rounds), and the database size after the
    first round's run, the WAL folded in."""
    peak: dict[tuple[str, str, str, str], int] = {}
    for r in results["runs"]:
        key = (r["engine"], r["durability"], r["impl"], r["task"])
        peak[key] = max(peak.get(key, 0), r.get("rss_kb") or 0)
    order = [g[:2] for g in GROUPS]
    runs = sorted(
        (r for r in results["runs"] if r.get("round", 0) == 0),
        key=lambda r: (
            r["task"] != "ops",
            order.index((r["engine"], r["durability"])),
            IMPL_ORDER.index(r["impl"]),
        ),
    )
    rows = []
    for r in runs:
        size = r.get("size") or {}
        groups = size.get("groups", {})
        rss = peak[(r["engine"], r["durability"], r["impl"], r["task"])]
        rows.append(
            [
                f"{r['engine']}, {r['durability']}",
                impl_name(r["impl"], r["engine"]),
                r["task"],
                f"{rss / 1024:.0f}" if rss else "",
                f"{size['bytes'] / 2**20:.2f}" if size else "",
                f"{sum(size['tables'].values()) / 2**20:.2f}" if size else "",
                f"{groups.get('workflow', 0) / 2**20:.2f}" if size else "",
                f"{groups.get('chat', 0) / 2**20:.2f}" if size else "",
                _x(_over_raw(size.get("kinds"))),
            ]
        )
    header = ["engine, durability", "implementation", "run", "peak RSS MiB", "db MiB"]
    header += ["tables MiB", "workflow tables MiB", "chat tables MiB", "÷ raw schema"]
    return "Peak memory of each run's process, and database size after the run", header, rows


def scale_table(results: dict[str, Any]) -> tuple[str, list[str], list[list[str]]]:
    """p50 per call at each size, statekeeper and floor, with the largest/smallest ratio."""
    by_key = {(r["engine"], r["op"], r["impl"], r["size"]): r for r in results["scale"]}
    sizes = sorted({r["size"] for r in results["scale"]})
    header = ["engine", "operation", "impl"] + [f"{s:,}" for s in sizes]
    header += ["largest ÷ smallest", "sk ÷ floor at largest"]
    rows = []
    for engine in ("sqlite", "postgresql"):
        for op in SCALE_OPS:
            for impl in ("statekeeper", "floor"):
                cells = [by_key.get((engine, op, impl, s)) for s in sizes]
                present = [c for c in cells if c]
                if not present:
                    continue
                growth = present[-1]["p50_us"] / present[0]["p50_us"]
                floor = by_key.get((engine, op, "floor", present[-1]["size"]))
                vs_floor = (
                    _x(present[-1]["p50_us"] / floor["p50_us"])
                    if impl == "statekeeper" and floor
                    else ""
                )
                rows.append(
                    [engine, SCALE_NAMES[op], impl]
                    + [f"{c['p50_us'] / 1000:.3f}" if c else "" for c in cells]
                    + [f"{growth:.1f}x ({present[-1]['size']:,}/{present[0]['size']:,})", vs_floor]
                )
    return "p50 ms per call against store size (sessions)", header, rows


def import_memory_table(results: dict[str, Any]) -> tuple[str, list[str], list[list[str]]]:
    """One import per directory size: time, peak RSS of the importing process, size on disk."""
    rows = [
        [
            f"{r['sessions']:,}",
            f"{r['files']:,}",
            f"{r['seconds']:.1f}",
            _n(r["sessions"] / r["seconds"]),
            f"{r['rss_kb'] / 1024:.0f}",
            f"{r['db_bytes'] / 2**20:.1f}",
            f"{r['db_bytes'] / 2**20 / (r['sessions'] / 1_000):.2f}",
        ]
        for r in results.get("import_memory", [])
    ]
    header = ["sessions", "files", "s", "sessions/s", "peak RSS MiB", "db MiB"]
    header.append("db MiB per 1,000 sessions")
    title = "Legacy import into SQLite by directory size (5 instances, 10 messages a session)"
    return title, header, rows


def all_tables(results: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    tables = [headline(results)] if results["ops"] else []
    versus_bare = bare_table(results)
    if versus_bare[2]:
        tables.append(versus_bare)
    tables += op_tables(results)
    peers = peers_table(results)
    if peers[2]:
        tables.append(peers)
    versus_sync = async_table(results)
    if versus_sync[2]:
        tables.append(versus_sync)
    if results["runs"]:
        tables.append(resource_table(results))
    if results.get("adapters"):
        tables += [adapter_ratio_table(results), *adapter_tables(results)]
    if results["scale"]:
        tables.append(scale_table(results))
    if results.get("import_memory"):
        tables.append(import_memory_table(results))
    return tables


def print_tables(console: Console, results: dict[str, Any]) -> None:
    for title, header, rows in all_tables(results):
        table = Table(title=title, title_justify="left")
        for i, name in enumerate(header):
            table.add_column(name, justify="left" if i < 2 else "right")
        for row in rows:
            table.add_row(*row)
        console.print(table)


def markdown(results: dict[str, Any]) -> str:
    """Every table as Markdown, for docs/benchmarks.md."""
    parts = []
    for title, header, rows in all_tables(results):
        parts.append(f"**{title}**\n")
        parts.append("| " + " | ".join(header) + " |")
        parts.append(
            "|" + "|".join(" --- " if i < 2 else " ---: " for i in range(len(header))) + "|"
        )
        parts.extend("| " + " | ".join(row) + " |" for row in rows)
        parts.append("")
    return "\n".join(parts)


def write_json(path: Path, results: dict[str, Any]) -> None:
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")


def _pyplot() -> Any:
    matplotlib = importlib.import_module("matplotlib")
    matplotlib.use("Agg")
    return importlib.import_module("matplotlib.pyplot")


def _save(plt: Any, fig: Any, path: Path) -> None:
    """PNG at 100 dpi, reduced to a 64-colour palette (about a third of the bytes) so the
    copies in docs/img stay small; Pillow comes with matplotlib."""
    fig.savefig(path, dpi=100)
    plt.close(fig)
    image = importlib.import_module("PIL.Image")
    with image.open(path) as opened:
        palette = opened.convert("RGB").quantize(colors=64, method=image.Quantize.MEDIANCUT)
    palette.save(path, optimize=True)


def plot_scale(path: Path, scale: Sequence[dict[str, Any]]) -> None:
    """Per-call p50 against store size, log-log, one panel per engine."""
    plt = _pyplot()
    engines = [e for e in ("sqlite", "postgresql") if any(r["engine"] == e for r in scale)]
    fig, axes = plt.subplots(1, len(engines), figsize=(6.5 * len(engines), 4.8), squeeze=False)
    colors = plt.get_cmap("tab10")
    for ax, engine in zip(axes[0], engines, strict=True):
        for k, op in enumerate(SCALE_OPS):
            for impl, style in (("statekeeper", "-o"), ("floor", ":x")):
                points = sorted(
                    (r["size"], r["p50_us"] / 1000)
                    for r in scale
                    if (r["engine"], r["op"], r["impl"]) == (engine, op, impl)
                )
                if points:
                    label = f"{SCALE_NAMES[op]}" if impl == "statekeeper" else None
                    ax.plot(*zip(*points, strict=True), style, color=colors(k), label=label, ms=4)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("sessions in the store")
        ax.set_ylabel("p50 ms per call")
        ax.set_title(
            f"{'SQLite' if engine == 'sqlite' else 'PostgreSQL'}: solid statekeeper, dotted floor",
            fontsize=10,
        )
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    _save(plt, fig, path)


def plot_ops(path: Path, results: dict[str, Any]) -> None:
    """ops/s per implementation and setting, one panel per operation, labelled with ÷ floor."""
    plt = _pyplot()
    panels = [*OPS, "import_json"]
    rows = -(-len(panels) // 3)
    fig, axes = plt.subplots(rows, 3, figsize=(15, 11 * rows / 3))
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, op in zip(axes.flat, panels, strict=False):
        if op == "import_json":
            records = [
                {**r, "ops_per_s": r["sessions_per_s"]} for r in results["import"] if r["median_s"]
            ]
        else:
            records = [r for r in results["ops"] if r["op"] == op]
        records.sort(
            key=lambda r: (
                [g[:2] for g in GROUPS].index((r["engine"], r["durability"])),
                IMPL_ORDER.index(r["impl"]),
            )
        )
        labels = [f"{impl_name(r['impl'], r['engine'])} · {_setting(r)}" for r in records]
        values = [r["ops_per_s"] for r in records]
        bars = ax.barh(range(len(records)), values, color=[_COLORS[r["impl"]] for r in records])
        ax.set_yticks(range(len(records)), labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_title(op + (" (sessions/s)" if op == "import_json" else " (ops/s)"), fontsize=10)
        top = max(values, default=1)
        ax.set_xlim(0, top * 1.45)
        for bar, r in zip(bars, records, strict=True):
            ratio = "" if r["impl"] == "floor" else f"  {_x(r['ratio_ops'])} floor"
            ax.text(
                bar.get_width(),
                bar.get_y() + bar.get_height() / 2,
                f" {r['ops_per_s']:,.0f}{ratio if r['ratio_ops'] else ''}",
                va="center",
                fontsize=7,
            )
        ax.tick_params(axis="x", labelsize=7)
    fig.suptitle(
        "ops/s per implementation (best round of one benchmark run; ratios to the floor of "
        "the same engine and durability)",
        fontsize=11,
    )
    fig.tight_layout()
    _save(plt, fig, path)
