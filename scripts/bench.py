"""Benchmark statekeeper against hand-written sqlite3/psycopg (the floor) and peer libraries.

    .venv/bin/python scripts/bench.py [--quick] [--out DIR]

One run, fresh databases, the same seeded payloads and choices (random.Random(42)) for every
implementation. Each implementation runs in its own process (its peak RSS is its own). The
floor runs statekeeper's statements (scripts/benchlib/floor_sql.py) on a database
statekeeper created, so schema, indexes and full-text triggers are identical. The bare store
(scripts/benchlib/bare.py) is stdlib sqlite3 on a minimal schema of its own, with only the
session, phase and context operations: what the design costs, not only the library. Peers
(LangGraph's SqliteSaver, the OpenAI Agents SDK's SQLiteSession) are measured where they
have the operation, when installed (`pip install -e '.[bench]'`); otherwise they are
skipped. With them installed, statekeeper's adapters (StatekeeperSaver, StatekeeperSession)
also make the frameworks' own calls against those stores, at equal durability, and on
PostgreSQL against PostgresSaver and the SDK's SQLAlchemySession, directly and with 1 ms
added to every round trip (`--adapters-only`: just that).

Writes DIR/results.json, DIR/results.md and DIR/*.png (default DIR: bench-results/).
Exits 1 when a run fails or a result is wrong; never because of a timing. See
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT)]

if "--worker" not in sys.argv:  # a worker imports only what its implementation needs
    from benchlib import report
    from benchlib.bare import bare_problems
    from benchlib.dbtools import Postgres, import_digest, ops_problems, pg_size, sqlite_size
    from benchlib.floor_sql import search_templates
    from benchlib.scale import run_scale
    from benchlib.workload import make_plan
    from rich.console import Console
    from rich.markup import escape

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
PACKAGES = (
    "statekeeper",
    "sqlalchemy",
    "alembic",
    "pydantic",
    "psycopg",
    "langgraph-checkpoint-sqlite",
    "langgraph-checkpoint",
    "openai-agents",
    "matplotlib",
)


@dataclass(frozen=True)
class Config:
    """How big a run is."""

    iterations: int
    import_sessions: int
    import_files: int
    import_runs: int
    sqlite_sizes: tuple[int, ...]
    pg_sizes: tuple[int, ...]
    scale_iterations: int
    scale_budget_s: float
    rounds: int
    """Runs of each implementation's operations (alternating who goes first); best is kept."""
    read_budget_s: float
    """A read operation stops after this long (and at least 50 calls)."""
    import_memory_sizes: tuple[int, ...]
    """Legacy directories of these many sessions are imported once each, for peak memory."""
    delayed: bool
    """PostgreSQL runs again with `DELAYED` milliseconds added to every round trip."""


FULL = Config(2_000, 1_000, 2, 3, (1_000, 10_000, 100_000, 1_000_000),
              (1_000, 10_000, 100_000, 1_000_000), 200, 8.0, 2, 20.0,
              (10_000, 100_000), True)  # fmt: skip
QUICK = Config(300, 100, 1, 1, (1_000, 10_000), (), 50, 2.0, 1, 5.0, (500, 2_000), False)


DELAYED = {"on_1ms": 1}
"""PostgreSQL settings that add milliseconds to every round trip (through benchlib.proxy)."""


@dataclass(frozen=True)
class Job:
    """One implementation's run, in its own process."""

    task: str  # "ops" or "import"
    impl: str
    engine: str
    durability: str  # "normal" / "full" on SQLite, "on" (or "on_1ms") on PostgreSQL
    round: int = 0

    @property
    def tag(self) -> str:
        return f"{self.task}_{self.impl}_{self.engine}_{self.durability}_{self.round}"


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip()


def machine(pg: Postgres | None) -> dict[str, Any]:
    """What the numbers were measured on."""
    meminfo = Path("/proc/meminfo")
    ram = next(
        (line.split()[1] for line in meminfo.read_text().splitlines() if "MemTotal" in line), "0"
    ) if meminfo.exists() else "0"  # fmt: skip
    cpuinfo = Path("/proc/cpuinfo")
    cpu = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
         if line.startswith("model name")), platform.processor()
    ) if cpuinfo.exists() else platform.processor()  # fmt: skip
    probe = sqlite3.connect(":memory:")
    default_sync = probe.execute("PRAGMA synchronous").fetchone()[0]
    probe.close()
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": round(int(ram) / 2**20, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "sqlite_default_synchronous": default_sync,
        "postgresql": pg.version() if pg else None,
        "packages": {name: _version(name) for name in PACKAGES},
        "commit": _git("log", "-1", "--format=%h %s"),
        "uncommitted": _git("status", "--porcelain", "--", "src"),
    }


