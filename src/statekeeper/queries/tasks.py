"""Statements over tasks."""

from __future__ import annotations

from functools import cache

import sqlalchemy as sa

from statekeeper.dialects import upsert
from statekeeper.executor import prepared
from statekeeper.queries import TASKS

__all__ = ["BY_ID", "listing", "save"]

BY_ID = prepared(sa.select(TASKS).where(TASKS.c.id == sa.bindparam("tid")))
"""One task (param: tid)."""

_CHANGED = ("title", "description", "status", "assigned_to", "metadata", "updated_at")


@cache
def save(dialect: str) -> sa.Insert:
    """Insert a task or replace all but its creation time, returning the stored row."""
    return prepared(upsert(dialect, TASKS, ("id",), _CHANGED).returning(*TASKS.c))


@cache
def listing(*, status: bool, assigned_to: bool) -> sa.Select[tuple[object, ...]]:
    """Tasks oldest first, optionally of one status and assignee (params: status, who)."""
    statement = sa.select(TASKS)
    if status:
        statement = statement.where(TASKS.c.status == sa.bindparam("status"))
    if assigned_to:
        statement = statement.where(TASKS.c.assigned_to == sa.bindparam("who"))
    return prepared(statement.order_by(TASKS.c.created_at, TASKS.c.id))
