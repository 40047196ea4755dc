"""The event log: appended in the same transaction as the change it records."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from statekeeper.dialects import (
    event_search_statement,
)
from statekeeper.errors import InvalidInput
from statekeeper.executor import UnitOfWork
from statekeeper.queries import EVENTS
from statekeeper.queries import events as q
from statekeeper.schemas import Event
from statekeeper.services.search import terms_of

__all__ = ["append", "page", "row", "search"]


def append(
    uow: UnitOfWork,
    *,
    event_type: str,
    content: str,
    now: datetime,
    session_id: str | None = None,
    actor_type: str = "system",
    actor_id: str = "statekeeper",
    metadata: Any = None,
) -> str:
    """Append one event (values already validated) and return its id."""
    values = row(
        event_type=event_type,
        content=content,
        now=now,
        session_id=session_id,
        actor_type=actor_type,
        actor_id=actor_id,
        metadata=metadata,
    )
    uow.execute(q.INSERT, values)
    return str(values["id"])


def row(
    *,
    event_type: str,
    content: str,
    now: datetime,
    session_id: str | None = None,
    actor_type: str = "system",
    actor_id: str = "statekeeper",
    metadata: Any = None,
) -> dict[str, Any]:
    """A new event's columns, with a fresh id."""
    return {
        "id": str(uuid.uuid4()),
        "session_id": session_id,
        "event_type": event_type,
        "actor_type": actor_type,
        "actor_id": actor_id,
        "content": content,
        "metadata": {} if metadata is None else metadata,
        "created_at": now,
    }


def page(
    uow: UnitOfWork, by: str, key: str, *, limit: int | None, after: str | None
) -> list[Event]:
    """A session's or a type's events in append order, continuing after event `after`."""
    params: dict[str, Any] = {"key": key, "limit": limit}
    if after is not None:
        params["seq"] = _seq_of(uow, after, "after")
    statement = q.page(by, after=after is not None, limited=limit is not None)
    return [Event.model_validate(row) for row in uow.execute(statement, params)]


def search(
    uow: UnitOfWork,
    query: str,
    *,
    limit: int,
    before: str | None,
    session_id: str | None,
    event_type: str | None,
) -> list[Event]:
    """Events whose content holds every word of `query`, newest first, before event `before`."""
    words = terms_of(query, uow.dialect.name)
    if not words:
        return []
    before_seq = None if before is None else _seq_of(uow, before, "before")
    sql, params = event_search_statement(
        uow.dialect.name,
        words,
        limit,
        columns=[column.name for column in EVENTS.c],
        before=before_seq,
        session_id=session_id,
        event_type=event_type,
    )
    statement = sa.text(sql).columns(*EVENTS.c)
    return [Event.model_validate(row) for row in uow.execute(statement, params)]


def _seq_of(uow: UnitOfWork, event_id: str, field: str) -> int:
    seq = uow.scalar(q.SEQ_OF, {"eid": event_id})
    if seq is None:
        raise InvalidInput(field, f"no event {event_id!r} to continue from")
    return int(seq)