def _peer_available(package: str, module: str) -> bool:
    try:
        return _version(package) is not None and importlib.util.find_spec(module) is not None
    except ImportError:
        return False


class Bench:
    """One benchmark run: jobs, checks and results."""

    def __init__(self, config: Config, work: Path, pg: Postgres | None, console: Console) -> None:
        self.config = config
        self.work = work
        self.pg = pg
        self.console = console
        self.errors: list[str] = []
        self.results: dict[str, Any] = {
            "ops": [], "import": [], "runs": [], "scale": [], "import_memory": [], "skipped": [],
            "adapters": [], "adapter_runs": [], "errors": self.errors,
        }  # fmt: skip
        self.import_samples: dict[tuple[str, str, str], Any] = {}

    def log(self, text: str) -> None:
        self.console.log(text)

    def _target(self, job: Job, k: int = 0) -> str:
        """A fresh database for the job; statekeeper creates it unless a peer's."""
        if job.engine == "postgresql":
            assert self.pg is not None
            url = self.pg.create(f"{job.tag}_{k}".lower())
        else:
            url = str(self.work / f"{job.tag}_{k}.db")
        if job.impl in ("statekeeper", "statekeeper_async", "floor"):
            from statekeeper import StateManager

            StateManager(url).close()
        return url

    def run(self, job: Job) -> None:
        count = self.config.import_runs if job.task == "import" else 1
        targets = [self._target(job, k) for k in range(count)]
        spec: dict[str, Any] = {
            "task": job.task,
            "impl": job.impl,
            "engine": job.engine,
            "synchronous": job.durability if job.engine == "sqlite" else None,
            "delay_ms": DELAYED.get(job.durability, 0),
            "n": self.config.iterations,
            "target": targets[0],
            "targets": targets,
            "legacy_dir": str(self.work / "legacy"),
            "sessions": self.config.import_sessions,
            "read_budget_s": self.config.read_budget_s,
            "result": str(self.work / f"{job.tag}.result.json"),
            "search_templates": search_templates(job.engine) if job.impl == "floor" else None,
        }
        label = f"{job.impl} {job.task} ({job.engine}, {job.durability}, round {job.round})"
        result = self._spawn(job.tag, spec, label)
        if result is None:
            return
        where = {"engine": job.engine, "durability": job.durability, "impl": job.impl}
        run: dict[str, Any] = {
            **where, "task": job.task, "round": job.round, "rss_kb": result["rss_kb"],
            "setting": result["durability"],
        }  # fmt: skip
        for op, stats in result["ops"].items():
            self.results["ops"].append(
                {**where, "op": op, "round": job.round, "setting": result["durability"], **stats}
            )
        if job.task == "import" and "import" in result:
            self.results["import"].append({**where, **result["import"]})
        self._inspect(job, targets, run, label)
        self.results["runs"].append(run)
        if self.pg is not None:
            for target in targets:
                if job.engine == "postgresql":
                    self.pg.drop(target)

    def run_adapter(self, job: Job) -> None:
        """One framework's calls (job.task: "langgraph" or "agents") on one implementation."""
        target = self._target(job)
        spec: dict[str, Any] = {
            "task": job.task,
            "impl": job.impl,
            "engine": job.engine,
            "synchronous": job.durability if job.engine == "sqlite" else None,
            "delay_ms": DELAYED.get(job.durability, 0),
            "n": self.config.iterations,
            "target": target,
            "read_budget_s": self.config.read_budget_s,
            "result": str(self.work / f"{job.tag}.result.json"),
        }
        label = f"{job.task} {job.impl} ({job.engine}, {job.durability}, round {job.round})"
        result = self._spawn(job.tag, spec, label)
        if result is None:
            return
        where = {
            "framework": job.task, "engine": job.engine, "durability": job.durability,
            "impl": job.impl, "round": job.round, "setting": result["durability"],
        }  # fmt: skip
        for op, stats in result["ops"].items():
            self.results["adapters"].append({**where, "op": op, **stats})
        if job.engine == "sqlite":
            size = sqlite_size(Path(target))
            if result["durability"] != job.durability:  # every connection, read back
                self.errors.append(f"{label}: ran at synchronous {result['durability']}")
        else:
            size = pg_size(target)
            if self.pg is not None:
                self.pg.drop(target)
        self.results["adapter_runs"].append({**where, "rss_kb": result["rss_kb"], "size": size})

    def _spawn(self, tag: str, spec: dict[str, Any], label: str) -> dict[str, Any] | None:
        """Run one worker process on `spec`; its result, or None if it died (an error)."""
        spec_path = self.work / f"{tag}.spec.json"
        spec_path.write_text(json.dumps(spec))
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, __file__, "--worker", str(spec_path)],
            capture_output=True, text=True, timeout=3_600, check=False,
        )  # fmt: skip
        self.log(f"{label}: {time.perf_counter() - started:.1f} s")
        result_path = Path(spec["result"])
        if not result_path.exists():
            self.errors.append(f"{label}: worker died: {done.stderr[-2000:]}")
            return None
        result: dict[str, Any] = json.loads(result_path.read_text())
        self.errors.extend(f"{label}: {e}" for e in result["errors"])
        if done.returncode != 0 and not result["errors"]:
            self.errors.append(f"{label}: exit code {done.returncode}")
        return result

    def import_memory(self, sizes: tuple[int, ...]) -> None:
        """Peak memory of statekeeper importing ever larger directories (1,000 sessions a file,
        5 instances and 10 messages each) into SQLite: it must not grow with the directory."""
        from tests.legacy_fixtures import generate

        from statekeeper import StateManager

        for size in sizes:
            legacy = self.work / f"legacy-{size}"
            files = max(1, size // 1_000)
            generate(legacy, sessions=size, instances=5, messages=10, files=files)
            target = self.work / f"import-memory-{size}.db"
            StateManager(target).close()
            spec: dict[str, Any] = {
                "task": "import", "impl": "statekeeper", "engine": "sqlite",
                "synchronous": "normal", "n": 0, "target": str(target), "targets": [str(target)],
                "legacy_dir": str(legacy), "sessions": size, "read_budget_s": 0.0,
                "result": str(self.work / f"import-memory-{size}.result.json"),
                "search_templates": None,
            }  # fmt: skip
            result = self._spawn(f"import-memory-{size}", spec, f"import of {size:,} sessions")
            if result is not None and "import" in result:
                self.results["import_memory"].append(
                    {
                        "sessions": size,
                        "files": files,
                        "seconds": result["import"]["runs_s"][0],
                        "rss_kb": result["rss_kb"],
                        "db_bytes": sqlite_size(target)["bytes"],
                    }
                )
            shutil.rmtree(legacy)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{target}{suffix}").unlink(missing_ok=True)

    def _inspect(self, job: Job, targets: list[str], run: dict[str, Any], label: str) -> None:
        """Size on disk, and what the store holds against what the plan wrote."""
        target = targets[-1]
        if job.engine == "sqlite":
            run["size"] = sqlite_size(Path(target))
        else:
            run["size"] = pg_size(target)
        if job.impl == "bare":  # its own schema: its own check of what it holds
            plan = make_plan(self.config.iterations)
            self.errors.extend(f"{label}: {p}" for p in bare_problems(Path(target), plan))
            return
        if job.impl not in ("statekeeper", "statekeeper_async", "floor"):
            return
        if job.task == "ops":
            plan = make_plan(self.config.iterations)
            self.errors.extend(f"{label}: {p}" for p in ops_problems(job.engine, target, plan))
            return
        digest = import_digest(job.engine, target)
        s = self.config.import_sessions
        wanted = {"sessions": s, "instances": 5 * s, "chat_messages": 10 * s, "events": s}
        for table, rows in wanted.items():
            if digest[table] != rows:
                self.errors.append(f"{label}: {table} has {digest[table]} rows, not {rows}")
        key = (job.engine, job.durability, job.impl)
        self.import_samples[key] = digest["sample"]
        other = "floor" if job.impl == "statekeeper" else "statekeeper"
        theirs = self.import_samples.get((job.engine, job.durability, other))
        if theirs is not None and theirs != digest["sample"]:
            self.errors.append(f"{label}: imported rows differ from {other}'s: {theirs[0][:1]}")

    def scale(self, engine: str, sizes: tuple[int, ...]) -> None:
        if engine == "postgresql":
            assert self.pg is not None
            target = self.pg.create("scale")
        else:
            target = str(self.work / "scale.db")
        started = time.perf_counter()
        rows, errors = run_scale(
            engine,
            target,
            list(sizes),
            iterations=self.config.scale_iterations,
            budget_s=self.config.scale_budget_s,
            log=self.log,
        )
        self.log(f"{engine} scale: {time.perf_counter() - started:.0f} s")
        self.results["scale"].extend(rows)
        self.errors.extend(errors)
        if engine == "postgresql" and self.pg is not None:
            self.pg.drop(target)
        else:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{target}{suffix}").unlink(missing_ok=True)


def _pg_settings(delayed: bool) -> tuple[str, ...]:
    """PostgreSQL as it is, and through the delaying proxy when the run says so."""
    return ("on", *DELAYED) if delayed else ("on",)


def jobs(rounds: int, pg: bool, langgraph: bool, agents: bool, delayed: bool) -> list[Job]:
    """Every run, statekeeper next to its floor so both see the same machine state; each
    round of operations swaps which of the two goes first. On SQLite the bare store (its own
    minimal schema, benchlib.bare) follows them."""
    runs = []
    for r in range(rounds):
        pair = ("statekeeper", "floor") if r % 2 == 0 else ("floor", "statekeeper")
        for durability in ("normal", "full"):
            runs += [Job("ops", impl, "sqlite", durability, r) for impl in (*pair, "bare")]
        runs.append(Job("ops", "statekeeper_async", "sqlite", "normal", r))
        if langgraph:
            runs.append(Job("ops", "langgraph", "sqlite", "full", r))
        if agents:
            runs.append(Job("ops", "agents", "sqlite", "full", r))
        if pg:
            for setting in _pg_settings(delayed):
                runs += [Job("ops", impl, "postgresql", setting, r) for impl in pair]
                runs.append(Job("ops", "statekeeper_async", "postgresql", setting, r))
                if langgraph:
                    runs.append(Job("ops", "langgraph", "postgresql", setting, r))
                if agents:
                    runs.append(Job("ops", "agents", "postgresql", setting, r))
    for durability in ("normal", "full"):
        runs += [Job("import", impl, "sqlite", durability) for impl in ("statekeeper", "floor")]
    if pg:
        runs += [Job("import", impl, "postgresql", "on") for impl in ("statekeeper", "floor")]
    return runs


def adapter_jobs(rounds: int, pg: bool, frameworks: tuple[str, ...], delayed: bool) -> list[Job]:
    """statekeeper's adapters against the frameworks' own stores ("peer"), SQLite at NORMAL
    and at FULL for both sides; each round swaps who goes first. On PostgreSQL against
    PostgresSaver and the SDK's SQLAlchemySession, directly and with 1 ms added to every
    round trip (a database in another zone)."""
    runs = []
    for r in range(rounds):
        for framework in frameworks:
            ours = (
                ("statekeeper", "statekeeper_async") if framework == "agents" else ("statekeeper",)
            )
            impls = ("peer", *ours) if r % 2 else (*ours, "peer")
            for durability in ("normal", "full"):
                runs += [Job(framework, impl, "sqlite", durability, r) for impl in impls]
            if pg:
                for setting in _pg_settings(delayed):
                    runs += [Job(framework, impl, "postgresql", setting, r) for impl in impls]
    return runs


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small CI smoke run (< 2 min)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results", help="output dir")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("STATEKEEPER_TEST_PG_URL", DEFAULT_PG_URL),
        help="PostgreSQL server to create throwaway databases on",
    )
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument(
        "--no-peers", action="store_true", help="skip LangGraph and Agents (and the adapters)"
    )
    parser.add_argument(
        "--adapters-only",
        action="store_true",
        help="only statekeeper's framework adapters against the frameworks' own stores",
    )
    parser.add_argument(
        "--no-scale", action="store_true", help="skip the store-size and import-memory runs"
    )
    parser.add_argument("--iterations", type=int, help="calls per operation (>= 150)")
    parser.add_argument("--max-size", type=int, help="largest store size, both engines")
    parser.add_argument("--pg-max-size", type=int, help="largest store size on PostgreSQL")
    parser.add_argument(
        "--report-only",
        type=Path,
        metavar="RESULTS_JSON",
        help="measure nothing: redo the tables and plots of an earlier results.json into --out",
    )
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def configure(args: argparse.Namespace) -> Config:
    config = QUICK if args.quick else FULL
    sqlite_sizes, pg_sizes = config.sqlite_sizes, config.pg_sizes
    if args.max_size:
        sqlite_sizes = tuple(s for s in sqlite_sizes if s <= args.max_size)
        pg_sizes = tuple(s for s in pg_sizes if s <= args.max_size)
    if args.pg_max_size:
        pg_sizes = tuple(s for s in pg_sizes if s <= args.pg_max_size)
    return Config(
        args.iterations or config.iterations,
        config.import_sessions,
        config.import_files,
        config.import_runs,
        () if args.no_scale else sqlite_sizes,
        () if args.no_scale else pg_sizes,
        config.scale_iterations,
        config.scale_budget_s,
        config.rounds,
        config.read_budget_s,
        () if args.no_scale else config.import_memory_sizes,
        config.delayed,
    )


