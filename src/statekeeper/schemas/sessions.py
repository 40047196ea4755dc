"""Sessions, phase checkpoints and workflow context, as the API returns them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from statekeeper.enums import SessionStatus
from statekeeper.schemas.base import DTO, METADATA, Money, StoredObject

__all__ = ["PhaseCompletion", "PhaseResult", "Session", "SessionSummary", "WorkflowContext"]


class SessionSummary(DTO):
    """One line of session history."""

    id: str
    subject: str | None
    kind: str
    status: SessionStatus
    workspace_id: str | None
    created_at: datetime
    completed_at: datetime | None
    duration_ms: int | None
    cost_usd: Money


class Session(SessionSummary):
    """A whole session row."""

    task: str | None
    updated_at: datetime
    tokens_in: int
    tokens_out: int
    output_markdown: str | None
    error_message: str | None
    model: str | None
    timeout_seconds: int | None
    preserve_worktrees: bool | None
    winner_instance: int | None
    runtime_mix: list[str] | None
    files_changed: int | None
    lines_added: int | None
    lines_deleted: int | None
    metadata: StoredObject = Field(default_factory=dict, validation_alias=METADATA)


class PhaseCompletion(DTO):
    """A completed phase: its output as stored, and what it cost."""

    session_id: str
    phase_id: str
    completed_at: datetime
    duration_ms: int
    output: Any
    cost_usd: Money
    tokens_in: int
    tokens_out: int


class WorkflowContext(DTO):
    """What a resumed run needs: the saved data, the last completed phase and cost so far."""

    data: StoredObject
    last_completed_phase: str | None
    accumulated_cost: Money


class PhaseResult(BaseModel):
    """What a phase function may return to `run_phase` besides a bare output."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    output: Any = None
    cost_usd: Money | int | str | float = 0
    tokens_in: int = 0
    tokens_out: int = 0
    context: dict[str, Any] | None = None
