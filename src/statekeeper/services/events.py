"""The event log: appended in the same transaction as the change it records."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from statekeeper.executor import UnitOfWork
from statekeeper.queries import events as q
from statekeeper.schemas import Event

__all__ = ["append", "by_session", "by_type"]


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
    event_id = str(uuid.uuid4())
    uow.execute(
        q.INSERT,
        {
            "id": event_id,
            "session_id": session_id,
            "event_type": event_type,
            "actor_type": actor_type,
            "actor_id": actor_id,
            "content": content,
            "metadata": {} if metadata is None else metadata,
            "created_at": now,
        },
    )
    return event_id


def by_session(uow: UnitOfWork, session_id: str) -> list[Event]:
    """A session's events, oldest first."""
    return [Event.model_validate(row) for row in uow.execute(q.BY_SESSION, {"sid": session_id})]


def by_type(uow: UnitOfWork, event_type: str) -> list[Event]:
    """Every event of one type, oldest first."""
    return [Event.model_validate(row) for row in uow.execute(q.BY_TYPE, {"kind": event_type})]
