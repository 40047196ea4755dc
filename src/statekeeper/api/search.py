"""Searching sessions by the words of their task, chat and instance output."""

from __future__ import annotations

from statekeeper.api.base import ManagerBase, positive
from statekeeper.schemas import SearchHit
from statekeeper.services import search
from statekeeper.values import check_text

__all__ = ["SearchAPI"]


class SearchAPI(ManagerBase):
    """Full-text search (SQLite FTS5, PostgreSQL tsvector)."""

    def search_sessions(self, query: str, *, limit: int = 20) -> list[SearchHit]:
        """Sessions holding every word of `query`, best first; any text is safe to pass."""
        text = check_text(query, "query")
        size = positive(limit, "limit")
        return self._db.run(lambda db: search.search(db, text, size), write=False)
