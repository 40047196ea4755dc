"""Status and role enums: StrEnums equal to their lowercase strings."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["AgentStatus", "ChatRole", "InstanceStatus", "SessionStatus", "TaskStatus"]


class SessionStatus(StrEnum):
    """Where a session is; `completed` is final, `completed` and `failed` are terminal."""

    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        """Whether reaching this status stamps completed_at and duration_ms."""
        return self in (SessionStatus.COMPLETED, SessionStatus.FAILED)


class InstanceStatus(StrEnum):
    """Where a worktree agent instance is."""

    IDLE = "idle"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    PAUSED = "paused"
    ARCHIVED = "archived"


class ChatRole(StrEnum):
    """Who wrote a chat message."""

    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"


class AgentStatus(StrEnum):
    """Where an agent of the agent store is."""

    IDLE = "idle"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    FAILED = "failed"


class TaskStatus(StrEnum):
    """Where a task is."""

    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
