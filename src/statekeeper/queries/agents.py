"""Statements over agents and their state transitions."""

from __future__ import annotations

from functools import cache

import sqlalchemy as sa

from statekeeper.executor import prepared
from statekeeper.queries import AGENTS, TRANSITIONS

__all__ = [
    "BY_ID",
    "HISTORY",
    "INSERT_TRANSITION",
    "LOCK",
    "LOCK_WITH_STATE",
    "PURGE",
    "UPDATE",
    "listing",
]

_NS: sa.BindParameter[str] = sa.bindparam("ns")
_KEY = sa.and_(AGENTS.c.namespace == _NS, AGENTS.c.agent_id == sa.bindparam("aid"))

BY_ID = prepared(sa.select(AGENTS).where(_KEY))
"""One agent, deleted or not (params: ns, aid)."""

_LOCKED = (
    AGENTS.c.name,
    AGENTS.c.status,
    AGENTS.c.version,
    AGENTS.c.deleted_at,
    AGENTS.c.created_at,
)
LOCK = prepared(sa.select(*_LOCKED).where(_KEY).with_for_update())
"""What a write checks, the row locked on PostgreSQL (params: ns, aid).

On SQLite the BEGIN IMMEDIATE of every write transaction already serializes writers.
"""

LOCK_WITH_STATE = prepared(
    sa.select(*_LOCKED, AGENTS.c.state_data, AGENTS.c.state_data_zstd).where(_KEY).with_for_update()
)
"""LOCK, and the stored state too (a snapshot of the agent); params: ns, aid."""

UPDATE = prepared(sa.update(AGENTS).where(_KEY))
"""Change an agent (params: ns, aid, and the columns to set)."""

PURGE = prepared(
    sa.delete(AGENTS)
    .where(AGENTS.c.namespace == _NS, AGENTS.c.deleted_at < sa.bindparam("cutoff"))
    .returning(AGENTS.c.agent_id)
)
"""Hard-delete agents soft-deleted before a time; transitions and snapshots go with them."""

INSERT_TRANSITION = prepared(sa.insert(TRANSITIONS))
"""One transition (params: its columns)."""

HISTORY = prepared(
    sa.select(TRANSITIONS)
    .where(TRANSITIONS.c.namespace == _NS, TRANSITIONS.c.agent_id == sa.bindparam("aid"))
    .order_by(TRANSITIONS.c.id.desc())
    .limit(sa.bindparam("limit"))
)
"""An agent's transitions, newest first (params: ns, aid, limit)."""


@cache
def listing(*, status: bool, include_deleted: bool) -> sa.Select[tuple[object, ...]]:
    """A namespace's agents by id, optionally of one status (params: ns, status)."""
    statement = sa.select(AGENTS).where(AGENTS.c.namespace == _NS)
    if status:
        statement = statement.where(AGENTS.c.status == sa.bindparam("status"))
    if not include_deleted:
        statement = statement.where(AGENTS.c.deleted_at.is_(None))
    return prepared(statement.order_by(AGENTS.c.agent_id))
