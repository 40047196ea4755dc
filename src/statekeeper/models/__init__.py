"""SQLAlchemy ORM models, one module per aggregate; these never leave the service layer."""

from statekeeper.models.base import Base
from statekeeper.models.event import EventRow, MigrationRow
from statekeeper.models.session import ContextRow, PhaseRow, SessionRow, WorkspaceRow
from statekeeper.models.worktree import ChatMessageRow, InstanceRow

__all__ = [
    "Base",
    "ChatMessageRow",
    "ContextRow",
    "EventRow",
    "InstanceRow",
    "MigrationRow",
    "PhaseRow",
    "SessionRow",
    "WorkspaceRow",
]
