"""statekeeper demo: a five-phase research workflow that survives `kill -9`.

Run `python scripts/demo.py [--db PATH]`. A worker process researches a company phase by
phase, checkpointing each phase together with the workflow context. The demo SIGKILLs the
worker in the middle of phase 4, starts a fresh worker that resumes from the checkpoints,
and checks that no completed phase ran twice and that the cost adds up to the cent.
The store is a new SQLite file in a temporary directory unless `--db` names one.
"""

from __future__ import annotations

import argparse
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markdown import Markdown
from rich.table import Table

from statekeeper import PhaseResult, SessionStatus, StateManager


@dataclass(frozen=True)
class Phase:
    """One step of the workflow and what its (simulated) LLM call costs."""

    id: str
    title: str
    cost_usd: Decimal
    tokens_in: int
    tokens_out: int
    seconds: float
    finding: str


SUBJECT = "Acme Robotics"
PHASES = (
    Phase(
        "company_profile", "Company profile", Decimal("0.0129"), 1_850, 420, 0.4,
        "{subject} builds warehouse picking robots; founded 2016, about 340 staff.",
    ),
    Phase(
        "market_analysis", "Market analysis", Decimal("0.0361"), 3_200, 910, 0.4,
        "Warehouse automation grows about 14% a year; picking is the least automated step.",
    ),
    Phase(
        "competitors", "Competitors", Decimal("0.0467"), 2_760, 780, 0.4,
        "Main rivals: Locus, GreyOrange and in-house systems at the largest retailers.",
    ),
    Phase(
        "financials", "Financials", Decimal("0.0642"), 4_100, 1_150, 1.5,
        "Revenue about $48M, growing 60% a year; not yet profitable, 30 months of runway.",
    ),
    Phase(
        "final_report", "Conclusion", Decimal("0.0576"), 5_400, 1_620, 0.4,
        "Strong position in a growing niche; the main risk is funding before break-even.",
    ),
)  # fmt: skip
KILL_DURING = "financials"
"""The demo kills the first worker while this phase is running, before its checkpoint."""

WORKER_TIMEOUT_S = 30.0


# The worker: runs the workflow, skipping whatever is already checkpointed -------------------


class Researcher:
    """Runs phases for one subject, carrying the workflow context from phase to phase."""

    def __init__(self, subject: str, context: dict[str, Any]) -> None:
        self.subject = subject
        self.findings: dict[str, str] = dict(context.get("findings", {}))
        self.ran: list[str] = []

    def run(self, phase: Phase) -> PhaseResult:
        """Simulate one LLM-backed phase; its context is saved atomically with the phase."""
        print(f"running {phase.id}", flush=True)
        self.ran.append(phase.id)
        time.sleep(phase.seconds)
        self.findings[phase.id] = phase.finding.format(subject=self.subject)
        output: dict[str, Any] = {"finding": self.findings[phase.id]}
        if phase.id == "final_report":
            output["markdown"] = render_report(self.subject, self.findings)
        return PhaseResult(
            output=output,
            cost_usd=phase.cost_usd,
            tokens_in=phase.tokens_in,
            tokens_out=phase.tokens_out,
            context={"findings": dict(self.findings)},
        )


def render_report(subject: str, findings: dict[str, str]) -> str:
    """The markdown report the last phase writes from the findings of all earlier ones."""
    sections = [f"## {p.title}\n\n{findings[p.id]}" for p in PHASES if p.id in findings]
    return f"# Research report: {subject}\n\n" + "\n\n".join(sections) + "\n"


def run_worker(db: Path, session_id: str) -> int:
    """Run every phase of the session in order; checkpointed phases return their stored output."""
    with StateManager(db) as sm:
        session = sm.get_session(session_id)
        if session is None:
            print(f"no session {session_id}", file=sys.stderr)
            return 2
        # The saved context holds the findings of every checkpointed phase.
        resumed = sm.resume_session(session_id)
        if resumed is not None:
            print(f"resuming after {resumed.last_completed_phase}", flush=True)
        researcher = Researcher(session.subject or "", resumed.data if resumed else {})
        for phase in PHASES:
            sm.run_phase(session_id, phase.id, partial(researcher.run, phase))
            if researcher.ran[-1:] == [phase.id]:
                print(f"checkpointed {phase.id} ${phase.cost_usd}", flush=True)
            else:
                print(f"skipped {phase.id} (checkpointed)", flush=True)
    return 0


