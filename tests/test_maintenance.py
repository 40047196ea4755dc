"""Maintenance: integrity checks, backups, vacuum, optimize and checkpoint."""

from __future__ import annotations

import os
import stat
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from statekeeper import AgentState, InvalidInput, StateManager, Task
from statekeeper.models import PhaseRow, SessionRow


def _seed(sm: StateManager) -> str:
    sid = sm.create_session("seed")
    sm.save_phase_completion(sid, "p1", {"a": 1}, 5, "0.04", tokens_in=3, context={"c": 1})
    sm.save_phase_completion(sid, "p2", {"b": 2}, 5, "0.02", tokens_out=4)
    return sid


def test_integrity_check_is_clean_then_finds_tampering(sm: StateManager) -> None:
    sid = _seed(sm)
    report = sm.integrity_check()
    assert report.ok and report.problems == []
    with sm.engine.begin() as connection:
        connection.execute(
            sa.update(PhaseRow).where(PhaseRow.phase_id == "p1").values(cost_usd=Decimal("9"))
        )
        connection.execute(sa.update(SessionRow).values(status="completed"))
    report = sm.integrity_check()
    assert not report.ok
    assert any("totals differ" in p and sid in p for p in report.problems)
    assert any("completed_at disagrees" in p for p in report.problems)


def test_backup_is_a_private_openable_copy(sm: StateManager, tmp_path: Path) -> None:
    sid = _seed(sm)
    target = tmp_path / "backups" / "state-backup.db"
    sm.backup(target)
    sm.backup(str(target))  # a second backup replaces the first atomically
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert not list(target.parent.glob(".*partial"))
    sm.save_phase_completion(sid, "p3", {}, 1, "1")
    with StateManager(target, auto_migrate=False) as restored:
        session = restored.get_session(sid)
        assert session is not None and session.cost_usd == Decimal("0.06")
        assert [p.phase_id for p in restored.get_completed_phases(sid)] == ["p1", "p2"]
        context = restored.load_context(sid)
        assert context is not None and context.data == {"c": 1}
        assert [e.event_type for e in restored.get_events(sid)] == [
            e.event_type for e in sm.get_events(sid)
        ][:3]
        assert restored.integrity_check().ok


def test_backup_refuses_to_overwrite_the_live_database(tmp_path: Path) -> None:
    path = tmp_path / "live.db"
    with StateManager(path) as sm:
        sid = sm.create_session()
        with pytest.raises(InvalidInput) as info:
            sm.backup(path)
        assert info.value.field == "path"
        assert sm.get_session(sid) is not None


def test_vacuum_optimize_checkpoint(sm: StateManager, engine_name: str) -> None:
    for i in range(20):
        sm.create_session(f"s{i}", metadata={"blob": "x" * 2000})
    sm.cleanup_old_sessions(0)
    for sid in [s.id for s in sm.get_session_history(100)][:15]:
        sm.delete_session(sid)
    sm.vacuum()
    sm.optimize()
    sm.checkpoint()
    assert sm.get_total_sessions() == 5
    if engine_name == "sqlite":
        database = Path(str(sm.url.database))
        wal = database.with_name(database.name + "-wal")
        assert not wal.exists() or wal.stat().st_size == 0
    assert sm.integrity_check().ok


def _everything(sm: StateManager) -> list[object]:
    """What a user can read back of every session, chat, instances and events included."""
    return [
        (
            sm.get_session(s.id),
            sm.get_completed_phases(s.id),
            sm.load_context(s.id),
            sm.get_worktree_session(s.id),
            [(e.event_type, e.content, e.metadata, e.created_at) for e in sm.get_events(s.id)],
        )
        for s in sm.get_session_history(100)
    ] + [
        sm.list_agents(include_deleted=True),
        [sm.get_state_history(a.agent_id) for a in sm.list_agents(include_deleted=True)],
        [sm.get_snapshot(s.id) for s in sm.list_snapshots()],
        sm.get_tasks(),
        sm.get_events_by_type("agent.status_changed"),
    ]


def test_copy_to_the_other_engine_keeps_everything(sm: StateManager, other_engine_url: str) -> None:
    _seed(sm)
    chat = sm.create_session("chat", kind="competition", workspace="/tmp/copy-test")
    sm.add_instance(chat, 1, worktree_path="/w", branch="b", agent_name="a", tmux_session_id="t")
    sm.add_chat_message(chat, "user", "héllo wörld")
    sm.update_session_status(chat, "failed", "boom")
    sm.save_agent_state(AgentState(agent_id="planner", status="running", state_data="x" * 5000))
    sm.update_agent_status("planner", "paused")
    sm.create_snapshot(agent_id="planner")
    sm.create_snapshot(session_id=chat)
    sm.save_task(Task(title="review", assigned_to="planner"))
    with StateManager(sm.engine.url, compress_threshold=0) as compressing:
        compressing.save_agent_state(AgentState(agent_id="packed", state_data="y" * 5000))
    rows = sm.copy_to(other_engine_url)
    with StateManager(other_engine_url, auto_migrate=False) as copy:
        assert rows > 10
        assert _everything(copy) == _everything(sm)
        assert copy.search_sessions("wörld")[0].session_id == chat
        assert copy.integrity_check().ok
        # Keys continue after the copied ones (PostgreSQL sequences were moved on).
        more = copy.create_session("after the copy")
        copy.add_chat_message(more, "assistant", "still fine")
        copy.save_phase_completion(more, "p1", {}, 1, "0.01")
        copy.update_agent_status("planner", "running")
        copy.create_snapshot(agent_id="planner")
        assert copy.get_total_sessions() == 3


def test_copy_refuses_a_store_with_rows_and_writes_nothing(
    sm: StateManager, other_engine_url: str
) -> None:
    _seed(sm)
    with StateManager(other_engine_url) as other:
        kept = other.create_session("already here")
    with pytest.raises(InvalidInput, match="target") as info:
        sm.copy_to(other_engine_url)
    assert info.value.field == "target"
    with StateManager(other_engine_url) as other:
        assert [s.id for s in other.get_session_history()] == [kept]
    with pytest.raises(InvalidInput, match="target"):
        sm.copy_to(sm.url)
