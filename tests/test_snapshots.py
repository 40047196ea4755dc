"""Snapshots and recovery points: create, list, restore, rotation, expiry and retention."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from statekeeper import (
    AgentNotFound,
    AgentState,
    InvalidInput,
    SessionCompleted,
    SessionNotFound,
    SnapshotNotFound,
    StateManager,
)
from statekeeper.models import EventRow, SnapshotRow


def _expire(sm: StateManager, snapshot_id: str) -> None:
    """Move a snapshot's expiry into the past, as time passing would."""
    past = datetime.now(UTC) - timedelta(seconds=1)
    with sm.engine.begin() as connection:
        connection.execute(
            sa.update(SnapshotRow).where(SnapshotRow.id == snapshot_id).values(expires_at=past)
        )


def _count(sm: StateManager, model: Any) -> int:
    with sm.engine.connect() as connection:
        return int(connection.scalar(sa.select(sa.func.count()).select_from(model)) or 0)


def test_a_restored_session_snapshot_puts_back_context_phases_and_cost(sm: StateManager) -> None:
    sid = sm.create_session("acme")
    sm.save_phase_completion(sid, "research", {"found": 3}, 100, "0.10", context={"step": 1})
    sm.save_phase_completion(
        sid, "draft", ["a", "b"], 200, "0.05", context={"step": 2}, tokens_in=7, tokens_out=9
    )
    snapshot = sm.create_snapshot(session_id=sid, description="after draft")
    saved = sm.get_completed_phases(sid)
    sm.save_phase_completion(sid, "review", "ok", 50, "1.00", context={"step": 3})
    sm.save_phase_completion(sid, "draft", ["c"], 10, "0.50")  # a re-save replaces draft
    sm.update_session_status(sid, "failed", "review crashed")
    restored = sm.restore_snapshot(snapshot)
    assert (restored.id, restored.session_id, restored.description) == (
        snapshot,
        sid,
        "after draft",
    )
    assert sm.get_completed_phases(sid) == saved
    context = sm.resume_session(sid)
    assert context is not None
    assert (context.data, context.last_completed_phase, context.accumulated_cost) == (
        {"step": 2},
        "draft",
        Decimal("0.15"),
    )
    session = sm.get_session(sid)
    assert session is not None
    assert (session.cost_usd, session.tokens_in, session.tokens_out) == (Decimal("0.15"), 7, 9)
    assert session.status == "failed"  # the status is the run's, not the snapshot's
    # Resume from the snapshot: the run continues after its last phase.
    sm.update_session_status(sid, "running")
    sm.save_phase_completion(sid, "review", "ok", 50, "0.25")
    sm.update_session_status(sid, "completed")
    assert [p.phase_id for p in sm.get_completed_phases(sid)] == ["research", "draft", "review"]
    assert sm.get_session(sid).cost_usd == Decimal("0.40")  # type: ignore[union-attr]
    # Restoring creates no snapshot itself, and is in the log.
    assert [s.id for s in sm.list_snapshots(session_id=sid)] == [snapshot]
    types = [e.event_type for e in sm.get_events(sid)]
    assert types.count("snapshot.created") == 1 and types.count("snapshot.restored") == 1
    with pytest.raises(SessionCompleted):
        sm.restore_snapshot(snapshot)
    assert [p.phase_id for p in sm.get_completed_phases(sid)] == ["research", "draft", "review"]


def test_a_snapshot_taken_before_any_context_clears_it_on_restore(sm: StateManager) -> None:
    sid = sm.create_session()
    empty = sm.create_snapshot(session_id=sid)
    sm.save_phase_completion(sid, "p1", 1, 1, "2", context={"k": "v"})
    sm.restore_snapshot(empty)
    assert sm.load_context(sid) is None
    assert sm.get_completed_phases(sid) == []
    assert sm.resume_session(sid) is None
    assert sm.get_session(sid).cost_usd == 0  # type: ignore[union-attr]


def test_an_agent_snapshot_restores_state_and_status_as_a_new_version(sm: StateManager) -> None:
    sm.save_agent_state(AgentState(agent_id="a1", status="running", state_data={"plan": [1, 2]}))
    snapshot = sm.create_snapshot(agent_id="a1", description="good plan")
    sm.save_agent_state(AgentState(agent_id="a1", status="failed", state_data={"plan": None}))
    sm.restore_snapshot(snapshot)
    agent = sm.load_agent_state("a1")
    assert agent is not None
    assert (agent.status, agent.state_data, agent.version) == ("running", {"plan": [1, 2]}, 3)
    latest = sm.get_state_history("a1", limit=1)[0]
    assert (latest.state_before, latest.state_after) == ("failed", "running")
    assert latest.reason == f"restored from snapshot {snapshot}"
    restored = sm.get_events_by_type("snapshot.restored")
    assert [(e.actor_id, e.metadata["snapshot_id"]) for e in restored] == [("a1", snapshot)]
    sm.delete_agent("a1")
    with pytest.raises(AgentNotFound):
        sm.restore_snapshot(snapshot)


