"""The worker: one implementation's run in its own process, so its peak RSS is its own.

`bench.py --worker SPEC` calls `run_worker`, which writes a JSON result next to the spec:
per-operation latencies summarized, the checks that failed, and the process's peak RSS.
"""

from __future__ import annotations

import contextlib
import json
import resource
import statistics
import time
import traceback
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from benchlib.adapters import (
    ADAPTER_READS,
    FRAMEWORK_OPS,
    check_timed,
    make_adapter_plan,
    open_framework_store,
)
from benchlib.bare import BareStore
from benchlib.peers import AgentsSessionStore, LangGraphStore
from benchlib.proxy import RoundTripProxy
from benchlib.stores import (
    AsyncStatekeeperStore,
    FloorStore,
    Loaded,
    StatekeeperStore,
    Store,
    Timed,
)
from benchlib.workload import (
    CHAT_LIMIT,
    HISTORY_LIMIT,
    MARKER,
    OPS,
    SEARCH_LIMIT,
    AgentSave,
    Plan,
    make_plan,
)

__all__ = ["open_store", "peak_rss_kb", "run_worker", "summarize"]

_CENT_FRACTION = Decimal(1).scaleb(-8)
READS = frozenset(
    {"load_context", "get_session", "get_session_history", "get_chat_history", "search_sessions"}
)
"""Operations that may stop early at the time budget: they leave the store as it was."""
_PEERS = (LangGraphStore, AgentsSessionStore)


def peak_rss_kb() -> int:
    """This process's peak resident set since it exec'd, in KiB.

    Linux's VmHWM; not getrusage's ru_maxrss, which keeps the high-water mark of the parent's
    address space that the child was forked from (Linux carries it across exec).
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def summarize(latencies_ns: list[int], wall_ns: int) -> dict[str, float]:
    """ops/s over the loop's wall time; latency percentiles in microseconds."""
    ordered = sorted(latencies_ns)
    cuts = statistics.quantiles(ordered, n=20, method="inclusive") if len(ordered) > 1 else []
    p95 = cuts[18] if cuts else ordered[0]
    return {
        "n": len(ordered),
        "wall_s": wall_ns / 1e9,
        "ops_per_s": len(ordered) / (wall_ns / 1e9),
        "p50_us": statistics.median(ordered) / 1e3,
        "p95_us": p95 / 1e3,
        "mean_us": statistics.fmean(ordered) / 1e3,
    }


def open_store(impl: str, engine: str, target: str, spec: dict[str, Any]) -> Store:
    """The implementation named `impl`, on the database at `target` (path or URL)."""
    synchronous = spec["synchronous"]
    if impl == "statekeeper":
        return StatekeeperStore(target, synchronous if engine == "sqlite" else None)
    if impl == "statekeeper_async":
        return AsyncStatekeeperStore(target, synchronous if engine == "sqlite" else None)
    if impl == "floor":
        if engine == "sqlite":
            return FloorStore.open_sqlite(target, synchronous, spec["search_templates"])
        return FloorStore.open_postgresql(target, spec["search_templates"])
    if impl == "bare" and engine == "sqlite":
        return BareStore(target, synchronous)
    if impl == "langgraph":
        return LangGraphStore(target)
    if impl == "agents":
        return AgentsSessionStore(target)
    raise ValueError(f"unknown implementation {impl!r}")


def _check_result(op: str, plan: Plan, store: Store, index: int, arg: Any, result: Any) -> str:
    """Why one call's result is wrong, or ''."""
    langgraph = isinstance(store, LangGraphStore)
    if op == "load_context":
        last = plan.last_phase[arg]
        if not isinstance(result, Loaded) or result.data != last.context:
            return f"load_context({arg}): wrong context"
        if result.last_phase != last.phase_id:
            return f"load_context({arg}): last phase {result.last_phase}, not {last.phase_id}"
        expected = plan.expected_cost[arg].quantize(_CENT_FRACTION)
        if result.cost is not None and result.cost != expected:
            return f"load_context({arg}): cost {result.cost}, not {expected}"
    elif op == "get_session" and result != arg:
        return f"get_session({arg}) gave {result}"
    elif op == "get_session_history":
        if langgraph:  # the newest checkpoints' threads, newest first
            wanted = [p.session_id for p in reversed(plan.phases[-HISTORY_LIMIT:])]
        else:
            wanted = plan.newest(HISTORY_LIMIT)
        if result != wanted:
            return f"history: {len(result)} rows, not the newest {HISTORY_LIMIT} in order"
    elif op == "get_chat_history":
        messages = plan.chat_of[arg]
        # SQLiteSession.get_items(limit) gives the latest N; statekeeper the first N.
        wanted = messages[-CHAT_LIMIT:] if isinstance(store, AgentsSessionStore) else messages
        if result != wanted[:CHAT_LIMIT]:
            return f"get_chat_history({arg}): {len(result)} messages, not the expected ones"
    elif op == "search_sessions":
        source = plan.searches[index][1]
        if not result or (len(result) < SEARCH_LIMIT and source not in result):
            return f"search({arg!r}) missed session {source}: {result[:3]}"
    elif op == "save_agent_state" and result != arg.expected_version + 1:
        return f"save_agent_state({arg.agent_id}) stored version {result}, not the next one"
    elif op == "create_snapshot":
        try:
            uuid.UUID(result)
        except (TypeError, ValueError, AttributeError):
            return f"create_snapshot({arg}) gave {result!r}, not a snapshot id"
    return ""


