"""Worktree sessions: instances, chat history, whole-object save and load, listing."""

from __future__ import annotations

import multiprocessing
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from statekeeper import (
    ChatMessage,
    InstanceStatus,
    InvalidInput,
    InvalidTransition,
    SessionNotFound,
    StateManager,
    WorktreeInstance,
    WorktreeSession,
)

T0 = datetime(2025, 1, 13, 10, 0, tzinfo=UTC)
REQUIRED = {
    "worktree_path": "/w/1",
    "branch": "b1",
    "agent_name": "claude",
    "tmux_session_id": "t1",
}


def _legacy(session_id: str = "legacy-1", **fields: Any) -> WorktreeSession:
    values: dict[str, Any] = {
        "id": session_id,
        "type": "competition",
        "task": "make the tests pass",
        "status": "running",
        "created_at": T0,
        "updated_at": T0,
        "instances": [
            WorktreeInstance(instance_id=n, status="running", output="ü" * 10, **REQUIRED)
            for n in (1, 2)
        ],
        "chat_history": [
            ChatMessage(id=f"{session_id}-m{i}", role="user", content=f"m{i}", timestamp=T0)
            for i in range(3)
        ],
        "winner_id": 2,
        "runtime_mix": ["claude", "codex"],
        "total_duration": 125,
        "timeout_seconds": 600,
        "preserve_worktrees": True,
    }
    values.update(fields)
    return WorktreeSession(**values)


def test_instances_added_and_updated(sm: StateManager) -> None:
    sid = sm.create_session(kind="competition", task="t")
    big = "line of output\n" * 8_000  # about 120 KB
    sm.add_instance(sid, 2, **REQUIRED, output=big, runtime="claude", model="opus")
    sm.add_instance(sid, 1, **REQUIRED, status="running")
    end = datetime(2025, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    sm.update_instance(sid, 1, status=InstanceStatus.COMPLETED, end_time=end, lines_added=7)
    first, second = sm.get_instances(sid)
    assert (first.instance_id, second.instance_id) == (1, 2)
    assert first.status == "completed" and first.lines_added == 7
    assert first.end_time == end and first.end_time.utcoffset() == timedelta(0)
    assert second.output == big and second.status == "idle" and second.model == "opus"
    assert sm.get_instances("unknown") == []


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda sm, sid: sm.add_instance(sid, 1, **REQUIRED), "instance_number"),
        (lambda sm, sid: sm.add_instance(sid, -1, **REQUIRED), "instance_number"),
        (lambda sm, sid: sm.add_instance(sid, 3, **REQUIRED, status="sleeping"), "status"),
        (lambda sm, sid: sm.add_instance(sid, 3, **REQUIRED, colour="red"), "colour"),
        (lambda sm, sid: sm.add_instance(sid, 3, **REQUIRED, lines_added=-1), "lines_added"),
        (lambda sm, sid: sm.add_instance(sid, 3, **REQUIRED, runtime="r" * 65), "runtime"),
        (lambda sm, sid: sm.add_instance(sid, 3, **{**REQUIRED, "branch": None}), "branch"),
        (lambda sm, sid: sm.update_instance(sid, 9, status="running"), "instance_number"),
        (lambda sm, sid: sm.update_instance(sid, 1, output="nul\x00"), "output"),
        (lambda sm, sid: sm.update_instance(sid, 1, output="\ud800"), "output"),
        (
            lambda sm, sid: sm.update_instance(sid, 1, end_time=datetime(2025, 1, 1)),
            "end_time",
        ),
        (
            lambda sm, sid: sm.update_instance(
                sid, 1, end_time=datetime(9999, 12, 31, 23, tzinfo=timezone(-timedelta(hours=5)))
            ),
            "end_time",
        ),
        (lambda sm, sid: sm.add_chat_message(sid, "robot", "hi"), "role"),
        (lambda sm, sid: sm.add_chat_message(sid, "user", "\ud83d"), "content"),
        (lambda sm, sid: sm.add_chat_message(sid, "user", 5), "content"),
        (lambda sm, sid: sm.get_chat_history(sid, limit=0), "limit"),
        (lambda sm, sid: sm.get_chat_history(sid, after="no-such-message"), "after"),
        (lambda sm, sid: sm.create_session(model="m" * 256), "model"),
        (lambda sm, sid: sm.save_phase_completion(sid, "p", "\udfff", 1, 0), "output"),
    ],
)
def test_bad_worktree_input_writes_nothing(sm: StateManager, call, field: str) -> None:
    sid = sm.create_session(kind="competition", task="t")
    sm.add_instance(sid, 1, **REQUIRED)
    before = (sm.get_worktree_session(sid), sm.get_total_sessions())
    with pytest.raises(InvalidInput) as info:
        call(sm, sid)
    assert info.value.field == field
    assert (sm.get_worktree_session(sid), sm.get_total_sessions()) == before


