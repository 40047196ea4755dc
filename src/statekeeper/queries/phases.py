"""Statements over phase checkpoints and the workflow context."""

from __future__ import annotations

import sqlalchemy as sa

from statekeeper.executor import prepared
from statekeeper.queries import CONTEXT, PHASES, SESSIONS

__all__ = [
    "CONTEXT_DATA",
    "CONTEXT_OF",
    "DELETE_CONTEXT",
    "DELETE_PHASES",
    "EXISTS",
    "INSERT",
    "PHASES_OF",
    "PHASE_OF",
    "PREVIOUS",
    "REPLACE",
]

_SID: sa.BindParameter[str] = sa.bindparam("sid")
_PID: sa.BindParameter[str] = sa.bindparam("pid")
_THIS_PHASE = sa.and_(PHASES.c.session_id == _SID, PHASES.c.phase_id == _PID)

PHASE_OF = prepared(sa.select(PHASES).where(_THIS_PHASE))
"""One phase completion (params: sid, pid)."""

PREVIOUS = prepared(
    sa.select(PHASES.c.id, PHASES.c.cost_usd, PHASES.c.tokens_in, PHASES.c.tokens_out).where(
        _THIS_PHASE
    )
)
"""Key, cost and tokens of an earlier save of this phase, which a new save replaces."""

EXISTS = prepared(sa.select(sa.exists().where(_THIS_PHASE)))
"""Whether a phase completion exists (params: sid, pid)."""

PHASES_OF = prepared(sa.select(PHASES).where(PHASES.c.session_id == _SID).order_by(PHASES.c.id))
"""A session's phases in the order first completed; a re-save keeps its place (param: sid)."""

INSERT = prepared(sa.insert(PHASES))
"""A new phase completion (params: its columns)."""

REPLACE = prepared(sa.update(PHASES).where(PHASES.c.id == sa.bindparam("key")))
"""Replace a phase completion's results (params: key, and the columns to set)."""

_LAST_PHASE = (
    sa.select(PHASES.c.phase_id)
    .where(PHASES.c.session_id == SESSIONS.c.id)
    .order_by(PHASES.c.id.desc())
    .limit(1)
    .scalar_subquery()
)
CONTEXT_OF = prepared(
    sa.select(
        CONTEXT.c.data, _LAST_PHASE.label("last_phase"), SESSIONS.c.cost_usd, SESSIONS.c.status
    )
    .select_from(SESSIONS)
    .outerjoin(CONTEXT, CONTEXT.c.session_id == SESSIONS.c.id)
    .where(SESSIONS.c.id == _SID)
)
"""Saved context, last completed phase, cost so far and status, in one round trip (sid)."""

CONTEXT_DATA = prepared(sa.select(CONTEXT.c.data).where(CONTEXT.c.session_id == _SID))
"""The saved context alone (param: sid)."""

DELETE_PHASES = prepared(sa.delete(PHASES).where(PHASES.c.session_id == _SID))
"""Every phase completion of a session (param: sid), before a snapshot puts its own back."""

DELETE_CONTEXT = prepared(sa.delete(CONTEXT).where(CONTEXT.c.session_id == _SID))
"""A session's context (param: sid): restoring a snapshot taken before one was saved."""