def test_list_is_newest_first_without_payloads_and_get_decodes_one(sm: StateManager) -> None:
    sid = sm.create_session()
    sm.save_agent_state(AgentState(agent_id="a1", state_data="s"))
    first = sm.create_snapshot(session_id=sid, description="one")
    second = sm.create_snapshot(agent_id="a1", description="two")
    third = sm.create_snapshot(session_id=sid, description="three")
    assert [s.id for s in sm.list_snapshots()] == [third, second, first]
    assert [s.id for s in sm.list_snapshots(session_id=sid)] == [third, first]
    assert [s.id for s in sm.list_snapshots(agent_id="a1")] == [second]
    assert all(s.payload is None and s.size_bytes > 0 for s in sm.list_snapshots())
    got = sm.get_snapshot(second)
    assert got is not None and got.payload == {"status": "idle", "state_data": "s", "version": 1}
    assert (got.agent_id, got.namespace, got.session_id, got.compressed) == (
        "a1",
        "default",
        None,
        False,
    )
    assert sm.get_snapshot("nope") is None
    assert sm.list_snapshots(session_id="nope") == []


def test_rotation_keeps_the_newest_per_owner(open_sm: Callable[..., StateManager]) -> None:
    default = open_sm()
    sid = default.create_session()
    made = [default.create_snapshot(session_id=sid) for _ in range(12)]
    assert [s.id for s in default.list_snapshots(session_id=sid)] == made[::-1][:10]
    two = open_sm(max_snapshots=2)
    two.save_agent_state(AgentState(agent_id="a"))
    two.save_agent_state(AgentState(agent_id="b"))
    kept_b = two.create_snapshot(agent_id="b")
    agent_made = [two.create_snapshot(agent_id="a") for _ in range(3)]
    assert [s.id for s in two.list_snapshots(agent_id="a")] == agent_made[::-1][:2]
    assert [s.id for s in two.list_snapshots(agent_id="b")] == [kept_b]
    # The session's ten survive a manager with a lower limit until it snapshots that session.
    assert len(two.list_snapshots(session_id=sid)) == 10
    unlimited = open_sm(max_snapshots=None)
    for _ in range(3):
        unlimited.create_snapshot(session_id=sid)
    assert len(unlimited.list_snapshots(session_id=sid)) == 13


def test_expiry_and_the_retention_call_with_its_dry_run(
    open_sm: Callable[..., StateManager],
) -> None:
    sm = open_sm(max_snapshots=None)
    sid = sm.create_session()
    sm.save_agent_state(AgentState(agent_id="a1"))
    expiring = sm.create_snapshot(session_id=sid, expires_at=timedelta(hours=1))
    later = datetime.now(UTC) + timedelta(days=2)
    lasting = sm.create_snapshot(session_id=sid, expires_at=later)
    agent_old = [sm.create_snapshot(agent_id="a1") for _ in range(3)]
    assert sm.get_snapshot(lasting).expires_at == later  # type: ignore[union-attr]
    assert sm.delete_expired_snapshots() == 0
    _expire(sm, expiring)
    with pytest.raises(SnapshotNotFound) as caught:
        sm.restore_snapshot(expiring)
    assert "expired" in str(caught.value)
    events = _count(sm, EventRow)
    report = sm.prune_snapshots(keep=1, dry_run=True)
    assert report.dry_run and report.expired == [expiring]
    assert report.over_limit == agent_old[:2] and report.total == 3
    assert len(sm.list_snapshots()) == 5 and _count(sm, EventRow) == events
    done = sm.prune_snapshots(keep=1)
    assert (done.dry_run, done.expired, done.over_limit) == (False, [expiring], agent_old[:2])
    assert {s.id for s in sm.list_snapshots()} == {lasting, agent_old[2]}
    _expire(sm, lasting)
    assert sm.delete_expired_snapshots() == 1
    assert [s.id for s in sm.list_snapshots()] == [agent_old[2]]
    # Without `keep`, the manager's own limit applies; with no limit, only expiry.
    assert sm.prune_snapshots().total == 0