def write_report(console: Console, results: dict[str, Any], out: Path) -> None:
    """Tables on the terminal, results.md, and the plots (when matplotlib is installed)."""
    out.mkdir(parents=True, exist_ok=True)
    report.print_tables(console, results)
    (out / "results.md").write_text(report.markdown(results))
    if importlib.util.find_spec("matplotlib") is not None:
        if results["ops"]:
            report.plot_ops(out / "ops.png", results)
        if results["scale"]:
            report.plot_scale(out / "scale.png", results["scale"])
    else:
        console.print("[yellow]skipped[/] plots: matplotlib is not installed")


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.worker:
        from benchlib.runner import run_worker

        return run_worker(args.worker)
    from tests.legacy_fixtures import generate

    console = Console()
    if not console.is_terminal:
        console = Console(width=150)
    if args.report_only:
        write_report(console, json.loads(args.report_only.read_text()), args.out)
        return 0
    config = configure(args)
    started = time.perf_counter()
    pg: Postgres | None = None
    skipped = []
    if args.no_postgres:
        skipped.append("PostgreSQL: --no-postgres")
    else:
        try:
            pg = Postgres(args.pg_url)
        except Exception as exc:
            skipped.append(f"PostgreSQL: {args.pg_url} unreachable ({type(exc).__name__})")
    langgraph = (
        not args.no_peers
        and _peer_available("langgraph-checkpoint-sqlite", "langgraph.checkpoint.sqlite")
        and _peer_available("langgraph-checkpoint-postgres", "langgraph.checkpoint.postgres")
    )
    agents = not args.no_peers and _peer_available("openai-agents", "agents.memory")
    missing = "--no-peers" if args.no_peers else "not installed (pip install -e '.[bench]')"
    if not langgraph:
        skipped.append(f"LangGraph SqliteSaver and PostgresSaver: {missing}")
    if not agents:
        skipped.append(f"OpenAI Agents SQLiteSession: {missing}")
    frameworks = tuple(
        name for name, present in (("langgraph", langgraph), ("agents", agents)) if present
    )
    if args.no_peers and args.adapters_only:
        console.print("[red]error[/] --adapters-only measures against the peers: drop --no-peers")
        return 2
    for reason in skipped:
        console.print(f"[yellow]skipped[/] {escape(reason)}")
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(prefix="skbench-") as tmp:
            bench = Bench(config, Path(tmp), pg, console)
            bench.results["skipped"] = skipped
            bench.results["meta"] = {"machine": machine(pg), "config": config.__dict__}
            bench.results["meta"]["quick"] = args.quick
            bench.results["meta"]["adapters_only"] = args.adapters_only
            if not args.adapters_only:
                generate(
                    Path(tmp) / "legacy",
                    sessions=config.import_sessions,
                    instances=5,
                    messages=10,
                    files=config.import_files,
                )
                for job in jobs(config.rounds, pg is not None, langgraph, agents, config.delayed):
                    bench.run(job)
            for job in adapter_jobs(config.rounds, pg is not None, frameworks, config.delayed):
                bench.run_adapter(job)
            if config.sqlite_sizes and not args.adapters_only:
                bench.scale("sqlite", config.sqlite_sizes)
            if config.pg_sizes and pg is not None and not args.adapters_only:
                bench.scale("postgresql", config.pg_sizes)
            if config.import_memory_sizes and not args.adapters_only:
                bench.import_memory(config.import_memory_sizes)
    finally:
        if pg is not None:
            pg.close()
    results = bench.results
    results["meta"]["duration_s"] = round(time.perf_counter() - started, 1)
    results["ops"] = report.best_of_rounds(results["ops"])
    report.add_ratios(results["ops"], results["import"])
    results["adapters"] = report.best_of_rounds(results["adapters"])
    report.add_peer_ratios(results["adapters"])
    write_report(console, results, args.out)
    report.write_json(args.out / "results.json", results)
    for error in bench.errors:
        console.print(f"[red]error[/] {escape(error)}")
    console.print(f"{len(bench.errors)} errors; {results['meta']['duration_s']} s; see {args.out}")
    return 1 if bench.errors else 0


if __name__ == "__main__":
    sys.exit(main())
