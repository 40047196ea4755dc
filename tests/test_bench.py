"""The benchmark's smoke run: `scripts/bench.py --quick` must finish with every result right.

It checks what each implementation stored and returned, never how fast: timings on this
shared machine are not a test's business.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tests.conftest import PG_ADMIN_URL

REPO = Path(__file__).resolve().parents[1]


def _quick_bench(out: Path, *options: str) -> dict[str, Any]:
    """Run `bench.py --quick` with `options`; its results.json, once it exited 0."""
    pg_url = make_url(PG_ADMIN_URL).set(drivername="postgresql")
    run = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "bench.py"),
            "--quick",
            *options,
            "--out",
            str(out),
            "--pg-url",
            pg_url.render_as_string(hide_password=False),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    results: dict[str, Any] = json.loads((out / "results.json").read_text())
    return results


def test_quick_benchmark_runs_clean(tmp_path: Path, pg_admin: sa.Engine) -> None:
    results = _quick_bench(tmp_path, "--no-peers")
    assert results["errors"] == []
    engines = {r["engine"] for r in results["ops"]}
    assert engines == {"sqlite", "postgresql"}
    assert {r["op"] for r in results["ops"]} >= {"get_session", "save_phase_completion"}
    for engine in engines:  # the agent store's writes, with the floor doing the same
        measured = {(r["op"], r["impl"]) for r in results["ops"] if r["engine"] == engine}
        for op in ("save_agent_state", "create_snapshot"):
            assert {(op, "statekeeper"), (op, "floor")} <= measured
    assert {r["engine"] for r in results["ops"] if r["impl"] == "statekeeper_async"} == engines
    assert [r["sessions"] for r in results["import_memory"]] == [500, 2_000]
    assert (tmp_path / "results.md").read_text().count("|") > 100
    # The bare store (its own minimal schema) makes its operations at both levels, checked
    # like the others, and statekeeper's median call is set against its own.
    bare_ops = {
        "create_session",
        "save_phase_completion",
        "load_context",
        "get_session",
        "get_session_history",
    }
    for durability in ("normal", "full"):
        bare = {
            r["op"]
            for r in results["ops"]
            if (r["impl"], r["engine"], r["durability"]) == ("bare", "sqlite", durability)
        }
        assert bare == bare_ops, durability
    settings = {(r["durability"], r["setting"]) for r in results["runs"] if r["impl"] == "bare"}
    assert settings == {("normal", "normal"), ("full", "full")}
    compared = {
        r["op"]
        for r in results["ops"]
        if r["impl"] == "statekeeper" and r["engine"] == "sqlite" and r["ratio_bare_p50"]
    }
    assert compared == bare_ops
    assert "statekeeper p50 ÷ bare" in (tmp_path / "results.md").read_text()


def test_quick_adapter_benchmark_runs_clean(tmp_path: Path, pg_admin: sa.Engine) -> None:
    """The adapters make the frameworks' calls, checked like the peers', at the peers' level."""
    pytest.importorskip("langgraph.checkpoint.sqlite")
    pytest.importorskip("agents.memory")
    results = _quick_bench(tmp_path, "--adapters-only")
    assert results["errors"] == []
    assert results["ops"] == []
    measured = {(r["op"], r["impl"], r["engine"], r["durability"]) for r in results["adapters"]}
    calls = {
        "langgraph": ("put", "put_writes", "get_tuple", "list"),
        "agents": ("add_items", "get_items", "pop_item"),
    }
    for framework, ops in calls.items():
        ours = ["statekeeper", "statekeeper_async"] if framework == "agents" else ["statekeeper"]
        for op in ops:
            for durability in ("normal", "full"):
                assert {(op, impl, "sqlite", durability) for impl in [*ours, "peer"]} <= measured
            assert {(op, impl, "postgresql", "on") for impl in [*ours, "peer"]} <= measured
    for run in results["adapter_runs"]:  # both sides at the same level, read back
        if run["engine"] == "sqlite":
            assert run["setting"] == run["durability"], run
        else:
            assert run["setting"] == "synchronous_commit=on", run
    assert all(r["peer_ratio_p50"] for r in results["adapters"])
    assert "PostgresSaver" in (tmp_path / "results.md").read_text()
    assert "StatekeeperSaver" in (tmp_path / "results.md").read_text()
