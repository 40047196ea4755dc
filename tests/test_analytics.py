"""statekeeper.analytics: the views' roll-ups as DataFrames, the same dtypes on both engines."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from statekeeper import StateManager, analytics

STRING = pd.StringDtype()
INT = pd.Int64Dtype()
FLOAT = "float64"
UTC_TIME = "datetime64[us, UTC]"

EXPECTED_DTYPES: dict[str, dict[str, Any]] = {
    "session_stats": {
        "session_id": STRING,
        "subject": STRING,
        "kind": STRING,
        "status": STRING,
        "model": STRING,
        "workspace_id": STRING,
        "created_at": UTC_TIME,
        "completed_at": UTC_TIME,
        "duration_ms": INT,
        "cost_usd": FLOAT,
        "tokens_in": INT,
        "tokens_out": INT,
        "error_message": STRING,
        "metadata": "object",
        "phases": INT,
        "phase_duration_ms": INT,
        "last_phase": STRING,
        "instances": INT,
        "chat_messages": INT,
    },
    "phase_stats": {
        "phase_id": STRING,
        "completions": INT,
        "sessions": INT,
        "avg_duration_ms": FLOAT,
        "min_duration_ms": INT,
        "max_duration_ms": INT,
        "cost_usd": FLOAT,
        "avg_cost_usd": FLOAT,
        "tokens_in": INT,
        "tokens_out": INT,
        "last_completed_at": UTC_TIME,
    },
    "daily_costs": {
        "day": "datetime64[us]",
        "sessions": INT,
        "completed": INT,
        "failed": INT,
        "cost_usd": FLOAT,
        "tokens_in": INT,
        "tokens_out": INT,
    },
    "phase_durations": {
        "phase_id": STRING,
        "completions": INT,
        "p50_ms": FLOAT,
        "p90_ms": FLOAT,
        "p99_ms": FLOAT,
    },
}


def _populate(sm: StateManager) -> list[str]:
    """Three sessions whose costs would misround as floats: 0.01 + 0.02 + 0.03 per run."""
    ids = []
    for n in range(3):
        sid = sm.create_session(f"run {n}", model="opus", metadata={"team": "a", "n": n})
        for phase, cost, duration in (("plan", "0.01", 100), ("build", "0.02", 300)):
            sm.save_phase_completion(sid, phase, {}, duration * (n + 1), cost, tokens_in=10)
        sm.save_phase_completion(sid, "check", {}, 50, "0.03")
        ids.append(sid)
    sm.add_instance(ids[0], 1, worktree_path="/w", branch="b", agent_name="a", tmux_session_id="t")
    sm.add_chat_message(ids[0], "user", "hello")
    sm.update_session_status(ids[0], "completed")
    sm.update_session_status(ids[1], "failed", "boom")
    return ids


def test_every_frame_has_the_same_dtypes_on_both_engines(sync_sm: StateManager) -> None:
    _populate(sync_sm)
    frames = {
        "session_stats": analytics.session_stats(sync_sm),
        "phase_stats": analytics.phase_stats(sync_sm),
        "daily_costs": analytics.daily_costs(sync_sm),
        "phase_durations": analytics.phase_durations(sync_sm),
    }
    for name, frame in frames.items():
        assert frame.dtypes.to_dict() == EXPECTED_DTYPES[name], name
        assert len(frame) > 0, name


def test_roll_ups_are_exact_to_the_cent(sync_sm: StateManager) -> None:
    first, second, third = _populate(sync_sm)
    sessions = analytics.session_stats(sync_sm).set_index("session_id")
    assert list(sessions.index) == [third, second, first]  # newest first
    row = sessions.loc[first]
    assert row["cost_usd"] == 0.06 and row["phases"] == 3 and row["last_phase"] == "check"
    assert (row["instances"], row["chat_messages"], row["status"]) == (1, 1, "completed")
    assert row["metadata"] == {"team": "a", "n": 0}
    assert row["completed_at"] > row["created_at"] > pd.Timestamp(datetime(2026, 1, 1, tzinfo=UTC))
    assert sessions.loc[second, "error_message"] == "boom"
    assert pd.isna(sessions.loc[third, "completed_at"])

    (day,) = analytics.daily_costs(sync_sm).to_dict("records")
    assert day["cost_usd"] == 0.18 and day["sessions"] == 3
    assert (day["completed"], day["failed"], day["tokens_in"]) == (1, 1, 60)
    assert analytics.daily_costs(sync_sm, days=1)["sessions"].tolist() == [3]

    phases = analytics.phase_stats(sync_sm).set_index("phase_id")
    assert phases.loc["build", "cost_usd"] == 0.06
    assert phases.loc["build", "avg_duration_ms"] == 600.0
    assert (phases.loc["plan", "min_duration_ms"], phases.loc["plan", "max_duration_ms"]) == (
        100,
        300,
    )
    durations = analytics.phase_durations(sync_sm).set_index("phase_id")
    assert durations.loc["plan", "p50_ms"] == 200.0 and durations.loc["check", "p99_ms"] == 50.0


def test_a_url_or_an_engine_works_as_well(store_url: str, tmp_path: Path) -> None:
    with StateManager(store_url) as sm:
        _populate(sm)
    by_url = analytics.session_stats(store_url)
    engine = sa.create_engine(store_url if "://" in store_url else f"sqlite:///{store_url}")
    try:
        by_engine = analytics.session_stats(engine)
    finally:
        engine.dispose()
    assert by_url["session_id"].tolist() == by_engine["session_id"].tolist()
    assert len(by_url) == 3


def test_an_empty_store_gives_empty_frames_with_the_same_dtypes(sync_sm: StateManager) -> None:
    for name, read in (
        ("session_stats", analytics.session_stats),
        ("phase_stats", analytics.phase_stats),
        ("daily_costs", analytics.daily_costs),
    ):
        frame = read(sync_sm)
        assert frame.empty
        assert frame.dtypes.to_dict() == EXPECTED_DTYPES[name], name


@pytest.mark.parametrize("name", ["session_stats", "phase_stats", "daily_costs"])
def test_the_views_are_plain_sql(sync_sm: StateManager, name: str) -> None:
    _populate(sync_sm)
    with sync_sm.engine.connect() as connection:
        assert (connection.exec_driver_sql(f"SELECT count(*) FROM {name}").scalar() or 0) > 0


def test_metadata_spreads_over_columns(sync_sm: StateManager) -> None:
    _populate(sync_sm)
    frame = analytics.session_stats(sync_sm, metadata_columns=True)
    assert frame["metadata.team"].tolist() == ["a", "a", "a"]
    assert frame["metadata.n"].tolist() == [2, 1, 0]
    assert frame.groupby("metadata.team")["cost_usd"].sum().round(8).to_dict() == {"a": 0.18}