def test_unknown_session_for_instances_and_chat(sm: StateManager) -> None:
    with pytest.raises(SessionNotFound):
        sm.add_instance("missing", 1, **REQUIRED)
    with pytest.raises(SessionNotFound):
        sm.update_instance("missing", 1, status="running")
    with pytest.raises(SessionNotFound):
        sm.add_chat_message("missing", "user", "hi")
    assert sm.get_total_sessions() == 0


def test_chat_in_insertion_order_with_paging(sm: StateManager) -> None:
    sid = sm.create_session(kind="competition")
    ids = [
        sm.add_chat_message(sid, role, f"message {i} 😀", instance_number=i % 2 or None)
        for i, role in enumerate(["user", "assistant", "system"] * 4)
    ]
    history = sm.get_chat_history(sid)
    assert [m.id for m in history] == ids
    assert history[1].role == "assistant" and history[1].instance_id == 1
    assert history[0].instance_id is None and history[0].timestamp.tzinfo is not None
    assert [m.id for m in sm.get_chat_history(sid, limit=5)] == ids[:5]
    assert [m.id for m in sm.get_chat_history(sid, after=ids[4], limit=3)] == ids[5:8]
    assert sm.get_chat_history(sid, after=ids[-1]) == []
    sm.update_session_status(sid, "completed")
    sm.add_chat_message(sid, "user", "a question after the competition")
    assert len(sm.get_chat_history(sid)) == 13


def _append_chat(url: str, session_id: str, worker: int, count: int) -> None:
    with StateManager(url) as sm:
        for i in range(count):
            sm.add_chat_message(session_id, "user", f"{worker}:{i}")


def test_concurrent_appends_keep_every_message_in_order(sm: StateManager, store_url: str) -> None:
    sid = sm.create_session(kind="competition")
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_append_chat, args=(store_url, sid, w, 25)) for w in range(4)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
        assert process.exitcode == 0
    history = sm.get_chat_history(sid)
    assert len(history) == 100
    for worker in range(4):
        mine = [m.content for m in history if m.content.startswith(f"{worker}:")]
        assert mine == [f"{worker}:{i}" for i in range(25)]


def test_whole_session_round_trip_and_replace(sm: StateManager, tmp_path: Path) -> None:
    legacy = _legacy()
    sm.save_worktree_session(legacy, workspace=tmp_path)
    assert sm.get_worktree_session(legacy.id) == legacy
    session = sm.get_session(legacy.id)
    assert session is not None
    assert (session.kind, session.duration_ms, session.winner_instance) == (
        "competition",
        125_000,
        2,
    )
    replaced = legacy.model_copy(deep=True)
    replaced.status = "completed"  # type: ignore[assignment]  # validated, converted
    replaced.completed_at = T0 + timedelta(minutes=2)
    replaced.instances = replaced.instances[:1]
    replaced.chat_history.append(
        ChatMessage(id="legacy-1-m9", role="assistant", content="done", timestamp=T0)
    )
    sm.save_worktree_session(replaced)
    assert sm.get_worktree_session(legacy.id) == replaced
    changes = [e.metadata["to"] for e in sm.get_events(legacy.id) if "status" in e.event_type]
    assert changes == ["completed"]
    assert sm.get_worktree_session("missing") is None


