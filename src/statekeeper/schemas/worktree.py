"""Worktree sessions as the legacy editor kept them, field for field, and import reports.

Both the seed's snake_case names (`type`, `chat_history`, `instance_id`) and the camelCase
a Tauri front end writes (`chatHistory`, `instanceId`) are accepted; output is snake_case.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal, Self

from pydantic import (
    AwareDatetime,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from statekeeper.enums import ChatRole, InstanceStatus, SessionStatus
from statekeeper.schemas.base import DTO
from statekeeper.values import unstorable

__all__ = [
    "ChatMessage",
    "ImportStats",
    "SearchHit",
    "ValidationReport",
    "WorktreeInstance",
    "WorktreeSession",
]

Count = Field(default=None, ge=0, le=2**31 - 1)


class LegacyDTO(DTO):
    """Accepts snake_case and camelCase keys; strict about unknown ones."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        validate_assignment=True,
    )

    @model_validator(mode="after")
    def _storable(self, info: ValidationInfo) -> Self:
        """Refuse what one engine could not store: NUL, lone surrogates, times beyond UTC."""
        if info.context is not None and info.context.get("storable"):
            return self  # the caller vouches for it (schemas.base.STORABLE)
        for name, value in self.__dict__.items():
            for item in value if isinstance(value, list) else (value,):
                if isinstance(item, str) and (problem := unstorable(item)):
                    raise ValueError(f"{name} {problem}")
                if isinstance(item, datetime):
                    try:
                        item.astimezone(UTC)
                    except OverflowError:
                        raise ValueError(f"{name} is out of range in UTC") from None
        return self


class WorktreeInstance(LegacyDTO):
    """One agent in its own git worktree (legacy `WorktreeInstance`)."""

    instance_id: int = Field(ge=0, le=2**31 - 1)
    worktree_path: str
    branch: str
    agent_name: str
    status: InstanceStatus
    tmux_session_id: str
    output: str | None = None
    start_time: AwareDatetime | None = None
    end_time: AwareDatetime | None = None
    files_changed: int | None = Count
    lines_added: int | None = Count
    lines_deleted: int | None = Count
    runtime: str | None = Field(default=None, max_length=64)
    model: str | None = Field(default=None, max_length=255)
    runtime_label: str | None = None


class ChatMessage(LegacyDTO):
    """A message of a session's chat (legacy `ChatMessage`)."""

    id: str = Field(min_length=1, max_length=255)
    role: ChatRole
    content: str
    timestamp: AwareDatetime
    instance_id: int | None = Field(default=None, ge=0, le=2**31 - 1)


class WorktreeSession(LegacyDTO):
    """A whole worktree session with its instances and chat (legacy `WorktreeSession`).

    `type` is the session's kind; `total_duration` is in seconds, as the editor wrote it.
    """

    id: str = Field(min_length=1, max_length=255)
    type: str = Field(min_length=1, max_length=64)
    task: str
    status: SessionStatus
    created_at: AwareDatetime
    updated_at: AwareDatetime
    completed_at: AwareDatetime | None = None
    instances: list[WorktreeInstance] = Field(default_factory=list)
    chat_history: list[ChatMessage] = Field(default_factory=list)
    model: str | None = Field(default=None, max_length=255)
    timeout_seconds: int | None = Field(default=None, ge=0, le=2**32 - 1)  # the seed's u32
    preserve_worktrees: bool | None = None
    winner_id: int | None = Count
    runtime_mix: list[str] | None = None
    total_duration: int | None = Field(default=None, ge=0, le=2**53)
    total_files_changed: int | None = Count
    total_lines_added: int | None = Count
    total_lines_deleted: int | None = Count

    @field_validator("task", "instances", "chat_history", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any, info: ValidationInfo) -> Any:
        """The editor may write null for an empty task, instance list or chat: read it so."""
        if value is None:
            return "" if info.field_name == "task" else []
        return value

    @model_validator(mode="after")
    def _unique_children(self) -> Self:
        """Instance numbers and message ids identify rows: each may appear once."""
        numbers = [i.instance_id for i in self.instances]
        if len(set(numbers)) != len(numbers):
            raise ValueError(f"duplicate instance_id in {sorted(numbers)}")
        ids = [m.id for m in self.chat_history]
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate chat message id")
        return self


class SearchHit(DTO):
    """A session matching a search: where it matched, a snippet, and a rank (higher is better)."""

    session_id: str
    source: Literal["subject", "task", "chat", "instance_output"]
    snippet: str
    rank: float


class ImportStats(DTO):
    """What an import did: `errors` lists (file, message) for what could not be imported."""

    imported: int = 0
    skipped: int = 0
    errors: list[tuple[str, str]] = Field(default_factory=list)
    updated: int = 0
    """Stored sessions replaced by a legacy copy that differed (`update=True`)."""


class ValidationReport(DTO):
    """Sessions of legacy files that the store lacks or holds differently; unreadable files.

    `errors` lists (file, reason) for each file that could not be read as a JSON array.
    """

    missing: list[str] = Field(default_factory=list)
    mismatched: list[str] = Field(default_factory=list)
    errors: list[tuple[str, str]] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every file was read and every session in it is stored exactly as written."""
        return not self.missing and not self.mismatched and not self.errors
