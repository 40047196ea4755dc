"""max_value_bytes: a user value over the limit is InvalidInput naming the field and the limit,
refused before anything is written; a value exactly at the limit is stored.

Each limited field runs on both engines and both managers: the probe reads what a call
would change, so "nothing written" is checked by comparing it before and after.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from statekeeper import (
    AsyncStateManager,
    ChatMessage,
    InvalidInput,
    StateManager,
    WorktreeInstance,
    WorktreeSession,
)
from statekeeper.api.base import DEFAULT_MAX_VALUE_BYTES, StoreOptions, store_options
from statekeeper.values import check_size, dump_json

LIMIT = 1_000
T0 = datetime(2025, 1, 13, 10, 0, tzinfo=UTC)
INSTANCE = {"worktree_path": "/w/1", "branch": "b1", "agent_name": "claude", "tmux_session_id": "t"}


def text_of(size: int) -> str:
    """A text of exactly `size` bytes of UTF-8."""
    return "x" * size


def json_of(size: int) -> str:
    """A JSON string value whose serialized form takes exactly `size` bytes."""
    return "x" * (size - 2)


def object_of(size: int) -> dict[str, Any]:
    """A JSON object whose serialized form takes exactly `size` bytes: {"k":"x..."}."""
    value = {"k": "x" * (size - 8)}
    assert len(dump_json(value, "v")) == size
    return value


def _legacy(sid: str, *, task: str = "t", output: str = "o", content: str = "c") -> Any:
    return WorktreeSession(
        id=sid,
        type="competition",
        task=task,
        status="running",
        created_at=T0,
        updated_at=T0,
        instances=[WorktreeInstance(instance_id=1, status="running", output=output, **INSTANCE)],
        chat_history=[
            ChatMessage(id=f"{sid}-m1", role="user", content=content, timestamp=T0),
        ],
    )


@dataclass(frozen=True)
class Case:
    """One limited field: the call given a value of `size` bytes, and what it would change."""

    field: str
    call: Callable[[StateManager, str, int], object]
    probe: Callable[[StateManager, str], object]


def _phases(sm: StateManager, sid: str) -> object:
    return [(p.phase_id, p.output) for p in sm.get_completed_phases(sid)], sm.load_context(sid)


def _context(sm: StateManager, sid: str) -> object:
    context = sm.load_context(sid)
    return None if context is None else context.data


def _agent(sm: StateManager, sid: str) -> object:
    state = sm.load_agent_state("agent-1")
    return None if state is None else (state.version, state.state_data, state.metadata)


def _history(sm: StateManager, sid: str) -> object:
    return [(t.state_after, t.metadata) for t in sm.get_state_history("agent-1")]


def _sessions(sm: StateManager, sid: str) -> object:
    return sm.get_total_sessions()


def _chat(sm: StateManager, sid: str) -> object:
    return [m.content for m in sm.get_chat_history(sid)]


def _instances(sm: StateManager, sid: str) -> object:
    return [(i.instance_id, i.output) for i in sm.get_instances(sid)]


def _notes(sm: StateManager, sid: str) -> object:
    return [(e.content, e.metadata) for e in sm.get_events_by_type("app.note")]


def _markdown(sm: StateManager, sid: str) -> object:
    session = sm.get_session(sid)
    assert session is not None
    return session.output_markdown


def _task(sm: StateManager, sid: str) -> object:
    return sm.get_task("task-1")


def _worktree(sm: StateManager, sid: str) -> object:
    return sm.get_worktree_session("legacy-1")


CASES = [
    Case(
        "output",
        lambda sm, sid, n: sm.save_phase_completion(sid, "plan", json_of(n), 1, 0),
        _phases,
    ),
    Case(
        "context",
        lambda sm, sid, n: sm.save_phase_completion(sid, "plan", "ok", 1, 0, context=object_of(n)),
        _phases,
    ),
    Case("data", lambda sm, sid, n: sm.save_context(sid, object_of(n)), _context),
    Case("metadata", lambda sm, sid, n: sm.create_session("s", metadata=object_of(n)), _sessions),
    Case("task", lambda sm, sid, n: sm.create_session("s", task=text_of(n)), _sessions),
    Case("markdown", lambda sm, sid, n: sm.save_markdown_output(sid, text_of(n)), _markdown),
    Case("content", lambda sm, sid, n: sm.add_chat_message(sid, "user", text_of(n)), _chat),
    Case(
        "output",
        lambda sm, sid, n: sm.add_instance(sid, 1, **INSTANCE, output=text_of(n)),
        _instances,
    ),
    Case(
        "state_data",
        lambda sm, sid, n: sm.save_agent_state({"agent_id": "agent-1", "state_data": json_of(n)}),
        _agent,
    ),
    Case(
        "metadata",
        lambda sm, sid, n: sm.save_agent_state({"agent_id": "agent-1", "metadata": object_of(n)}),
        _agent,
    ),
    Case(
        "content",
        lambda sm, sid, n: sm.record_event("app.note", text_of(n), session_id=sid),
        _notes,
    ),
    Case(
        "metadata",
        lambda sm, sid, n: sm.record_event("app.note", "note", metadata=object_of(n)),
        _notes,
    ),
    Case(
        "description",
        lambda sm, sid, n: sm.save_task({"id": "task-1", "title": "t", "description": text_of(n)}),
        _task,
    ),
    Case(
        "metadata",
        lambda sm, sid, n: sm.save_task({"id": "task-1", "title": "t", "metadata": object_of(n)}),
        _task,
    ),
    Case(
        "task",
        lambda sm, sid, n: sm.save_worktree_session(_legacy("legacy-1", task=text_of(n))),
        _worktree,
    ),
    Case(
        "instances[0].output",
        lambda sm, sid, n: sm.save_worktree_session(_legacy("legacy-1", output=text_of(n))),
        _worktree,
    ),
    Case(
        "chat_history[0].content",
        lambda sm, sid, n: sm.save_worktree_session(_legacy("legacy-1", content=text_of(n))),
        _worktree,
    ),
]
IDS = [
    "phase-output",
    "phase-context",
    "save-context",
    "session-metadata",
    "session-task",
    "markdown",
    "chat-content",
    "instance-output",
    "agent-state",
    "agent-metadata",
    "event-content",
    "event-metadata",
    "task-description",
    "task-metadata",
    "worktree-task",
    "worktree-instance-output",
    "worktree-chat-content",
]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_one_byte_over_the_limit_is_refused_and_writes_nothing(store_url: str, case: Case) -> None:
    """On the sync manager: the async one runs the same generated checks (tests below)."""
    with StateManager(store_url, max_value_bytes=LIMIT) as sm:
        _over_and_at_the_limit(sm, case)


def _over_and_at_the_limit(sm: StateManager, case: Case) -> None:
    sid = sm.create_session("limits")
    sm.save_agent_state({"agent_id": "agent-2"})  # unrelated, so the store is not empty
    before = case.probe(sm, sid)
    events = sm.get_events(sid)

    with pytest.raises(InvalidInput) as caught:
        case.call(sm, sid, LIMIT + 1)

    assert caught.value.field == case.field
    assert f"{LIMIT} bytes" in str(caught.value)
    assert "max_value_bytes" in str(caught.value)
    assert case.probe(sm, sid) == before
    assert sm.get_events(sid) == events
    assert sm.integrity_check().ok

    case.call(sm, sid, LIMIT)  # exactly at the limit: stored
    assert case.probe(sm, sid) != before


@pytest.mark.parametrize("case", [CASES[1], CASES[6], CASES[8]], ids=["context", "chat", "agent"])
def test_the_async_manager_refuses_the_same(
    open_sm: Callable[..., StateManager], manager_kind: str, case: Case
) -> None:
    _over_and_at_the_limit(open_sm(max_value_bytes=LIMIT), case)


def test_bytes_are_counted_as_utf8(open_sm: Callable[..., StateManager]) -> None:
    """A character may take several bytes: the limit is on bytes, not characters."""
    sm = open_sm(max_value_bytes=999)
    sid = sm.create_session("utf-8")
    euro = "€" * 333  # 999 bytes in 333 characters
    with pytest.raises(InvalidInput, match="1000 bytes is over the limit of 999 bytes"):
        sm.add_chat_message(sid, "user", euro + "x")
    with pytest.raises(InvalidInput, match="1001 bytes is over the limit of 999 bytes"):
        sm.save_phase_completion(sid, "p", euro, 1, 0)  # serialized: 2 quotes more
    assert sm.get_chat_history(sid) == []
    sm.add_chat_message(sid, "user", euro)
    sm.save_phase_completion(sid, "p", euro[:-1], 1, 0)  # 998 bytes
    assert sm.get_completed_phases(sid)[0].output == euro[:-1]
    assert [m.content for m in sm.get_chat_history(sid)] == [euro]


def test_default_limit_is_16_mib_and_none_means_no_limit(
    open_sm: Callable[..., StateManager],
) -> None:
    assert DEFAULT_MAX_VALUE_BYTES == 16 * 1024 * 1024
    assert StoreOptions().max_value_bytes == DEFAULT_MAX_VALUE_BYTES
    sm = open_sm()
    sid = sm.create_session("default")
    with pytest.raises(InvalidInput, match=f"limit of {DEFAULT_MAX_VALUE_BYTES} bytes"):
        sm.save_context(sid, object_of(DEFAULT_MAX_VALUE_BYTES + 1))
    assert sm.load_context(sid) is None

    unlimited = open_sm(max_value_bytes=None)
    unlimited.save_context(sid, object_of(LIMIT * 100))
    assert unlimited.load_context(sid) is not None


@pytest.mark.parametrize("bad", [0, -1, "16", 1.5, True])
def test_a_bad_limit_is_invalid_input(bad: Any) -> None:
    with pytest.raises(InvalidInput, match="max_value_bytes"):
        store_options("default", 10, None, bad)
    with pytest.raises(InvalidInput, match="max_value_bytes"):
        StateManager("unused.db", max_value_bytes=bad)
    with pytest.raises(InvalidInput, match="max_value_bytes"):
        AsyncStateManager("unused.db", max_value_bytes=bad)


def test_check_size_decides_huge_texts_from_their_length() -> None:
    assert check_size("x" * 250, "f", 1000) == "x" * 250
    assert check_size("€" * 333, "f", 999) == "€" * 333
    with pytest.raises(InvalidInput, match="longer than the limit of 10 bytes"):
        check_size("x" * 11, "f", 10)
    with pytest.raises(InvalidInput, match="12 bytes is over the limit of 10 bytes"):
        check_size("€" * 4, "f", 10)
    assert check_size("x" * 10**6, "f", None) == "x" * 10**6
