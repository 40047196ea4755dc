# Generated from the _async/ twin by scripts/gen_sync.py: edit that one, then run it.
"""Searching sessions by the words of their subject, task, chat and instance output."""

from __future__ import annotations

from statekeeper.api.base import ManagerBase, positive
from statekeeper.errors import InvalidInput
from statekeeper.schemas import SearchHit
from statekeeper.services import search

__all__ = ["SearchAPI"]


class SearchAPI(ManagerBase):
    """Full-text search (SQLite FTS5, PostgreSQL tsvector)."""

    def search_sessions(self, query: str, *, limit: int = 20) -> list[SearchHit]:
        """Sessions holding every word of `query`, best first; any text is safe to pass."""
        # Not check_text: NUL and lone surrogates are never stored here, only word separators.
        if not isinstance(query, str):
            raise InvalidInput("query", f"expected a string, got {type(query).__name__}")
        size = positive(limit, "limit")
        if self._db.run(lambda uow: search.index_behind(uow, "sessions"), write=False):
            self._db.run(lambda uow: search.index_pending(uow, "sessions"), write=True)
        return self._db.run(lambda uow: search.search(uow, query, size), write=False)