def test_invalid_legacy_objects(sm: StateManager) -> None:
    with pytest.raises(ValidationError, match="duplicate instance_id"):
        _legacy(instances=[WorktreeInstance(instance_id=1, status="idle", **REQUIRED)] * 2)
    message = ChatMessage(id="same", role="user", content="x", timestamp=T0)
    with pytest.raises(ValidationError, match="duplicate chat message id"):
        _legacy(chat_history=[message, message])
    with pytest.raises(ValidationError):
        _legacy(status="finished")
    with pytest.raises(ValidationError):
        _legacy(created_at=datetime(2025, 1, 1))  # naive
    with pytest.raises(ValidationError, match="NUL"):
        _legacy(task="a\x00b")
    legacy = _legacy()
    with pytest.raises(ValidationError):
        legacy.status = "finished"  # type: ignore[assignment]
    with pytest.raises(InvalidInput):
        sm.save_worktree_session({"id": "x"})  # type: ignore[arg-type]
    assert sm.get_total_sessions() == 0


def test_message_ids_are_unique_across_sessions(sm: StateManager) -> None:
    sm.save_worktree_session(_legacy("first"))
    clash = _legacy(
        "second",
        chat_history=[ChatMessage(id="first-m0", role="user", content="again", timestamp=T0)],
    )
    with pytest.raises(InvalidInput):
        sm.save_worktree_session(clash)
    assert sm.get_worktree_session("second") is None


def test_list_a_workspace_newest_first_with_filters(sm: StateManager, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    for i, (kind, status) in enumerate(
        [("competition", "completed"), ("ensemble", "running"), ("competition", "running")]
    ):
        sm.save_worktree_session(
            _legacy(f"s{i}", type=kind, status=status, created_at=T0 + timedelta(hours=i)),
            workspace=tmp_path,
        )
    sm.save_worktree_session(_legacy("elsewhere"), workspace=other)
    assert [s.id for s in sm.list_worktree_sessions(tmp_path)] == ["s2", "s1", "s0"]
    assert [s.id for s in sm.list_worktree_sessions(tmp_path, type="competition")] == ["s2", "s0"]
    assert [s.id for s in sm.list_worktree_sessions(str(tmp_path), status="running")] == [
        "s2",
        "s1",
    ]
    listed = sm.list_worktree_sessions(tmp_path)[0]
    assert len(listed.instances) == 2 and len(listed.chat_history) == 3
    assert sm.list_worktree_sessions(tmp_path / "nothing-here") == []
    with pytest.raises(InvalidInput):
        sm.list_worktree_sessions(tmp_path, status="finished")


def test_a_whole_object_save_keeps_the_status_rules_and_milliseconds(sm: StateManager) -> None:
    done = _legacy("done", status="completed", completed_at=T0 + timedelta(minutes=1))
    sm.save_worktree_session(done)
    before = sm.get_worktree_session("done")
    reopened = WorktreeSession.model_validate(
        {**done.model_dump(), "status": "running", "completed_at": None}
    )
    with pytest.raises(InvalidTransition):
        sm.save_worktree_session(reopened)
    assert sm.get_worktree_session("done") == before
    sid = sm.create_session(kind="competition")
    time.sleep(0.01)  # a duration of some milliseconds, which whole seconds would lose
    sm.update_session_status(sid, "failed")
    stored = sm.get_session(sid)
    assert stored is not None and stored.duration_ms is not None and stored.duration_ms >= 10
    legacy = sm.get_worktree_session(sid)
    assert legacy is not None
    sm.save_worktree_session(legacy)  # a round trip through whole seconds
    again = sm.get_session(sid)
    assert again is not None and again.duration_ms == stored.duration_ms
    longer = WorktreeSession.model_validate(
        {**legacy.model_dump(), "total_duration": stored.duration_ms // 1000 + 5}
    )
    sm.save_worktree_session(longer)
    changed = sm.get_session(sid)
    assert changed is not None and changed.duration_ms == (stored.duration_ms // 1000 + 5) * 1000
