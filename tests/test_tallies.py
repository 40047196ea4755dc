"""Session counts and completed totals kept by triggers (revision 0008): always equal to a
full recount, whoever writes the sessions, while the reads stay as cheap as the store grows."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from statekeeper import StateManager, StorageBusy
from statekeeper.models import SessionRow
from statekeeper.schemas import SessionStatistics
from statekeeper.services.stats import FOLD_AT

RECOUNT = sa.text(
    "SELECT count(*), "
    "coalesce(sum(CASE WHEN status = 'completed' THEN 1 ELSE 0 END), 0), "
    "coalesce(sum(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) FROM sessions"
)
COMPLETED = sa.text("SELECT cost_usd, duration_ms FROM sessions WHERE status = 'completed'")


def _recount(sm: StateManager) -> SessionStatistics:
    """The statistics computed the slow, obvious way, in exact arithmetic."""
    with sm.engine.connect() as connection:
        total, completed, failed = (int(v) for v in connection.execute(RECOUNT).one())
        rows = connection.execute(COMPLETED).all()
    costs = [Decimal(str(cost)) for cost, _ in rows]
    durations = [int(ms) for _, ms in rows if ms is not None]
    average = sum(costs, Decimal(0)) / len(costs) if costs else Decimal(0)
    return SessionStatistics(
        total_sessions=total,
        completed_sessions=completed,
        failed_sessions=failed,
        avg_cost_usd=average.quantize(Decimal("1e-8")),
        avg_duration_ms=round(sum(durations) / len(durations)) if durations else 0,
    )


def _tally_rows(sm: StateManager) -> int:
    with sm.engine.connect() as connection:
        return int(connection.exec_driver_sql("SELECT count(*) FROM tally_sessions").scalar_one())


def _agrees(sm: StateManager) -> None:
    expected = _recount(sm)
    assert sm.get_statistics() == expected
    assert sm.get_total_sessions() == expected.total_sessions


def test_every_way_of_writing_sessions_keeps_the_tallies_exact(
    sm: StateManager, tmp_path: Path, other_engine_url: str
) -> None:
    rng = random.Random(8)
    _agrees(sm)  # an empty store
    ids = [sm.create_session(task=f"t{i}") for i in range(40)]
    for i, sid in enumerate(ids[:30]):
        sm.save_phase_completion(sid, "p", {}, rng.randrange(1, 9_000), f"{rng.random():.8f}")
        sm.update_session_status(sid, ("completed", "failed", "paused")[i % 3])
    _agrees(sm)
    sm.delete_session(ids[0])
    sm.delete_session(ids[35])
    _agrees(sm)
    with sm.engine.begin() as connection:  # plain SQL is counted too
        connection.execute(sa.text("DELETE FROM sessions WHERE id = :i"), {"i": ids[1]})
        connection.execute(
            sa.text("UPDATE sessions SET status = 'completed', cost_usd = 2.5 WHERE id = :i"),
            {"i": ids[36]},
        )
    _agrees(sm)
    sm.export_session(ids[3], tmp_path / "one.json")
    sm.delete_session(ids[3])
    sm.import_session(tmp_path / "one.json")
    _agrees(sm)
    with sm.engine.begin() as connection:  # retention: finished long ago
        connection.execute(
            sa.update(SessionRow).values(completed_at=datetime(2001, 1, 1, tzinfo=UTC))
        )
    assert sm.cleanup_old_sessions(1) > 0
    _agrees(sm)
    sm.copy_to(other_engine_url)
    with StateManager(other_engine_url) as copy:
        _agrees(copy)
        assert copy.get_statistics() == sm.get_statistics()


def test_a_rolled_back_change_leaves_the_tallies_alone(sm: StateManager) -> None:
    sid = sm.create_session()
    before = sm.get_statistics()
    with pytest.raises(RuntimeError), sm.transaction():  # noqa: PT012
        sm.create_session()
        sm.update_session_status(sid, "completed")
        raise RuntimeError("abandon")
    assert sm.get_statistics() == before
    _agrees(sm)


def test_reads_fold_the_tally_and_keep_every_sum(sm: StateManager) -> None:
    for _ in range(FOLD_AT + 10):
        sm.create_session()
    assert _tally_rows(sm) == FOLD_AT + 10
    expected = _recount(sm)
    assert sm.get_total_sessions() == expected.total_sessions  # sums, then folds
    assert _tally_rows(sm) == 1
    sid = sm.create_session()
    sm.update_session_status(sid, "completed")
    _agrees(sm)


def test_concurrent_writers_and_folds_stay_exact(store_url: str) -> None:
    """Threads with managers of their own create and finish sessions while others read (and
    so fold) the tallies; at the end the tallies equal a recount."""
    errors: list[BaseException] = []

    def write(seed: int) -> None:
        rng = random.Random(seed)
        try:
            with StateManager(store_url) as sm:
                for _ in range(60):
                    sid = sm.create_session()
                    if rng.random() < 0.5:
                        sm.save_phase_completion(sid, "p", {}, 5, "0.01000001")
                        sm.update_session_status(sid, rng.choice(["completed", "failed"]))
                    if rng.random() < 0.2:
                        sm.delete_session(sid)
        except BaseException as exc:  # reported after join
            errors.append(exc)

    def read() -> None:
        try:
            with StateManager(store_url) as sm:
                for _ in range(40):
                    sm.get_statistics()
                    sm.get_total_sessions()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    threads += [threading.Thread(target=read) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with StateManager(store_url) as sm:
        _agrees(sm)


@pytest.mark.parametrize("engine_name", ["postgresql"], indirect=True)
def test_postgresql_session_writers_never_wait_on_the_tally(store_url: str) -> None:
    """A transaction that created a session and is still open holds no lock another writer
    or a fold needs: lock_timeout turns any wait into StorageBusy."""
    options: dict[str, Any] = {"connect_args": {"options": "-c lock_timeout=200"}}
    with StateManager(store_url) as holder, StateManager(store_url, **options) as other:
        for _ in range(FOLD_AT + 1):
            other.create_session()
        with holder.transaction():
            held = holder.create_session()
            holder.update_session_status(held, "completed")
            try:
                mine = other.create_session()
                other.update_session_status(mine, "failed")
                assert other.get_total_sessions() == FOLD_AT + 2  # folds; the open one unseen
            except StorageBusy as exc:  # pragma: no cover - the failure this test looks for
                pytest.fail(f"a writer waited on the tally: {exc}")
        _agrees(other)
        assert other.get_total_sessions() == FOLD_AT + 3


def test_the_upgrade_counts_what_was_there(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with StateManager(path) as sm:
        for status in ("completed", "failed", "running"):
            sid = sm.create_session()
            sm.save_phase_completion(sid, "p", {}, 7, "1.25")
            if status != "running":
                sm.update_session_status(sid, status)
        sm.downgrade_schema("0007")
        sm.upgrade_schema()
        _agrees(sm)
        assert _tally_rows(sm) == 1


def test_integrity_check_finds_a_tally_that_drifted(sm: StateManager) -> None:
    sid = sm.create_session()
    sm.update_session_status(sid, "completed")
    assert sm.integrity_check().ok
    with sm.engine.begin() as connection:
        connection.exec_driver_sql("UPDATE tally_sessions SET completed = completed + 1")
    report = sm.integrity_check()
    assert not report.ok
    assert "session tallies differ from the sessions: statistics are off" in report.problems
