"""The event log: application events, paged reads by session and type, full-text search."""

from __future__ import annotations

from typing import Any

from statekeeper.api.base import AsyncManagerBase, json_object, payload_text, positive
from statekeeper.errors import InvalidInput
from statekeeper.executor import UnitOfWork
from statekeeper.schemas import Event
from statekeeper.services import events, search
from statekeeper.services import sessions as sessions_service
from statekeeper.values import check_id, utcnow

__all__ = ["AsyncEventsAPI"]


class AsyncEventsAPI(AsyncManagerBase):
    """The audit trail: statekeeper logs every change it makes; applications add their own."""

    async def record_event(
        self,
        event_type: str,
        content: str,
        *,
        session_id: str | None = None,
        actor_type: str = "system",
        actor_id: str = "statekeeper",
        metadata: dict[str, Any] | None = None,
    ) -> str:
        """Append an event to the log; returns its id."""
        event_type = check_id(event_type, "event_type")
        if len(event_type) > 64:
            raise InvalidInput("event_type", "longer than 64 characters")
        limit = self._store.max_value_bytes
        content = payload_text(content, "content", limit)
        actor_type = check_id(actor_type, "actor_type")
        if len(actor_type) > 64:
            raise InvalidInput("actor_type", "longer than 64 characters")
        actor_id = check_id(actor_id, "actor_id")
        data = json_object({} if metadata is None else metadata, "metadata", limit=limit)

        def record(uow: UnitOfWork) -> str:
            if session_id is not None:
                sessions_service.lock(uow, session_id, allow_completed=True, changes=False)
            return events.append(
                uow,
                event_type=event_type,
                content=content,
                now=utcnow(),
                session_id=session_id,
                actor_type=actor_type,
                actor_id=actor_id,
                metadata=data,
            )

        return await self._db.run(record, write=True, direct=True)

    async def get_events(
        self, session_id: str, *, limit: int | None = None, after: str | None = None
    ) -> list[Event]:
        """The session's events in the order they happened; `limit` and `after` (the last
        event id of the previous page) page through them."""
        size = None if limit is None else positive(limit, "limit")
        return await self._db.run(
            lambda uow: events.page(uow, "session", session_id, limit=size, after=after),
            write=False,
            direct=True,
        )

    async def get_events_by_type(
        self, event_type: str, *, limit: int | None = None, after: str | None = None
    ) -> list[Event]:
        """Every event of one type in the order they happened, paged as get_events."""
        size = None if limit is None else positive(limit, "limit")
        return await self._db.run(
            lambda uow: events.page(uow, "type", event_type, limit=size, after=after),
            write=False,
            direct=True,
        )

    async def search_events(
        self,
        query: str,
        *,
        limit: int = 50,
        before: str | None = None,
        session_id: str | None = None,
        event_type: str | None = None,
    ) -> list[Event]:
        """Events whose content holds every word of `query`, newest first; any text is safe
        (matched as words, never parsed as query syntax). Pass the last id of a page as
        `before` for the next page. On SQLite, events logged since the last search are
        indexed first, in one batch (logging an event never pays for indexing it)."""
        if not isinstance(query, str):
            raise InvalidInput("query", f"expected a string, got {type(query).__name__}")
        size = positive(limit, "limit")
        if await self._db.run(lambda uow: search.index_behind(uow, "events"), write=False):
            await self._db.run(lambda uow: search.index_pending(uow, "events"), write=True)
        return await self._db.run(
            lambda uow: events.search(
                uow,
                query,
                limit=size,
                before=before,
                session_id=session_id,
                event_type=event_type,
            ),
            write=False,
        )
