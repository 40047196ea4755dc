"""Statements over the event log."""

from __future__ import annotations

from functools import cache

import sqlalchemy as sa

from statekeeper.executor import prepared
from statekeeper.queries import EVENTS

__all__ = ["INSERT", "SEQ_OF", "page"]

INSERT = prepared(sa.insert(EVENTS).inline())
"""One new event (params: its columns); inline: no RETURNING of the new `seq`."""

SEQ_OF = prepared(sa.select(EVENTS.c.seq).where(EVENTS.c.id == sa.bindparam("eid")))
"""An event's place in the log (param: eid), where a page continues from."""

_FILTER = {"session": EVENTS.c.session_id, "type": EVENTS.c.event_type}


@cache
def page(by: str, *, after: bool, limited: bool) -> sa.Select[tuple[object, ...]]:
    """A session's (`by="session"`) or a type's events in append order (params: key, and
    seq to continue after, limit)."""
    statement = sa.select(EVENTS).where(_FILTER[by] == sa.bindparam("key"))
    if after:
        statement = statement.where(EVENTS.c.seq > sa.bindparam("seq"))
    statement = statement.order_by(EVENTS.c.seq)
    if limited:
        statement = statement.limit(sa.bindparam("limit"))
    return prepared(statement)
