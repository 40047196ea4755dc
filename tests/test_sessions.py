"""Sessions: creation, status rules, history paging, deletion and retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from statekeeper import (
    InvalidInput,
    InvalidTransition,
    SessionNotFound,
    SessionStatus,
    StateManager,
)
from statekeeper.models import SessionRow
from statekeeper.services.workspaces import workspace_id


def test_new_session_is_running_with_zero_cost(sm: StateManager) -> None:
    sid = sm.create_session("TechCorp", task="research", model="opus", metadata={"k": [1]})
    session = sm.get_session(sid)
    assert session is not None
    assert session.id == sid
    assert session.subject == "TechCorp"
    assert session.kind == "workflow"
    assert session.status == "running"
    assert session.status is SessionStatus.RUNNING
    assert session.cost_usd == 0
    assert session.tokens_in == session.tokens_out == 0
    assert session.completed_at is None and session.duration_ms is None
    assert session.metadata == {"k": [1]}
    assert session.created_at.tzinfo is not None
    assert session.created_at.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - session.created_at) < timedelta(minutes=1)


def test_explicit_id_and_kind(sm: StateManager) -> None:
    assert sm.create_session(session_id="run-1", kind="debate") == "run-1"
    session = sm.get_session("run-1")
    assert session is not None and session.kind == "debate" and session.subject is None


def test_duplicate_id_is_rejected_and_writes_nothing(sm: StateManager) -> None:
    sm.create_session("first", session_id="dup")
    with pytest.raises(InvalidInput) as info:
        sm.create_session("second", session_id="dup")
    assert info.value.field == "session_id"
    session = sm.get_session("dup")
    assert session is not None and session.subject == "first"
    assert sm.get_total_sessions() == 1


def test_unknown_ids_read_as_none(sm: StateManager) -> None:
    assert sm.get_session("nope") is None
    assert sm.load_context("nope") is None
    assert sm.get_completed_phases("nope") == []
    assert sm.is_phase_completed("nope", "p") is False
    assert sm.get_events("nope") == []


@pytest.mark.parametrize(
    "call",
    [
        lambda sm: sm.update_session_status("nope", "failed"),
        lambda sm: sm.save_markdown_output("nope", "# x"),
        lambda sm: sm.save_phase_completion("nope", "p", {}, 1, 0),
        lambda sm: sm.save_context("nope", {}),
        lambda sm: sm.resume_session("nope"),
        lambda sm: sm.delete_session("nope"),
        lambda sm: sm.calculate_duration("nope"),
        lambda sm: sm.record_event("note", "x", session_id="nope"),
        lambda sm: sm.run_phase("nope", "p", lambda: 1),
    ],
)
def test_changing_an_unknown_session_raises(sm: StateManager, call) -> None:
    with pytest.raises(SessionNotFound):
        call(sm)
    assert sm.get_total_sessions() == 0


def test_terminal_status_stamps_completion(sm: StateManager) -> None:
    sid = sm.create_session("x")
    sm.update_session_status(sid, SessionStatus.FAILED, "boom")
    session = sm.get_session(sid)
    assert session is not None
    assert session.status == "failed" and session.error_message == "boom"
    assert session.completed_at is not None and session.duration_ms is not None
    assert session.duration_ms == sm.calculate_duration(sid)
    # Failed is not final: the run may be retried, which reopens it.
    sm.update_session_status(sid, "running")
    session = sm.get_session(sid)
    assert session is not None
    assert session.completed_at is None and session.duration_ms is None
    assert session.error_message is None


def test_completed_is_final(sm: StateManager) -> None:
    sid = sm.create_session("x")
    sm.update_session_status(sid, "paused")
    sm.update_session_status(sid, "completed")
    for status in SessionStatus:
        with pytest.raises(InvalidTransition):
            sm.update_session_status(sid, status)
    session = sm.get_session(sid)
    assert session is not None and session.status == "completed"


def test_unknown_status_is_invalid_input(sm: StateManager) -> None:
    sid = sm.create_session("x")
    with pytest.raises(InvalidInput) as info:
        sm.update_session_status(sid, "done")
    assert info.value.field == "status"
    session = sm.get_session(sid)
    assert session is not None and session.status == "running"


def test_status_changes_are_audited_in_the_same_transaction(sm: StateManager) -> None:
    sid = sm.create_session("x")
    sm.update_session_status(sid, "paused")
    sm.update_session_status(sid, "failed", "oops")
    changes = [e for e in sm.get_events(sid) if e.event_type == "session.status_changed"]
    assert [(e.metadata["from"], e.metadata["to"]) for e in changes] == [
        ("running", "paused"),
        ("paused", "failed"),
    ]
    assert changes[1].metadata["error_message"] == "oops"


def test_markdown_output_even_after_completion(sm: StateManager) -> None:
    sid = sm.create_session("x")
    sm.update_session_status(sid, "completed")
    sm.save_markdown_output(sid, "# Report\n\nüñí 漢字")
    session = sm.get_session(sid)
    assert session is not None and session.output_markdown == "# Report\n\nüñí 漢字"


def test_duration_of_an_open_session_grows(sm: StateManager) -> None:
    sid = sm.create_session("x")
    first = sm.calculate_duration(sid)
    assert first >= 0
    session = sm.get_session(sid)
    assert session is not None and session.duration_ms is None


def _backdate(sm: StateManager, sid: str, **columns: datetime) -> None:
    """Move a session's timestamps into the past, as if it had run then."""
    with sm.engine.begin() as connection:
        connection.execute(sa.update(SessionRow).where(SessionRow.id == sid).values(**columns))