def test_agent_snapshots_are_private_to_their_namespace(
    open_sm: Callable[..., StateManager],
) -> None:
    default, worker = open_sm(), open_sm(namespace="worker")
    worker.save_agent_state(AgentState(agent_id="a1"))
    theirs = worker.create_snapshot(agent_id="a1", expires_at=timedelta(hours=1))
    sid = default.create_session()
    shared = default.create_snapshot(session_id=sid)
    assert [s.id for s in default.list_snapshots()] == [shared]
    assert {s.id for s in worker.list_snapshots()} == {shared, theirs}
    assert default.get_snapshot(theirs) is None
    with pytest.raises(SnapshotNotFound):
        default.restore_snapshot(theirs)
    _expire(worker, theirs)
    assert default.delete_expired_snapshots() == 0
    assert worker.delete_expired_snapshots() == 1


def test_deleting_a_session_deletes_its_snapshots(sm: StateManager) -> None:
    sid = sm.create_session()
    sm.create_snapshot(session_id=sid)
    sm.delete_session(sid)
    assert _count(sm, SnapshotRow) == 0


def test_bad_snapshot_calls_name_the_problem_and_write_nothing(sm: StateManager) -> None:
    sid = sm.create_session()
    sm.save_agent_state(AgentState(agent_id="a1"))
    naive = datetime.now() + timedelta(days=1)
    cases: list[tuple[Callable[[], Any], type[Exception], str | None]] = [
        (lambda: sm.create_snapshot(), InvalidInput, "session_id"),
        (lambda: sm.create_snapshot(session_id=sid, agent_id="a1"), InvalidInput, "session_id"),
        (lambda: sm.create_snapshot(session_id=""), InvalidInput, "session_id"),
        (
            lambda: sm.create_snapshot(agent_id="a1", description="\x00"),
            InvalidInput,
            "description",
        ),
        (lambda: sm.create_snapshot(agent_id="a1", expires_at=naive), InvalidInput, "expires_at"),
        (
            lambda: sm.create_snapshot(agent_id="a1", expires_at=datetime.now(UTC)),
            InvalidInput,
            "expires_at",
        ),
        (
            lambda: sm.create_snapshot(agent_id="a1", expires_at=timedelta(0)),
            InvalidInput,
            "expires_at",
        ),
        (
            lambda: sm.create_snapshot(agent_id="a1", expires_at=timedelta.max),
            InvalidInput,
            "expires_at",
        ),
        (
            lambda: sm.create_snapshot(agent_id="a1", expires_at="tomorrow"),  # type: ignore[arg-type]
            InvalidInput,
            "expires_at",
        ),
        (lambda: sm.create_snapshot(session_id="ghost"), SessionNotFound, None),
        (lambda: sm.create_snapshot(agent_id="ghost"), AgentNotFound, None),
        (lambda: sm.restore_snapshot("ghost"), SnapshotNotFound, None),
        (lambda: sm.restore_snapshot(""), InvalidInput, "snapshot_id"),
        (lambda: sm.prune_snapshots(keep=0), InvalidInput, "keep"),
    ]
    events = _count(sm, EventRow)
    for call, error, field in cases:
        with pytest.raises(error) as caught:
            call()
        if field is not None:
            assert getattr(caught.value, "field", None) == field, caught.value
    assert _count(sm, SnapshotRow) == 0 and _count(sm, EventRow) == events


def test_large_snapshots_are_stored_compressed_and_read_back_whole(
    open_sm: Callable[..., StateManager],
) -> None:
    sm = open_sm(compress_threshold=4096)
    sid = sm.create_session()
    sm.save_phase_completion(sid, "p1", {"text": "lorem ipsum " * 2000}, 1, "0.5")
    small_sid = sm.create_session()
    big, small = sm.create_snapshot(session_id=sid), sm.create_snapshot(session_id=small_sid)
    listed = {s.id: s for s in sm.list_snapshots()}
    assert listed[big].compressed and not listed[small].compressed
    assert listed[big].size_bytes > 24_000
    with sm.engine.connect() as connection:
        stored = connection.execute(
            sa.select(SnapshotRow.payload, SnapshotRow.payload_zstd).where(SnapshotRow.id == big)
        ).one()
    assert stored.payload is None and len(stored.payload_zstd) < listed[big].size_bytes / 10
    got = sm.get_snapshot(big)
    assert got is not None and got.payload["phases"][0]["output"] == {"text": "lorem ipsum " * 2000}
    sm.save_phase_completion(sid, "p2", 2, 1, "0.5")
    sm.restore_snapshot(big)
    assert [p.output for p in sm.get_completed_phases(sid)] == [{"text": "lorem ipsum " * 2000}]
