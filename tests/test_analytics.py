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
BOOL = pd.BooleanDtype()

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
    "agent_states": {
        "namespace": STRING,
        "agent_id": STRING,
        "name": STRING,
        "status": STRING,
        "version": INT,
        "metadata": "object",
        "state_data": "object",
        "compressed": BOOL,
        "created_at": UTC_TIME,
        "updated_at": UTC_TIME,
        "deleted_at": UTC_TIME,
    },
    "snapshots": {
        "id": STRING,
        "session_id": STRING,
        "namespace": STRING,
        "agent_id": STRING,
        "description": STRING,
        "created_at": UTC_TIME,
        "expires_at": UTC_TIME,
        "size_bytes": INT,
        "compressed": BOOL,
    },
}
EXPECTED_DTYPES["decoded_snapshots"] = {**EXPECTED_DTYPES["snapshots"], "payload": "object"}


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
        ("agent_states", analytics.agent_states),
        ("snapshots", analytics.snapshots),
        ("decoded_snapshots", lambda sm: analytics.snapshots(sm, decode=True)),
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


BIG_STATE = {"log": [f"step {n} done" for n in range(200)]}
"""Large and repetitive: stored compressed above a small threshold."""


def _populate_agents(store_url: str) -> tuple[str, str, str]:
    """Agents in two namespaces (one compressed, one deleted) and three snapshots; returns
    the ids of a session snapshot, a compressed agent snapshot and a plain one."""
    with StateManager(store_url, compress_threshold=256) as sm:
        sm.save_agent_state({"agent_id": "big", "status": "running", "state_data": BIG_STATE})
        sm.save_agent_state({"agent_id": "small", "state_data": [1, "two"], "metadata": {"k": 1}})
        sm.save_agent_state({"agent_id": "gone", "state_data": None})
        sm.delete_agent("gone")
        sid = sm.create_session("run")
        sm.save_phase_completion(sid, "plan", {}, 100, "0.01", context={"step": 1})
        session_snapshot = sm.create_snapshot(session_id=sid, description="after plan")
        big_snapshot = sm.create_snapshot(agent_id="big")
    with StateManager(store_url, namespace="worker") as worker:
        worker.save_agent_state({"agent_id": "big", "state_data": {"mine": True}})
        small_snapshot = worker.create_snapshot(agent_id="big")
    return session_snapshot, big_snapshot, small_snapshot


def test_agent_states_are_decoded_with_the_same_dtypes_on_both_engines(store_url: str) -> None:
    _populate_agents(store_url)
    with StateManager(store_url) as sm:  # no threshold: a reader decodes whatever was written
        with sm.engine.connect() as connection:
            state, blob = connection.exec_driver_sql(
                "SELECT state_data, state_data_zstd FROM agents "
                "WHERE namespace = 'default' AND agent_id = 'big'"
            ).one()
        frame = analytics.agent_states(sm)
        assert frame.dtypes.to_dict() == EXPECTED_DTYPES["agent_states"]
    assert state is None and isinstance(blob, bytes)  # what plain SQL sees of it
    keys = list(zip(frame["namespace"], frame["agent_id"], strict=True))
    assert keys == [("default", "big"), ("default", "small"), ("worker", "big")]
    rows = frame.set_index(["namespace", "agent_id"])
    assert rows.loc[("default", "big"), "state_data"] == BIG_STATE
    assert rows.loc[("default", "big"), "compressed"]
    assert rows.loc[("default", "big"), "status"] == "running"
    assert rows.loc[("default", "small"), "state_data"] == [1, "two"]
    assert not rows.loc[("default", "small"), "compressed"]
    assert rows.loc[("default", "small"), "metadata"] == {"k": 1}
    assert rows.loc[("worker", "big"), "state_data"] == {"mine": True}
    assert frame["version"].tolist() == [1, 1, 1]
    assert frame["deleted_at"].isna().all()


def test_agent_states_filter_by_namespace_and_show_deleted_on_request(store_url: str) -> None:
    _populate_agents(store_url)
    worker = analytics.agent_states(store_url, namespace="worker")
    assert worker["agent_id"].tolist() == ["big"]
    everything = analytics.agent_states(store_url, namespace="default", include_deleted=True)
    assert everything["agent_id"].tolist() == ["big", "gone", "small"]
    gone = everything.set_index("agent_id").loc["gone"]
    assert gone["deleted_at"] >= gone["created_at"] and gone["version"] == 2
    assert gone["state_data"] is None
    assert everything.dtypes.to_dict() == EXPECTED_DTYPES["agent_states"]


def test_snapshots_list_metadata_and_decode_payloads(store_url: str) -> None:
    session_snapshot, big_snapshot, small_snapshot = _populate_agents(store_url)
    frame = analytics.snapshots(store_url)
    assert frame.dtypes.to_dict() == EXPECTED_DTYPES["snapshots"]
    assert frame["id"].tolist() == [small_snapshot, big_snapshot, session_snapshot]  # newest first
    assert frame["compressed"].tolist() == [False, True, False]
    assert frame["namespace"].tolist()[:2] == ["worker", "default"]
    assert pd.isna(frame["namespace"].iloc[2]) and pd.isna(frame["agent_id"].iloc[2])
    assert frame["description"].iloc[2] == "after plan"
    assert (frame["size_bytes"] > 0).all() and frame["expires_at"].isna().all()

    decoded = analytics.snapshots(store_url, decode=True)
    assert decoded.dtypes.to_dict() == EXPECTED_DTYPES["decoded_snapshots"]
    decoded = decoded.set_index("id")
    assert decoded.loc[big_snapshot, "payload"] == {
        "status": "running",
        "state_data": BIG_STATE,
        "version": 1,
    }
    assert decoded.loc[small_snapshot, "payload"]["state_data"] == {"mine": True}
    session = decoded.loc[session_snapshot, "payload"]
    assert session["context"] == {"step": 1}
    assert [phase["phase_id"] for phase in session["phases"]] == ["plan"]
    assert session["cost_usd"] == "0.01000000"
