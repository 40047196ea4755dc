"""scripts/writers.py (many writers on one SQLite store) and its grouped-commit prototype.

The script's smallest form must finish with every check passing, its check must notice a
lost write, and a grouped commit must roll a failing caller back alone. Nothing here looks
at a timing.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import writers
from benchlib.group_commit import GroupExecutor, Unit, UnitStore, open_unit_store
from benchlib.many_writers import KINDS, Cell, slices
from benchlib.workload import ChatArgs, PhaseArgs

REPO = Path(__file__).resolve().parents[1]


def test_quick_run_checks_pass(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "writers.py"), "--quick", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert {Cell.parse(r["cell"]).kind for r in results["runs"]} == set(KINDS)
    assert all(r["problems"] == [] for r in results["runs"])
    assert "Checks: 0 problem(s)." in (tmp_path / "results.md").read_text()


def test_check_notices_a_lost_write(tmp_path: Path) -> None:
    cell = Cell("statekeeper/threads", "normal", 2, ("all",))
    stores = writers.Stores(tmp_path, 2)
    path = stores.fresh(cell)
    run = writers.run_cell(cell, path, slices(cell.modes, 1, 0.05, 0.01))
    assert writers.check(cell, path, run) == []
    with sqlite3.connect(path) as connection:  # a write acknowledged, then lost
        connection.execute(
            "DELETE FROM chat_messages WHERE seq = (SELECT max(seq) FROM chat_messages)"
        )
    connection.close()
    assert any("chats" in problem for problem in writers.check(cell, path, run))


def test_a_failing_unit_in_a_group_rolls_back_alone(tmp_path: Path) -> None:
    stores = writers.Stores(tmp_path, 1)
    path = stores.fresh(Cell("floor/threads", "full", 1, ("grouped",)))
    session = writers.sessions_of(path)[0][0]
    executor = GroupExecutor(open_unit_store(str(path), "full"))
    release = threading.Event()
    outcomes: dict[str, str] = {}

    def blocking(store: UnitStore) -> None:  # the leader holds its group open
        store.add_chat_message(ChatArgs(session, "leader"))
        release.wait(10)

    def call(name: str, unit: Unit) -> None:
        try:
            executor.run(unit)
        except writers.Doomed:
            outcomes[name] = "failed"
        else:
            outcomes[name] = "committed"

    phase = PhaseArgs(session, "p", 0, {"a": 1}, {"b": 2}, writers.COST, 1, 0, 0)
    units: dict[str, Unit] = {
        "leader": blocking,
        "chat": lambda store: store.add_chat_message(ChatArgs(session, "kept")),
        "doomed": lambda store: writers._doomed(store, ChatArgs(session, writers.DOOMED)),
        "phase": lambda store: store.save_phase_completion(phase),
    }
    threads = {
        name: threading.Thread(target=call, args=(name, unit)) for name, unit in units.items()
    }
    threads["leader"].start()
    deadline = time.monotonic() + 10
    while executor.waiting < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    for name in ("chat", "doomed", "phase"):
        threads[name].start()
    while executor.waiting < 4 and time.monotonic() < deadline:  # all three queued behind it
        time.sleep(0.01)
    release.set()
    for thread in threads.values():
        thread.join(10)
    executor.close()
    assert outcomes == {
        "leader": "committed",
        "chat": "committed",
        "doomed": "failed",
        "phase": "committed",
    }
    assert (executor.stats.commits, executor.stats.units) == (
        2,
        3,
    )  # [leader], [chat, doomed, phase]
    with sqlite3.connect(path) as connection:
        contents = [
            row[0] for row in connection.execute("SELECT content FROM chat_messages ORDER BY seq")
        ]
        phases = connection.execute("SELECT count(*) FROM phase_completions").fetchone()[0]
    connection.close()
    assert contents == ["leader", "kept"]
    assert phases == 1


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_slices_give_every_mode_equal_time_in_a_palindrome(turns: int) -> None:
    order = slices(("a", "b", "c"), turns, 0.1, 0.01)
    modes = [s.mode for s in order]
    assert [modes.count(m) for m in "abc"] == [turns] * 3
    assert modes[:6] == ["a", "b", "c", "c", "b", "a"][: len(modes)]
    assert all(s.end_ns - s.start_ns == 90_000_000 for s in order)
