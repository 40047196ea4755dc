"""The agent store: versioned saves, namespaces, transitions, soft delete, purge, compression."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from statekeeper import (
    AgentNotFound,
    AgentState,
    AgentStatus,
    InvalidInput,
    StateManager,
    VersionConflict,
)
from statekeeper.models import AgentRow, EventRow, StateTransitionRow


def _count(sm: StateManager, model: Any) -> int:
    with sm.engine.connect() as connection:
        return int(connection.scalar(sa.select(sa.func.count()).select_from(model)) or 0)


def _agent_events(sm: StateManager) -> list[str]:
    with sm.engine.connect() as connection:
        rows = connection.execute(
            sa.select(EventRow.event_type)
            .where(EventRow.actor_type == "agent")
            .order_by(EventRow.seq)
        )
        return [row.event_type for row in rows]


def test_first_save_is_version_one_and_each_save_bumps_it(sm: StateManager) -> None:
    first = sm.save_agent_state(AgentState(agent_id="a1", state_data={"step": 1}))
    assert (first.version, first.name, first.status, first.namespace) == (
        1,
        "a1",
        "idle",
        "default",
    )
    assert first.created_at is not None and first.created_at == first.updated_at
    second = sm.save_agent_state(
        {"agent_id": "a1", "name": "Planner", "state_data": {"step": 2}, "metadata": {"k": 1}}
    )
    assert second.version == 2
    loaded = sm.load_agent_state("a1")
    assert loaded is not None
    assert (loaded.version, loaded.name, loaded.state_data, loaded.metadata) == (
        2,
        "Planner",
        {"step": 2},
        {"k": 1},
    )
    assert loaded.created_at == first.created_at
    assert loaded.updated_at is not None and first.updated_at is not None
    assert loaded.updated_at >= first.updated_at
    assert loaded == second
    # The version given on input is the store's to set: it is ignored.
    third = sm.save_agent_state(AgentState(agent_id="a1", version=99, state_data=[1, (2, 3)]))
    assert third.version == 3 and third.state_data == [1, [2, 3]]
    assert sm.load_agent_state("missing") is None


def test_a_stale_expected_version_raises_and_writes_nothing(sm: StateManager) -> None:
    sm.save_agent_state(AgentState(agent_id="a1", state_data="v1"))
    sm.save_agent_state(AgentState(agent_id="a1", state_data="v2"), expected_version=1)
    transitions, events = _count(sm, StateTransitionRow), _count(sm, EventRow)
    with pytest.raises(VersionConflict) as caught:
        sm.save_agent_state(
            AgentState(agent_id="a1", status="running", state_data="v3"), expected_version=1
        )
    assert (caught.value.expected, caught.value.actual) == (1, 2)
    assert "a1" in str(caught.value)
    loaded = sm.load_agent_state("a1")
    assert loaded is not None and (loaded.version, loaded.state_data, loaded.status) == (
        2,
        "v2",
        "idle",
    )
    assert (_count(sm, StateTransitionRow), _count(sm, EventRow)) == (transitions, events)


def test_expected_version_zero_creates_only(sm: StateManager) -> None:
    created = sm.save_agent_state(AgentState(agent_id="new"), expected_version=0)
    assert created.version == 1
    with pytest.raises(VersionConflict) as caught:
        sm.save_agent_state(AgentState(agent_id="new"), expected_version=0)
    assert (caught.value.expected, caught.value.actual) == (0, 1)
    with pytest.raises(VersionConflict) as unknown:
        sm.save_agent_state(AgentState(agent_id="ghost"), expected_version=3)
    assert (unknown.value.expected, unknown.value.actual) == (3, None)
    assert sm.load_agent_state("ghost") is None


def test_namespaces_share_a_store_and_see_only_their_own_agents(
    open_sm: Callable[..., StateManager],
) -> None:
    default, worker = open_sm(), open_sm(namespace="worker")
    assert (default.namespace, worker.namespace) == ("default", "worker")
    default.save_agent_state(AgentState(agent_id="same", state_data="mine"))
    worker.save_agent_state(AgentState(agent_id="same", state_data="theirs", status="running"))
    worker.save_agent_state(AgentState(agent_id="only-worker"))
    mine, theirs = default.load_agent_state("same"), worker.load_agent_state("same")
    assert mine is not None and theirs is not None
    assert (mine.state_data, mine.namespace) == ("mine", "default")
    assert (theirs.state_data, theirs.namespace, theirs.version) == ("theirs", "worker", 1)
    assert [a.agent_id for a in default.list_agents()] == ["same"]
    assert [a.agent_id for a in worker.list_agents()] == ["only-worker", "same"]
    assert default.load_agent_state("only-worker") is None
    with pytest.raises(AgentNotFound):
        default.update_agent_status("only-worker", "running")
    with pytest.raises(AgentNotFound):
        default.delete_agent("only-worker")
    with pytest.raises(InvalidInput) as caught:
        default.save_agent_state(AgentState(agent_id="x", namespace="worker"))
    assert caught.value.field == "namespace"
    default.delete_agent("same")
    assert worker.load_agent_state("same") is not None
    assert [t.state_after for t in default.get_state_history("same")] == ["idle"]
    assert [t.state_after for t in worker.get_state_history("same")] == ["running"]


def test_every_status_change_records_a_transition_and_an_event(sm: StateManager) -> None:
    sm.save_agent_state(AgentState(agent_id="a1"))
    sm.save_agent_state(AgentState(agent_id="a1", status="running"))
    sm.save_agent_state(AgentState(agent_id="a1", status="running", state_data=1))  # no change
    sm.update_agent_status("a1", AgentStatus.PAUSED, reason="operator")
    sm.update_agent_status("a1", "paused")  # no change: nothing recorded, no new version
    history = sm.get_state_history("a1")
    assert [(t.state_before, t.state_after, t.reason) for t in history] == [
        ("running", "paused", "operator"),
        ("idle", "running", None),
        (None, "idle", "created"),
    ]
    assert [t.state_after for t in sm.get_state_history("a1", limit=2)] == ["paused", "running"]
    assert _agent_events(sm) == ["agent.created", "agent.status_changed", "agent.status_changed"]
    changed = sm.get_events_by_type("agent.status_changed")
    assert [(e.metadata["from"], e.metadata["to"]) for e in changed] == [
        ("idle", "running"),
        ("running", "paused"),
    ]
    assert all(e.actor_id == "a1" and e.metadata["namespace"] == "default" for e in changed)
    loaded = sm.load_agent_state("a1")
    assert loaded is not None and (loaded.status, loaded.version) == ("paused", 4)
    assert sm.get_state_history("nobody") == []


def test_explicit_transitions_join_the_history_without_changing_status(sm: StateManager) -> None:
    sm.save_agent_state(AgentState(agent_id="a1", status="running"))
    sm.record_state_transition("a1", "planning", "coding", "plan approved", {"by": "lead"})
    latest = sm.get_state_history("a1", limit=1)[0]
    assert (latest.state_before, latest.state_after, latest.reason, latest.metadata) == (
        "planning",
        "coding",
        "plan approved",
        {"by": "lead"},
    )
    sm.record_state_transition("a1", None, "started")
    loaded = sm.load_agent_state("a1")
    assert loaded is not None and (loaded.status, loaded.version) == ("running", 1)
    with pytest.raises(AgentNotFound):
        sm.record_state_transition("ghost", "a", "b")


def test_soft_delete_hides_restore_brings_back_and_purge_removes(sm: StateManager) -> None:
    sm.save_agent_state(AgentState(agent_id="keep"))
    sm.save_agent_state(AgentState(agent_id="gone", state_data={"x": 1}))
    sm.create_snapshot(agent_id="gone")
    sm.delete_agent("gone")
    sm.delete_agent("gone")  # idempotent
    assert sm.load_agent_state("gone") is None
    assert [a.agent_id for a in sm.list_agents()] == ["keep"]
    listed = sm.list_agents(include_deleted=True)
    assert [(a.agent_id, a.deleted_at is not None) for a in listed] == [
        ("gone", True),
        ("keep", False),
    ]
    for change in (
        lambda: sm.update_agent_status("gone", "running"),
        lambda: sm.save_agent_state(AgentState(agent_id="gone")),
        lambda: sm.record_state_transition("gone", "a", "b"),
        lambda: sm.create_snapshot(agent_id="gone"),
    ):
        with pytest.raises(AgentNotFound) as caught:
            change()
        assert caught.value.deleted and "restore_agent" in str(caught.value)
    sm.restore_agent("gone")
    back = sm.load_agent_state("gone")
    assert back is not None and back.state_data == {"x": 1} and back.deleted_at is None
    sm.restore_agent("gone")  # a live agent is left as it is
    assert _agent_events(sm)[-2:] == ["agent.deleted", "agent.restored"]
    sm.delete_agent("gone")
    assert sm.purge_deleted(1) == 0  # deleted just now: younger than a day
    assert sm.purge_deleted(0) == 1
    assert [a.agent_id for a in sm.list_agents(include_deleted=True)] == ["keep"]
    with sm.engine.connect() as connection:
        left = connection.scalar(
            sa.select(sa.func.count())
            .select_from(StateTransitionRow)
            .where(StateTransitionRow.agent_id == "gone")
        )
    assert left == 0
    assert sm.list_snapshots(agent_id="gone") == []
    purged = sm.get_events_by_type("agent.purged")
    assert [e.metadata["agent_ids"] for e in purged] == [["gone"]]
    for missing in (sm.delete_agent, sm.restore_agent):
        with pytest.raises(AgentNotFound) as unknown:
            missing("never")
        assert not unknown.value.deleted


def test_list_agents_filters_by_status(sm: StateManager) -> None:
    for agent_id, status in (("c", "idle"), ("a", "running"), ("b", "running")):
        sm.save_agent_state(AgentState(agent_id=agent_id, status=status))
    assert [a.agent_id for a in sm.list_agents(status="running")] == ["a", "b"]
    assert [a.agent_id for a in sm.list_agents(status=AgentStatus.IDLE)] == ["c"]
    assert sm.list_agents(status="failed") == []


BAD_SAVES: list[tuple[Any, dict[str, Any], str]] = [
    ({"agent_id": ""}, {}, "agent_id"),
    ({"agent_id": " padded"}, {}, "agent_id"),
    ({"agent_id": "x" * 256}, {}, "agent_id"),
    ({"agent_id": "a", "name": "nul\x00"}, {}, "name"),
    ({"agent_id": "a", "status": "sleeping"}, {}, "status"),
    ({"agent_id": "a", "metadata": [1]}, {}, "metadata"),
    ({"agent_id": "a", "state_data": {1, 2}}, {}, "state_data"),
    ({"agent_id": "a", "state_data": float("nan")}, {}, "state_data"),
    ({"agent_id": "a", "state_data": "\ud800"}, {}, "state_data"),
    ({"agent_id": "a", "unknown": 1}, {}, "unknown"),
    ({"agent_id": "a"}, {"expected_version": -1}, "expected_version"),
    ({"agent_id": "a"}, {"expected_version": True}, "expected_version"),
    ({"agent_id": "a"}, {"expected_version": "1"}, "expected_version"),
]


@pytest.mark.parametrize(("state", "options", "field"), BAD_SAVES)
def test_bad_saves_name_the_field_and_write_nothing(
    sm: StateManager, state: dict[str, Any], options: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        sm.save_agent_state(state, **options)
    assert caught.value.field == field
    assert _count(sm, AgentRow) == 0 and _count(sm, EventRow) == 0


def test_bad_arguments_of_the_other_agent_calls(sm: StateManager) -> None:
    sm.save_agent_state(AgentState(agent_id="a1"))
    cases: list[tuple[Callable[[], Any], str]] = [
        (lambda: sm.update_agent_status("a1", "bogus"), "status"),
        (lambda: sm.update_agent_status("a1", "running", reason="\x00"), "reason"),
        (lambda: sm.update_agent_status("", "running"), "agent_id"),
        (lambda: sm.list_agents(status="bogus"), "status"),
        (lambda: sm.purge_deleted(-1), "older_than_days"),
        (lambda: sm.record_state_transition("a1", "x" * 65, "b"), "before"),
        (lambda: sm.record_state_transition("a1", "a", None), "after"),  # type: ignore[arg-type]
        (lambda: sm.record_state_transition("a1", "a", "b", metadata=[]), "metadata"),  # type: ignore[arg-type]
        (lambda: sm.get_state_history("a1", limit=0), "limit"),
    ]
    for call, field in cases:
        with pytest.raises(InvalidInput) as caught:
            call()
        assert caught.value.field == field
    loaded = sm.load_agent_state("a1")
    assert loaded is not None and loaded.version == 1
    assert len(sm.get_state_history("a1")) == 1


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"namespace": ""}, "namespace"),
        ({"namespace": 3}, "namespace"),
        ({"max_snapshots": 0}, "max_snapshots"),
        ({"compress_threshold": -1}, "compress_threshold"),
    ],
)
def test_bad_manager_options_are_refused(
    open_sm: Callable[..., StateManager], options: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        open_sm(**options)
    assert caught.value.field == field


def test_a_rolled_back_block_leaves_no_transition_and_no_event(sm: StateManager) -> None:
    sm.save_agent_state(AgentState(agent_id="a1"))
    before = (_count(sm, StateTransitionRow), _count(sm, EventRow))

    def abandoned() -> None:
        with sm.transaction():
            sm.update_agent_status("a1", "running")
            sm.create_snapshot(agent_id="a1")
            raise RuntimeError("abandon the block")

    with pytest.raises(RuntimeError):
        abandoned()
    assert (_count(sm, StateTransitionRow), _count(sm, EventRow)) == before
    loaded = sm.load_agent_state("a1")
    assert loaded is not None and (loaded.status, loaded.version) == ("idle", 1)
    assert sm.list_snapshots(agent_id="a1") == []
    with sm.transaction():
        sm.update_agent_status("a1", "running")
        sm.create_snapshot(agent_id="a1")
    assert _agent_events(sm) == ["agent.created", "agent.status_changed", "snapshot.created"]


def test_a_conflict_inside_a_block_is_undone_alone(sm: StateManager) -> None:
    sm.save_agent_state(AgentState(agent_id="a1"))
    with sm.transaction():
        sm.save_agent_state(AgentState(agent_id="b"))
        with pytest.raises(VersionConflict):
            sm.save_agent_state(AgentState(agent_id="a1", status="failed"), expected_version=7)
        sm.save_agent_state(AgentState(agent_id="a1", state_data=2), expected_version=1)
    assert [a.agent_id for a in sm.list_agents()] == ["a1", "b"]
    loaded = sm.load_agent_state("a1")
    assert loaded is not None and (loaded.version, loaded.status, loaded.state_data) == (
        2,
        "idle",
        2,
    )


def test_the_orm_reads_agents_and_a_stale_orm_edit_is_a_version_conflict(
    sync_sm: StateManager,
) -> None:
    sm = sync_sm
    sm.save_agent_state(AgentState(agent_id="a1", state_data={"big": "x" * 10}))
    sm.update_agent_status("a1", "running")
    sm.create_snapshot(agent_id="a1", description="first")
    with sm.session() as s:
        row = s.get(AgentRow, ("default", "a1"))
        assert row is not None and row.version == 2
        assert [t.state_after for t in row.transitions] == ["idle", "running"]
        assert [snap.description for snap in row.snapshots] == ["first"]
        assert row.snapshots[0].agent is row and row.decoded_state == {"big": "x" * 10}

    def stale_edit() -> None:
        with sm.transaction() as s:
            stale = s.get(AgentRow, ("default", "a1"))
            assert stale is not None
            sm.update_agent_status("a1", "paused")  # a new version behind the ORM's back
            stale.name = "renamed"

    with pytest.raises(VersionConflict):
        stale_edit()
    loaded = sm.load_agent_state("a1")
    assert loaded is not None and (loaded.name, loaded.status) == ("a1", "running")


def _stored(sm: StateManager, agent_id: str) -> tuple[Any, bytes | None]:
    with sm.engine.connect() as connection:
        row = connection.execute(
            sa.select(AgentRow.state_data, AgentRow.state_data_zstd).where(
                AgentRow.agent_id == agent_id
            )
        ).one()
    return row.state_data, row.state_data_zstd


def _state_of_size(size: int) -> str:
    """A compressible JSON string whose JSON text is exactly `size` bytes."""
    value = "a" * (size - 2)
    assert len(json.dumps(value).encode()) == size
    return value


def test_compression_round_trips_at_the_threshold_boundary(
    open_sm: Callable[..., StateManager],
) -> None:
    sm = open_sm(compress_threshold=1000)
    at, above = _state_of_size(1000), _state_of_size(1001)
    sm.save_agent_state(AgentState(agent_id="at", state_data=at))
    sm.save_agent_state(AgentState(agent_id="above", state_data=above))
    assert _stored(sm, "at") == (at, None)
    plain, blob = _stored(sm, "above")
    assert plain is None and blob is not None and len(blob) < 100
    for agent_id, value in (("at", at), ("above", above)):
        loaded = sm.load_agent_state(agent_id)
        assert loaded is not None and loaded.state_data == value
    # A state that zstd would make larger (its frame header alone) is stored as it is.
    tiny = open_sm(compress_threshold=0)
    tiny.save_agent_state(AgentState(agent_id="tiny", state_data="ab"))
    assert _stored(tiny, "tiny") == ("ab", None)
    # A JSON null state is stored as JSON, never confused with a compressed one.
    sm.save_agent_state(AgentState(agent_id="null", state_data=None))
    loaded = sm.load_agent_state("null")
    assert loaded is not None and loaded.state_data is None
    # A reader with compression off decodes what a writer compressed, and the ORM does too.
    reader = open_sm()
    assert {a.agent_id: a.state_data for a in reader.list_agents()}["above"] == above
    with StateManager(sm.engine.url) as orm_reader, orm_reader.session() as s:
        row = s.get(AgentRow, ("default", "above"))
        assert row is not None and row.state_data is None and row.decoded_state == above


def test_compression_is_off_by_default(sm: StateManager) -> None:
    big = _state_of_size(100_000)
    sm.save_agent_state(AgentState(agent_id="big", state_data=big))
    assert _stored(sm, "big") == (big, None)


def test_every_public_name_is_importable_from_the_package() -> None:
    import statekeeper
    import statekeeper.models

    for name in (
        "AgentState",
        "AgentStatus",
        "AgentNotFound",
        "Snapshot",
        "SnapshotNotFound",
        "SnapshotPruneReport",
        "StateTransition",
        "Task",
        "TaskStatus",
    ):
        assert name in statekeeper.__all__
    assert all(getattr(statekeeper, name) is not None for name in statekeeper.__all__)
    for model in ("AgentRow", "StateTransitionRow", "SnapshotRow", "TaskRow"):
        assert model in statekeeper.models.__all__
    assert issubclass(statekeeper.AgentNotFound, statekeeper.StateError)
    assert issubclass(statekeeper.SnapshotNotFound, statekeeper.StateError)
