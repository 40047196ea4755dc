"""Statements over the event log."""

from __future__ import annotations

import sqlalchemy as sa

from statekeeper.executor import prepared
from statekeeper.queries import EVENTS

__all__ = ["BY_SESSION", "BY_TYPE", "INSERT"]

INSERT = prepared(sa.insert(EVENTS))
"""One new event (params: its columns)."""

BY_SESSION = prepared(
    sa.select(EVENTS).where(EVENTS.c.session_id == sa.bindparam("sid")).order_by(EVENTS.c.seq)
)
"""A session's events in the order they were appended (param: sid)."""

BY_TYPE = prepared(
    sa.select(EVENTS).where(EVENTS.c.event_type == sa.bindparam("kind")).order_by(EVENTS.c.seq)
)
"""Every event of one type in the order they were appended (param: kind)."""
