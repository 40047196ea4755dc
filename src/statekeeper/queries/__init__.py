"""Statement construction, kept apart from execution so sync and async managers share it.

Statements used on every call are built once, at import, with named bind parameters: a
prebuilt statement's cache key is computed once, so executing it skips SQL compilation.
Bind names never equal a column name of the table being written (SQLAlchemy reserves those).
"""

from typing import Any, TypeAlias

import sqlalchemy as sa

from statekeeper.models import Base

__all__ = [
    "AGENTS",
    "CHAT",
    "CONTEXT",
    "EVENTS",
    "INSTANCES",
    "PHASES",
    "SESSIONS",
    "SNAPSHOTS",
    "TASKS",
    "TRANSITIONS",
    "AnySelect",
]

AnySelect: TypeAlias = sa.Select[*tuple[Any, ...]]
"""A SELECT of any columns."""

SESSIONS = Base.metadata.tables["sessions"]
PHASES = Base.metadata.tables["phase_completions"]
CONTEXT = Base.metadata.tables["workflow_context"]
INSTANCES = Base.metadata.tables["instances"]
CHAT = Base.metadata.tables["chat_messages"]
EVENTS = Base.metadata.tables["events"]
AGENTS = Base.metadata.tables["agents"]
TRANSITIONS = Base.metadata.tables["state_transitions"]
SNAPSHOTS = Base.metadata.tables["snapshots"]
TASKS = Base.metadata.tables["tasks"]
