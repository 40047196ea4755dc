"""Full-text search over session task, chat messages and instance output."""

from __future__ import annotations

import re

import sqlalchemy as sa

from statekeeper.dialects import search_statement
from statekeeper.executor import Executor
from statekeeper.schemas import SearchHit

__all__ = ["MAX_WORDS", "search", "words_of"]

MAX_WORDS = 16
"""Words beyond this many are ignored: the query grows with each one."""
_WORD = re.compile(r"\w+")


def words_of(query: str) -> list[str]:
    """The distinct words of any text (letters, digits, underscores of every script)."""
    return list(dict.fromkeys(w.lower() for w in _WORD.findall(query)))[:MAX_WORDS]


def search(db: Executor, query: str, limit: int) -> list[SearchHit]:
    """Sessions holding every word of `query`, best first, with their best-matching snippet."""
    words = words_of(query)
    if not words:
        return []
    sql, params = search_statement(db.dialect.name, words, limit)
    return [
        SearchHit(session_id=row.session_id, source=row.source, snippet=row.snippet, rank=row.rank)
        for row in db.execute(sa.text(sql), params)
    ]
