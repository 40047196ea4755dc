"""The OpenAI Agents SDK's `Session` protocol on statekeeper, so conversations are chat
history that search finds; needs `pip install 'statekeeper[openai-agents]'`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import TracebackType
from typing import Self, TypeVar

from sqlalchemy.engine import URL

try:
    from agents.items import TResponseInputItem
    from agents.memory import SessionSettings
    from agents.memory.session_settings import resolve_session_limit
except ImportError as exc:
    raise ImportError(
        "statekeeper.integrations.openai_agents needs the OpenAI Agents SDK: "
        "pip install 'statekeeper[openai-agents]'"
    ) from exc

from statekeeper.aio import AsyncStateManager
from statekeeper.api.base import PathLike
from statekeeper.errors import InvalidInput
from statekeeper.executor import UnitOfWork
from statekeeper.manager import StateManager
from statekeeper.services import sdk_items, sessions
from statekeeper.values import check_id

__all__ = ["StatekeeperSession"]

T = TypeVar("T")


class StatekeeperSession:
    """An SDK session whose items are the chat messages of statekeeper session `session_id`,
    on a manager of its own (from a URL) or a shared one; see docs/integrations.md."""

    session_settings: SessionSettings | None

    def __init__(
        self,
        session_id: str,
        url_or_manager: PathLike | URL | StateManager | AsyncStateManager,
        *,
        session_settings: SessionSettings | None = None,
    ) -> None:
        self.session_id = check_id(session_id, "session_id")
        self.session_settings = SessionSettings() if session_settings is None else session_settings
        self._owned: AsyncStateManager | None = None
        self._refreshes = sessions.Refreshes()
        if isinstance(url_or_manager, StateManager | AsyncStateManager):
            self.manager = url_or_manager
        else:
            self.manager = self._owned = AsyncStateManager(url_or_manager)

    async def _run(self, fn: Callable[[UnitOfWork], T], *, write: bool) -> T:
        manager = self.manager
        if isinstance(manager, StateManager):  # blocking calls: off the event loop
            return await asyncio.to_thread(manager._db.run, fn, write=write, direct=True)
        return await manager._db.run(fn, write=write, direct=True)

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        """All items in order, or the latest `limit` (default: the session settings' limit)."""
        wanted = resolve_session_limit(limit, self.session_settings)
        if wanted is not None and (not isinstance(wanted, int) or isinstance(wanted, bool)):
            raise InvalidInput("limit", f"expected an int, got {type(wanted).__name__}")
        if wanted is not None and wanted < 0:
            wanted = None  # as the SDK's SQLiteSession, whose LIMIT -1 is no limit
        return await self._run(
            lambda uow: sdk_items.items(uow, self.session_id, wanted), write=False
        )

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        """Append the items in order, all in one transaction or none of them."""
        rows = sdk_items.rows_of(items)
        if not rows:
            return

        started = self._refreshes.due(self.session_id)

        def add(uow: UnitOfWork) -> None:
            sdk_items.add(uow, self.session_id, rows, refresh=started is not None)

        try:
            await self._run(add, write=True)
        except InvalidInput as exc:
            if exc.field != "session_id":
                raise
            await self._run(add, write=True)  # another writer created the session meanwhile
        self._refreshes.done(self.session_id, started)

    async def pop_item(self) -> TResponseInputItem | None:
        """Remove and return the newest item; None when the session has none."""
        started = self._refreshes.due(self.session_id)
        item: TResponseInputItem | None = await self._run(
            lambda uow: sdk_items.pop(uow, self.session_id, refresh=started is not None),
            write=True,
        )
        self._refreshes.done(self.session_id, started)
        return item

    async def clear_session(self) -> None:
        """Delete every item; the statekeeper session itself and its events stay."""
        await self._run(lambda uow: sdk_items.clear(uow, self.session_id), write=True)

    async def close(self) -> None:
        """Release the manager this session opened from a URL; a given manager stays open."""
        if self._owned is not None:
            await self._owned.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
