"""SQLAlchemy ORM models, one module per aggregate: the schema, and the public read API.

Query them through `StateManager.session()` (read-only) or `transaction()`:
`s.get(SessionRow, session_id)`, then `.phases`, `.context`, `.instances`, `.chat_messages`,
`.events`, `.snapshots` and `.workspace` by attribute; agents (`AgentRow`) have
`.transitions` and `.snapshots`. Write statekeeper's own tables through the API,
which keeps totals, events and versions. See docs/orm.md.
"""

from statekeeper.models.agent import AgentRow, SnapshotRow, StateTransitionRow, TaskRow
from statekeeper.models.base import Base
from statekeeper.models.event import EventRow, MigrationRow
from statekeeper.models.graph import GraphCheckpointRow, GraphWriteRow
from statekeeper.models.session import ContextRow, PhaseRow, SessionRow, WorkspaceRow
from statekeeper.models.worktree import ChatMessageRow, InstanceRow

__all__ = [
    "AgentRow",
    "Base",
    "ChatMessageRow",
    "ContextRow",
    "EventRow",
    "GraphCheckpointRow",
    "GraphWriteRow",
    "InstanceRow",
    "MigrationRow",
    "PhaseRow",
    "SessionRow",
    "SnapshotRow",
    "StateTransitionRow",
    "TaskRow",
    "WorkspaceRow",
]
