"""The benchmark's smoke run: `scripts/bench.py --quick` must finish with every result right.

It checks what each implementation stored and returned, never how fast: timings on this
shared machine are not a test's business.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tests.conftest import PG_ADMIN_URL

REPO = Path(__file__).resolve().parents[1]


def test_quick_benchmark_runs_clean(tmp_path: Path, pg_admin: sa.Engine) -> None:
    pg_url = make_url(PG_ADMIN_URL).set(drivername="postgresql")
    run = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "bench.py"),
            "--quick",
            "--no-peers",
            "--out",
            str(tmp_path),
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
    results = json.loads((tmp_path / "results.json").read_text())
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