def _check_timed(op: str, plan: Plan, store: Store, args: list[Any], timed: Timed) -> list[str]:
    """Check the first and the last call of an operation."""
    last = len(timed.latencies_ns) - 1
    problems = [
        _check_result(op, plan, store, index, args[index], result)
        for index, result in ((0, timed.first), (last, timed.last))
    ]
    return [p for p in problems if p]


def _final_checks(plan: Plan, store: Store) -> list[str]:
    """Untimed checks of the API, those of the operations the store has: keyset paging,
    search, unknown ids, a stale agent save."""
    problems = []
    has = store.supports
    if "search_sessions" in has and store.search_sessions(MARKER) != [plan.marker_session]:
        problems.append(f"search({MARKER!r}) did not find exactly session {plan.marker_session}")
    middle = plan.n // 2
    if "get_session_history" in has:
        page = store.get_session_history(plan.sessions[middle].id)
        if page != plan.newest(HISTORY_LIMIT, before=middle):
            problems.append("history(before=...) is not the page after that session")
    untouched = next(s.id for s in plan.sessions if s.id not in plan.last_phase)
    if "load_context" in has and store.load_context(untouched) is not None:
        problems.append("load_context of a session without context is not None")
    if "get_session" in has and store.get_session("no-such-session") is not None:
        problems.append("get_session of an unknown id is not None")
    if "save_agent_state" not in has:
        return problems
    # A save over a version that has moved on must be refused, and write nothing (what the
    # agents then hold is checked by the parent, dbtools.ops_problems).
    stale = plan.agent_saves[0]
    try:
        store.save_agent_state(AgentSave(stale.agent_id, {"stale": True}, 1))
    except Exception as exc:  # statekeeper's VersionConflict, or the floor's
        if type(exc).__name__ != "VersionConflict":
            problems.append(f"a stale save_agent_state raised {exc!r}, not a VersionConflict")
    else:
        problems.append("a save_agent_state over a stale version was not refused")
    return problems


@contextlib.contextmanager
def _reached(spec: dict[str, Any]) -> Iterator[str]:
    """The spec's target, through a proxy that waits `delay_ms` before every round trip
    when the spec says so (a database in another zone)."""
    if not spec.get("delay_ms"):
        yield spec["target"]
        return
    url = make_url(spec["target"])
    proxy = RoundTripProxy((str(url.host), int(url.port or 5432)), spec["delay_ms"] / 1000)
    try:
        yield url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    finally:
        proxy.close()


def _run_ops(spec: dict[str, Any], result: dict[str, Any]) -> None:
    with _reached(spec) as target:
        _run_ops_on(target, spec, result)


def _run_ops_on(target: str, spec: dict[str, Any], result: dict[str, Any]) -> None:
    plan = make_plan(spec["n"])
    store = open_store(spec["impl"], spec["engine"], target, spec)
    try:
        result["durability"] = store.durability()
        for op in OPS:
            if op not in store.supports:
                continue
            for seed in plan.setup(op):  # untimed: what the operation works on
                store.create_agent(seed)
            args = plan.args(op)
            budget = spec["read_budget_s"] if op in READS else None
            timed = store.run_timed(op, store.prepare(op, args), budget)
            result["ops"][op] = summarize(timed.latencies_ns, timed.wall_ns)
            result["errors"] += _check_timed(op, plan, store, args, timed)
        # The peers keep no sessions of their own (LangGraph's history is of checkpoints):
        # the final checks are of statekeeper's API and of the stores that stand in for it.
        if not isinstance(store, _PEERS):
            result["errors"] += _final_checks(plan, store)
    finally:
        store.close()


def _run_adapter(spec: dict[str, Any], result: dict[str, Any]) -> None:
    """One framework's calls (spec["task"]: "langgraph" or "agents") on one implementation:
    the framework's own store ("peer") or statekeeper's adapter."""
    framework = spec["task"]
    plan = make_adapter_plan(spec["n"])
    with _reached(spec) as target:
        store = open_framework_store(
            framework, spec["impl"], spec["engine"], target, spec["synchronous"], plan
        )
        try:
            result["durability"] = store.durability()
            for op in FRAMEWORK_OPS[framework]:
                budget = spec["read_budget_s"] if op in ADAPTER_READS else None
                timed = store.run_timed(op, store.prepare(op, plan.args(op)), budget)
                result["ops"][op] = summarize(timed.latencies_ns, timed.wall_ns)
                result["errors"] += check_timed(op, plan, timed)
            result["errors"] += store.final_checks(plan)
        finally:
            store.close()


def _run_import(spec: dict[str, Any], result: dict[str, Any]) -> None:
    runs = []
    for target in spec["targets"]:
        store = open_store(spec["impl"], spec["engine"], target, spec)
        try:
            result["durability"] = store.durability()
            started = time.perf_counter()
            imported = store.import_json(Path(spec["legacy_dir"]))
            runs.append(time.perf_counter() - started)
        finally:
            store.close()
        if imported != spec["sessions"]:
            result["errors"].append(f"import stored {imported} sessions, not {spec['sessions']}")
    result["import"] = {"sessions": spec["sessions"], "runs_s": runs}


def run_worker(spec_path: Path) -> int:
    """Run the spec's task; write `<spec>.result.json`. Returns the process exit code."""
    spec = json.loads(spec_path.read_text())
    result: dict[str, Any] = {"ops": {}, "errors": [], "durability": None}
    code = 0
    try:
        if spec["task"] == "ops":
            _run_ops(spec, result)
        elif spec["task"] in FRAMEWORK_OPS:
            _run_adapter(spec, result)
        else:
            _run_import(spec, result)
    except Exception:
        result["errors"].append(traceback.format_exc(limit=8))
        code = 1
    result["rss_kb"] = peak_rss_kb()
    Path(spec["result"]).write_text(json.dumps(result))
    return code
