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
    "TALLY",
    "TALLY_COLUMNS",
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

TALLY_COLUMNS = (
    "sessions",
    "completed",
    "failed",
    "completed_cost_units",
    "completed_timed",
    "completed_ms",
)
TALLY = sa.Table(
    "tally_sessions",
    sa.MetaData(),  # not the models': triggers keep this table (revision 0008), no code writes it
    sa.Column("id", sa.BigInteger, primary_key=True),
    *(sa.Column(name, sa.BigInteger) for name in TALLY_COLUMNS),
)
"""Each change's contribution to the session counts and completed totals, summed on read."""
