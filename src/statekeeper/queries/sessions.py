"""Statements over the sessions table: locking, paging, aggregates, retention."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from functools import cache
from typing import Any

import sqlalchemy as sa

from statekeeper.dialects import utc_day
from statekeeper.enums import SessionStatus
from statekeeper.executor import prepared
from statekeeper.queries import SESSIONS, TALLY, TALLY_COLUMNS, AnySelect

__all__ = [
    "BY_ID",
    "COUNT",
    "CURSOR",
    "DELETE",
    "INSERT",
    "LOCK",
    "REFRESH",
    "SET_TOTALS",
    "SUMMARY_COLUMNS",
    "TALLIES",
    "TIMING",
    "TOUCH",
    "by_ids",
    "cleanup",
    "cost_by_day",
    "history",
    "kept_duration",
    "update",
]

_ID: sa.BindParameter[str] = sa.bindparam("sid")
BY_ID = prepared(sa.select(SESSIONS).where(SESSIONS.c.id == _ID))
"""The whole session row (param: sid)."""

LOCK = prepared(
    sa.select(
        SESSIONS.c.status,
        SESSIONS.c.workspace_id,
        SESSIONS.c.created_at,
        SESSIONS.c.cost_usd,
        SESSIONS.c.tokens_in,
        SESSIONS.c.tokens_out,
    )
    .where(SESSIONS.c.id == _ID)
    .with_for_update()
)
"""What a write checks, the row locked (PostgreSQL) against concurrent writers (param: sid).

On SQLite the BEGIN IMMEDIATE of every write transaction already serializes writers.
"""

TOUCH = prepared(
    sa.update(SESSIONS)
    .where(SESSIONS.c.id == _ID)
    .values(updated_at=sa.bindparam("now"))
    .returning(SESSIONS.c.status, SESSIONS.c.workspace_id)
)
"""Mark a session changed, locking its row, in one round trip (params: sid, now)."""

REFRESH = prepared(
    sa.update(SESSIONS)
    .where(SESSIONS.c.id == _ID, SESSIONS.c.updated_at < sa.bindparam("stale"))
    .values(updated_at=sa.bindparam("now"))
    .returning(SESSIONS.c.workspace_id)
)
"""Mark a session changed if it last was before `stale`; the workspace of a session so
marked (params: sid, now, stale)."""

INSERT = prepared(sa.insert(SESSIONS))
"""A new session row (params: its columns)."""

SET_TOTALS = prepared(
    sa.update(SESSIONS)
    .where(SESSIONS.c.id == _ID)
    .values(
        updated_at=sa.bindparam("now"),
        cost_usd=sa.bindparam("cost"),
        tokens_in=sa.bindparam("tin"),
        tokens_out=sa.bindparam("tout"),
    )
)
"""A session's totals after a phase save (params: sid, now, cost, tin, tout)."""

SET = prepared(sa.update(SESSIONS).where(SESSIONS.c.id == _ID))
"""Change the columns named by the parameters of one session (params: sid, the columns)."""

DELETE = prepared(sa.delete(SESSIONS).where(SESSIONS.c.id == _ID))
"""Delete one session; its rows in other tables go by ON DELETE CASCADE (param: sid)."""

TIMING = prepared(
    sa.select(SESSIONS.c.created_at, SESSIONS.c.completed_at).where(SESSIONS.c.id == _ID)
)
"""When a session was created and completed (param: sid)."""

COUNT = prepared(sa.select(sa.func.coalesce(sa.func.sum(TALLY.c.sessions), 0), sa.func.count()))
"""How many sessions exist, and how many tally rows say so (revision 0008)."""

TALLIES = prepared(
    sa.select(
        *(sa.func.coalesce(sa.func.sum(TALLY.c[name]), 0) for name in TALLY_COLUMNS),
        sa.func.count(),
    )
)
"""Session counts and completed totals, and the number of tally rows they were summed from."""

CURSOR = prepared(sa.select(SESSIONS.c.created_at, SESSIONS.c.id).where(SESSIONS.c.id == _ID))
"""The keyset position of a session in history order (param: sid)."""

SUMMARY_COLUMNS = (
    SESSIONS.c.id,
    SESSIONS.c.subject,
    SESSIONS.c.kind,
    SESSIONS.c.status,
    SESSIONS.c.workspace_id,
    SESSIONS.c.created_at,
    SESSIONS.c.completed_at,
    SESSIONS.c.duration_ms,
    SESSIONS.c.cost_usd,
)
_TERMINAL = (SessionStatus.COMPLETED.value, SessionStatus.FAILED.value)


def update(session_id: str, **values: Any) -> sa.Update:
    """Change any columns of one session."""
    return sa.update(SESSIONS).where(SESSIONS.c.id == session_id).values(**values)


def kept_duration(seconds: int) -> sa.ColumnElement[Any]:
    """duration_ms as stored while it rounds down to `seconds`, else `seconds` in ms."""
    stored = SESSIONS.c.duration_ms
    return sa.case((stored // 1000 == seconds, stored), else_=seconds * 1000)


def by_ids(session_ids: Collection[str]) -> AnySelect:
    """Whole session rows for some ids, newest first."""
    return (
        sa.select(SESSIONS)
        .where(SESSIONS.c.id.in_(session_ids))
        .order_by(SESSIONS.c.created_at.desc(), SESSIONS.c.id.desc())
    )


@cache
def history(*, status: bool, kind: bool, workspace: bool, after: bool) -> AnySelect:
    """A page of summaries, newest first, with the filters asked for (built once per shape).

    Params: limit, and status, kind, workspace_id, after_created, after_id when filtered.
    Keyset paging: every page costs the same, however deep.
    """
    query = sa.select(*SUMMARY_COLUMNS)
    if status:
        query = query.where(SESSIONS.c.status == sa.bindparam("status"))
    if kind:
        query = query.where(SESSIONS.c.kind == sa.bindparam("kind"))
    if workspace:
        query = query.where(SESSIONS.c.workspace_id == sa.bindparam("workspace_id"))
    if after:
        # Typed like the columns: a bare datetime would not be the stored text on SQLite.
        position = sa.tuple_(
            sa.bindparam("after_created", type_=SESSIONS.c.created_at.type),
            sa.bindparam("after_id", type_=SESSIONS.c.id.type),
        )
        query = query.where(sa.tuple_(SESSIONS.c.created_at, SESSIONS.c.id) < position)
    return prepared(
        query.order_by(SESSIONS.c.created_at.desc(), SESSIONS.c.id.desc()).limit(
            sa.bindparam("limit")
        )
    )


def cost_by_day(dialect: str, since: datetime) -> AnySelect:
    """Cost and session count per UTC day of creation, from `since` on."""
    day = utc_day(dialect, SESSIONS.c.created_at).label("day")
    return (
        sa.select(day, sa.func.sum(SESSIONS.c.cost_usd), sa.func.count())
        .where(SESSIONS.c.created_at >= since)
        .group_by(day)
    )


def cleanup(cutoff: datetime) -> sa.Executable:
    """Completed and failed sessions finished before `cutoff` (their rows cascade); returns
    each one's workspace."""
    return (
        sa.delete(SESSIONS)
        .where(SESSIONS.c.status.in_(_TERMINAL), SESSIONS.c.completed_at < cutoff)
        .returning(SESSIONS.c.workspace_id)
    )
