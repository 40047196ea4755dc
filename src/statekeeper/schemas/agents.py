"""The agent store's values: agent states, transitions, snapshots, retention reports, tasks."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import Field

from statekeeper.enums import AgentStatus, TaskStatus
from statekeeper.schemas.base import DTO, METADATA, StoredObject

__all__ = ["AgentState", "Snapshot", "SnapshotPruneReport", "StateTransition", "Task"]


class AgentState(DTO):
    """An agent's saved state. `version` and the timestamps are set by the store: optional on
    input, and ignored there (use `expected_version` to save only over a known version).

    `name` defaults to the agent id. `namespace` is the manager's; on input it may be left
    out or must equal it.
    """

    agent_id: str = Field(min_length=1, max_length=255)
    name: str | None = None
    status: AgentStatus = AgentStatus.IDLE
    metadata: StoredObject = Field(default_factory=dict, validation_alias=METADATA)
    state_data: Any = None
    version: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    namespace: str | None = None
    deleted_at: datetime | None = None


class StateTransition(DTO):
    """One status change of an agent (`state_before` None: its creation)."""

    id: int
    namespace: str
    agent_id: str
    state_before: str | None
    state_after: str
    reason: str | None
    metadata: StoredObject = Field(default_factory=dict, validation_alias=METADATA)
    created_at: datetime


class Snapshot(DTO):
    """A recovery point of a session or an agent.

    `payload` (what it holds) is filled by `get_snapshot` and left None by `list_snapshots`;
    `size_bytes` is the size of its JSON text, `compressed` whether it is stored compressed.
    """

    id: str
    session_id: str | None
    agent_id: str | None
    namespace: str | None
    description: str | None
    created_at: datetime
    expires_at: datetime | None
    size_bytes: int
    compressed: bool
    payload: Any = None


class SnapshotPruneReport(DTO):
    """What snapshot retention deleted (or, with `dry_run`, would delete), by snapshot id."""

    dry_run: bool
    expired: list[str] = Field(default_factory=list)
    """Snapshots past their `expires_at`."""
    over_limit: list[str] = Field(default_factory=list)
    """The oldest snapshots of owners holding more than the manager's `max_snapshots`."""

    @property
    def total(self) -> int:
        """How many snapshots were (or would be) deleted."""
        return len(self.expired) + len(self.over_limit)


class Task(DTO):
    """A unit of work and who it is assigned to; `id` is a new UUID unless given."""

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), min_length=1, max_length=255)
    title: str
    description: str | None = None
    status: TaskStatus = TaskStatus.PENDING
    assigned_to: str | None = Field(default=None, max_length=255)
    metadata: StoredObject = Field(default_factory=dict, validation_alias=METADATA)
    created_at: datetime | None = None
    updated_at: datetime | None = None
