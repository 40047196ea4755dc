"""Builders of the legacy editor's session files, written the way the editor wrote them."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic.alias_generators import to_camel

from statekeeper.importers import legacy
from statekeeper.schemas import WorktreeSession

START = datetime(2024, 11, 20, 10, 30, tzinfo=UTC)
UNICODE = "emoji 😀🚀👩‍💻, CJK 漢字かなカナ한국어, RTL עברית العربية, combining é"


def at(minutes: int, *, offset: str = "Z") -> str:
    """An RFC 3339 timestamp `minutes` after START, as chrono writes it (nanoseconds)."""
    moment = START + timedelta(minutes=minutes)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.123456789") + offset


def instance(
    number: int, *, output: str | None = "all tests pass", **fields: Any
) -> dict[str, Any]:
    """A legacy WorktreeInstance with every field set."""
    return {
        "instance_id": number,
        "worktree_path": f"/tmp/worktrees/agent-{number}",
        "branch": f"competition/agent-{number}",
        "agent_name": "backend-developer",
        "status": "completed",
        "tmux_session_id": f"ait42-{number}",
        "output": output,
        "start_time": at(number),
        "end_time": at(number + 30, offset="+09:00"),
        "files_changed": 3,
        "lines_added": 120,
        "lines_deleted": 7,
        "runtime": "claude",
        "model": "sonnet",
        "runtime_label": "Claude Code",
        **fields,
    }


def message(session_id: str, n: int, **fields: Any) -> dict[str, Any]:
    """A legacy ChatMessage whose id is unique across sessions."""
    return {
        "id": f"{session_id}-m{n}",
        "role": ("user", "assistant", "system")[n % 3],
        "content": f"message {n}",
        "timestamp": at(n),
        "instance_id": n % 2 or None,
        **fields,
    }


def session(
    session_id: str, *, instances: int = 2, messages: int = 3, minute: int = 0, **fields: Any
) -> dict[str, Any]:
    """A legacy WorktreeSession with every field set, its instances and its chat."""
    return {
        "id": session_id,
        "type": "competition",
        "task": f"fix the flaky test ({session_id})",
        "status": "completed",
        "created_at": at(minute),
        "updated_at": at(minute + 60),
        "completed_at": at(minute + 61, offset="-05:00"),
        "instances": [instance(n) for n in range(1, instances + 1)],
        "chat_history": [message(session_id, n) for n in range(messages)],
        "model": "sonnet",
        "timeout_seconds": 3600,
        "preserve_worktrees": True,
        "winner_id": 1,
        "runtime_mix": ["claude", "codex"],
        "total_duration": 3660,
        "total_files_changed": 6,
        "total_lines_added": 240,
        "total_lines_deleted": 14,
        **fields,
    }


def minimal_session(session_id: str, *, minute: int = 0) -> dict[str, Any]:
    """A legacy WorktreeSession with only the required fields."""
    return {
        "id": session_id,
        "type": "ensemble",
        "task": "",
        "status": "running",
        "created_at": at(minute),
        "updated_at": at(minute),
    }


def camel(value: Any) -> Any:
    """The same object with camelCase keys, as the Tauri front end writes them."""
    if isinstance(value, dict):
        return {to_camel(key): camel(item) for key, item in value.items()}
    if isinstance(value, list):
        return [camel(item) for item in value]
    return value


def write(path: Path, sessions: Iterable[Any]) -> Path:
    """Write sessions as one legacy file (UTF-8, non-ASCII as is, like serde_json)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(list(sessions), ensure_ascii=False, indent=2), encoding="utf-8")
    return path


def dtos(sessions: Iterable[dict[str, Any]]) -> list[WorktreeSession]:
    """What the store should hold for these legacy objects (instances by number)."""
    return [legacy.normalized(WorktreeSession.model_validate(s)) for s in sessions]


def generate(directory: Path, *, sessions: int, instances: int, messages: int, files: int) -> Path:
    """A directory of `files` legacy files sharing `sessions` sessions between them."""
    per_file = -(-sessions // files)
    for f in range(files):
        numbers = range(f * per_file, min((f + 1) * per_file, sessions))
        write(
            directory / f"workspace-{f:03d}.json",
            (
                session(f"gen-{n:05d}", instances=instances, messages=messages, minute=n)
                for n in numbers
            ),
        )
    return directory
