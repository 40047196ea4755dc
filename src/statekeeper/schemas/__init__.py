"""Pydantic DTOs: the values the API returns and accepts (ORM rows become these in services)."""

from statekeeper.schemas.agents import (
    AgentState,
    Snapshot,
    SnapshotPruneReport,
    StateTransition,
    Task,
)
from statekeeper.schemas.base import DTO, Money
from statekeeper.schemas.reports import (
    CostTrend,
    Event,
    IntegrityReport,
    MigrationRecord,
    SchemaStatus,
    SessionStatistics,
)
from statekeeper.schemas.sessions import (
    PhaseCompletion,
    PhaseResult,
    Session,
    SessionSummary,
    WorkflowContext,
)
from statekeeper.schemas.worktree import (
    ChatMessage,
    ImportStats,
    SearchHit,
    ValidationReport,
    WorktreeInstance,
    WorktreeSession,
)

__all__ = [
    "DTO",
    "AgentState",
    "ChatMessage",
    "CostTrend",
    "Event",
    "ImportStats",
    "IntegrityReport",
    "MigrationRecord",
    "Money",
    "PhaseCompletion",
    "PhaseResult",
    "SchemaStatus",
    "SearchHit",
    "Session",
    "SessionStatistics",
    "SessionSummary",
    "Snapshot",
    "SnapshotPruneReport",
    "StateTransition",
    "Task",
    "ValidationReport",
    "WorkflowContext",
    "WorktreeInstance",
    "WorktreeSession",
]