# The parent: starts, kills and restarts workers, then checks and reports -----------------


class DemoFailed(Exception):
    """A promise of the demo was broken: the exit status is non-zero."""


def check(condition: bool, message: str) -> None:
    """Fail the demo (even under `python -O`, unlike assert) when `condition` is false."""
    if not condition:
        raise DemoFailed(message)


class Worker:
    """A worker subprocess whose stdout lines are echoed and remembered as they arrive."""

    def __init__(self, console: Console, db: Path, session_id: str, label: str) -> None:
        self.console = console
        self.label = label
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--db", str(db), "--worker", session_id],
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def follow(self, until: str | None = None) -> None:
        """Echo the worker's lines until one equals `until`, or until it exits."""
        deadline = time.monotonic() + WORKER_TIMEOUT_S
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise DemoFailed(f"{self.label}: no progress in {WORKER_TIMEOUT_S:.0f} s") from None
            if line is None:
                self.process.wait()
                return
            self.lines.append(line)
            self.console.print(f"  [dim]{self.label} |[/dim] {line}")
            if line == until:
                return

    def phases(self, verb: str) -> list[str]:
        """The phases for which the worker printed `verb` (running, checkpointed, skipped)."""
        return [line.split()[1] for line in self.lines if line.split()[0] == verb]

    def kill(self) -> None:
        """SIGKILL: no cleanup, no atexit, no flush; exactly what a crash or OOM kill does."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self._reader.join()


def money(amount: Decimal) -> str:
    """USD with all stored places, so exactness is visible."""
    return f"${amount}"


def run_demo(console: Console, db: Path) -> None:
    """Crash the workflow mid-run, resume it, and check every promise on the way."""
    console.rule("[bold]statekeeper demo: a research workflow that survives kill -9")
    console.print(f"Store: SQLite file [cyan]{db}[/cyan] (delete it when done)\n")
    with StateManager(db) as sm:
        session_id = sm.create_session(
            SUBJECT, task="Research a company in five phases", model="simulated-llm"
        )
        console.print(f"Session [cyan]{session_id}[/cyan] for {SUBJECT}\n")

        console.print("[bold]Run 1[/bold]: a worker process starts the workflow")
        first = Worker(console, db, session_id, "run 1")
        try:
            first.follow(until=f"running {KILL_DURING}")
        finally:
            first.kill()
        console.print(
            f"  [bold red]SIGKILL[/bold red] worker pid {first.process.pid} "
            f"while {KILL_DURING} was running\n"
        )

        kept = [p.phase_id for p in sm.get_completed_phases(session_id)]
        lost = [p for p in first.phases("running") if p not in kept]
        context = sm.load_context(session_id)
        if context is None:
            raise DemoFailed("the checkpoints kept no context")
        check(
            set(context.data["findings"]) == set(kept),
            "the context does not match the checkpointed phases",
        )
        console.print(f"[bold]Kept[/bold]: {len(kept)} checkpoints ({', '.join(kept)}),")
        console.print(
            f"  their context ({len(context.data['findings'])} findings) and cost "
            f"{money(context.accumulated_cost)}"
        )
        console.print(
            f"[bold]Lost[/bold]: the unfinished {', '.join(lost) or 'nothing'}; "
            "its spend was never recorded and it runs again\n"
        )

        console.print("[bold]Run 2[/bold]: a new worker resumes the same session")
        second = Worker(console, db, session_id, "run 2")
        try:
            second.follow()
        finally:
            second.kill()
        check(second.process.returncode == 0, f"run 2 exited with {second.process.returncode}")
        rerun = set(second.phases("running")) & set(kept)
        check(not rerun, f"checkpointed phases ran again: {sorted(rerun)}")
        check(second.phases("skipped") == kept, "run 2 did not skip exactly the checkpoints")
        console.print(
            f"  [green]OK[/green] none of the {len(kept)} checkpointed phases ran again\n"
        )

        finish(console, sm, session_id, runs={"run 1": first, "run 2": second})


def finish(console: Console, sm: StateManager, session_id: str, runs: dict[str, Worker]) -> None:
    """Complete the session, show it, and check the totals and the store's integrity."""
    phases = sm.get_completed_phases(session_id)
    check(
        [p.phase_id for p in phases] == [p.id for p in PHASES],
        "not every phase is checkpointed, in order",
    )
    report = phases[-1].output["markdown"]
    sm.save_markdown_output(session_id, report)
    sm.update_session_status(session_id, SessionStatus.COMPLETED)
    session = sm.get_session(session_id)
    if session is None or session.status != SessionStatus.COMPLETED:
        raise DemoFailed("the session was not completed")

    executed_by = {p: label for label, w in runs.items() for p in w.phases("checkpointed")}
    table = Table(title=f"Phases of {session.subject}")
    for column in ("phase", "ran in", "duration", "tokens in/out", "cost"):
        table.add_column(column, justify="left" if column in ("phase", "ran in") else "right")
    for p in phases:
        table.add_row(
            p.phase_id,
            executed_by.get(p.phase_id, "?"),
            f"{p.duration_ms} ms",
            f"{p.tokens_in:,} / {p.tokens_out:,}",
            money(p.cost_usd),
        )
    console.print(table)

    history = Table(title="get_session_history()")
    for column in ("session", "subject", "kind", "status", "duration", "cost"):
        history.add_column(column)
    for s in sm.get_session_history(limit=10):
        history.add_row(
            s.id[:8], s.subject or "", s.kind, s.status.value,
            f"{s.duration_ms} ms", money(s.cost_usd),
        )  # fmt: skip
    console.print(history)

    console.rule("output_markdown")
    console.print(Markdown(session.output_markdown or ""))
    console.rule()

    expected = sum((p.cost_usd for p in PHASES), Decimal(0))
    check(session.cost_usd == sum((p.cost_usd for p in phases), Decimal(0)), "cost != phases")
    check(session.cost_usd == expected, f"cost {session.cost_usd} != {expected}")
    check(session.tokens_in == sum(p.tokens_in for p in PHASES), "tokens_in do not add up")
    check(session.tokens_out == sum(p.tokens_out for p in PHASES), "tokens_out do not add up")
    as_floats = sum(float(p.cost_usd) for p in PHASES)
    console.print(
        f"Total cost {money(session.cost_usd)} = the exact sum of the five phases "
        f"[dim](as floats it would be {as_floats!r})[/dim]"
    )
    console.print(f"Tokens {session.tokens_in:,} in / {session.tokens_out:,} out")
    integrity = sm.integrity_check()
    check(integrity.ok, f"integrity check failed: {integrity.problems}")
    console.print(f"integrity_check(): ok={integrity.ok}, problems={integrity.problems}")


def main() -> int:
    """Parse arguments; run as the demo (default) or as its worker process (`--worker`)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--db", type=Path, help="SQLite file to use (default: a new temp dir)")
    parser.add_argument("--worker", metavar="SESSION_ID", help="internal: run as the worker")
    args = parser.parse_args()
    if args.worker:
        return run_worker(args.db, args.worker)

    console = Console()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="statekeeper-demo-") as scratch:
        db: Path = args.db or Path(scratch) / "demo.db"
        try:
            run_demo(console, db)
        except DemoFailed as exc:
            console.print(f"[bold red]DEMO FAILED[/bold red]: {exc}")
            return 1
    console.print(
        f"\n[bold green]All checks passed[/bold green] in {time.monotonic() - started:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