def test_history_is_newest_first_with_keyset_paging(sm: StateManager) -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    ids = [sm.create_session(f"s{i}", session_id=f"id-{i:02d}") for i in range(7)]
    for i, sid in enumerate(ids):
        # Two sessions share every timestamp: ties are broken by id.
        _backdate(sm, sid, created_at=base + timedelta(minutes=i // 2))
    page1 = sm.get_session_history(3)
    page2 = sm.get_session_history(3, before=page1[-1].id)
    page3 = sm.get_session_history(3, before=page2[-1].id)
    seen = [s.id for s in page1 + page2 + page3]
    assert seen == sorted(ids, key=lambda i: (int(i[3:]) // 2, i), reverse=True)
    assert len(page3) == 1
    assert sm.get_session_history(3, before=page3[-1].id) == []


def test_history_filters(sm: StateManager, tmp_path) -> None:
    a = sm.create_session("a", kind="competition", workspace=tmp_path)
    b = sm.create_session("b", kind="workflow", workspace=str(tmp_path) + "/")
    c = sm.create_session("c", kind="workflow")
    sm.update_session_status(c, "completed")
    assert {s.id for s in sm.get_session_history(status="completed")} == {c}
    assert {s.id for s in sm.get_session_history(status=SessionStatus.RUNNING)} == {a, b}
    assert {s.id for s in sm.get_session_history(kind="competition")} == {a}
    assert {s.id for s in sm.get_session_history(workspace=tmp_path)} == {a, b}
    summary = sm.get_session_history(workspace=tmp_path)[0]
    assert summary.workspace_id == workspace_id(tmp_path) == workspace_id(str(tmp_path) + "/")
    assert {s.id for s in sm.get_session_history(kind="workflow", status="running")} == {b}


def test_history_bad_arguments(sm: StateManager) -> None:
    with pytest.raises(InvalidInput) as info:
        sm.get_session_history(0)
    assert info.value.field == "limit"
    with pytest.raises(InvalidInput) as info:
        sm.get_session_history(status="finished")
    assert info.value.field == "status"
    with pytest.raises(InvalidInput) as info:
        sm.get_session_history(before="no-such-session")
    assert info.value.field == "before"


def test_workspace_hash_matches_the_legacy_editor(tmp_path) -> None:
    import hashlib

    expected = hashlib.sha256(str(tmp_path.resolve()).encode()).hexdigest()[:16]
    assert workspace_id(tmp_path) == expected
    missing = "/no/such/dir/"
    assert workspace_id(missing) == hashlib.sha256(b"/no/such/dir").hexdigest()[:16]


def test_delete_session_cascades(sm: StateManager) -> None:
    sid = sm.create_session("x")
    sm.save_phase_completion(sid, "p1", {"a": 1}, 10, "0.01", context={"c": 1})
    keep = sm.create_session("keep")
    sm.delete_session(sid)
    assert sm.get_session(sid) is None
    assert sm.get_completed_phases(sid) == []
    assert sm.load_context(sid) is None
    assert sm.get_events(sid) == []
    with sm.engine.connect() as connection:
        for table in ("phase_completions", "workflow_context", "events"):
            count = connection.execute(
                sa.text(f"SELECT count(*) FROM {table} WHERE session_id = :s"), {"s": sid}
            ).scalar()
            assert count == 0, table
    assert sm.get_session(keep) is not None


def test_cleanup_removes_only_old_terminal_sessions(sm: StateManager) -> None:
    old = datetime.now(UTC) - timedelta(days=40)
    done = sm.create_session("done")
    failed = sm.create_session("failed")
    recent = sm.create_session("recent")
    running = sm.create_session("running")
    for sid in (done, failed, recent):
        sm.update_session_status(sid, "completed" if sid != failed else "failed")
    sm.save_phase_completion(running, "p", {}, 1, "0.5")
    _backdate(sm, done, created_at=old, completed_at=old)
    _backdate(sm, failed, created_at=old, completed_at=old)
    _backdate(sm, running, created_at=old)
    assert sm.cleanup_old_sessions(30) == 2
    assert sm.get_session(done) is None and sm.get_session(failed) is None
    assert sm.get_session(recent) is not None and sm.get_session(running) is not None
    assert sm.cleanup_old_sessions(0) == 1
    assert sm.get_session(recent) is None
    assert sm.get_total_sessions() == 1
    with pytest.raises(InvalidInput):
        sm.cleanup_old_sessions(-1)


def test_session_totals_are_decimal(sm: StateManager) -> None:
    sid = sm.create_session("x")
    summary = sm.get_session_history(1)[0]
    assert isinstance(summary.cost_usd, Decimal) and summary.id == sid
