"""statekeeper: crash-safe persistence for AI-agent workflow state on SQLite and PostgreSQL.

The manager and the DTOs load on first use (PEP 562), so `statekeeper --help` and importing
the enums or errors do not pay for SQLAlchemy, Alembic and pydantic.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

from statekeeper.enums import AgentStatus, ChatRole, InstanceStatus, SessionStatus, TaskStatus
from statekeeper.errors import (
    AgentNotFound,
    ImportFailed,
    InvalidInput,
    InvalidTransition,
    MigrationError,
    ReadOnlyError,
    SchemaOutOfDate,
    SessionCompleted,
    SessionNotFound,
    SnapshotNotFound,
    StateError,
    StorageBusy,
    StorageError,
    VersionConflict,
)

if TYPE_CHECKING:
    from statekeeper.aio import AsyncStateManager
    from statekeeper.manager import StateManager
    from statekeeper.schemas import (
        AgentState,
        ChatMessage,
        CostTrend,
        Event,
        ImportStats,
        IntegrityReport,
        MigrationRecord,
        PhaseCompletion,
        PhaseResult,
        SchemaStatus,
        SearchHit,
        Session,
        SessionStatistics,
        SessionSummary,
        Snapshot,
        SnapshotPruneReport,
        StateTransition,
        Task,
        ValidationReport,
        WorkflowContext,
        WorktreeInstance,
        WorktreeSession,
    )

_LAZY = {
    "AsyncStateManager": "statekeeper.aio",
    "StateManager": "statekeeper.manager",
    "SchemaStatus": "statekeeper.schemas",
    "CostTrend": "statekeeper.schemas",
    "WorktreeSession": "statekeeper.schemas",
    "WorktreeInstance": "statekeeper.schemas",
    "ValidationReport": "statekeeper.schemas",
    "SearchHit": "statekeeper.schemas",
    "ImportStats": "statekeeper.schemas",
    "ChatMessage": "statekeeper.schemas",
    "Event": "statekeeper.schemas",
    "IntegrityReport": "statekeeper.schemas",
    "MigrationRecord": "statekeeper.schemas",
    "PhaseCompletion": "statekeeper.schemas",
    "PhaseResult": "statekeeper.schemas",
    "Session": "statekeeper.schemas",
    "SessionStatistics": "statekeeper.schemas",
    "SessionSummary": "statekeeper.schemas",
    "WorkflowContext": "statekeeper.schemas",
    "AgentState": "statekeeper.schemas",
    "StateTransition": "statekeeper.schemas",
    "Snapshot": "statekeeper.schemas",
    "SnapshotPruneReport": "statekeeper.schemas",
    "Task": "statekeeper.schemas",
}

__all__ = [
    "AgentNotFound",
    "AgentState",
    "AgentStatus",
    "AsyncStateManager",
    "ChatMessage",
    "ChatRole",
    "CostTrend",
    "Event",
    "ImportFailed",
    "ImportStats",
    "InstanceStatus",
    "IntegrityReport",
    "InvalidInput",
    "InvalidTransition",
    "MigrationError",
    "MigrationRecord",
    "PhaseCompletion",
    "PhaseResult",
    "ReadOnlyError",
    "SchemaOutOfDate",
    "SchemaStatus",
    "SearchHit",
    "Session",
    "SessionCompleted",
    "SessionNotFound",
    "SessionStatistics",
    "SessionStatus",
    "SessionSummary",
    "Snapshot",
    "SnapshotNotFound",
    "SnapshotPruneReport",
    "StateError",
    "StateManager",
    "StateTransition",
    "StorageBusy",
    "StorageError",
    "Task",
    "TaskStatus",
    "ValidationReport",
    "VersionConflict",
    "WorkflowContext",
    "WorktreeInstance",
    "WorktreeSession",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """Import the manager and DTOs when first asked for."""
    if name not in _LAZY:
        raise AttributeError(f"module 'statekeeper' has no attribute {name!r}")
    value = getattr(import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
