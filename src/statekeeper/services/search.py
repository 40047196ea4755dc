"""Full-text search over session subject, task, chat messages and instance output."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from itertools import islice

import sqlalchemy as sa

from statekeeper.dialects import LAZY_INDEXES, search_statement
from statekeeper.executor import UnitOfWork
from statekeeper.schemas import SearchHit

__all__ = [
    "MAX_WORDS",
    "excerpt",
    "index_behind",
    "index_pending",
    "search",
    "terms_of",
    "words_of",
]

MAX_WORDS = 16
"""Words beyond this many are ignored: the query grows with each one."""
_NOT_LETTER_OR_NUMBER = re.compile(r"[\W_]")  # \w is exactly categories L* and N*, plus "_"
_IN_WORDS = frozenset({"Mn", "Mc", "Me", "Co"})  # the other characters words are made of


def _separator(match: re.Match[str]) -> str:
    """The character itself if words hold it (a mark, private use), else a space."""
    return match[0] if unicodedata.category(match[0]) in _IN_WORDS else " "


def words_of(query: str) -> list[str]:
    """The first 16 distinct words of any text, compared case-insensitively, sent as written.

    Words are runs of letters, numbers, marks, private use; all else (NUL too) separates.
    """
    words: dict[str, str] = {}
    for word in _NOT_LETTER_OR_NUMBER.sub(_separator, query).split():
        words.setdefault(word.lower(), word)
        if len(words) == MAX_WORDS:
            break
    return list(words.values())


_UNSENDABLE = re.compile("[\x00\ud800-\udfff]")  # NUL, lone surrogates: never valid text


def terms_of(query: str, dialect: str) -> list[str]:
    """What a search matches, split as each engine split the indexed text.

    SQLite: the words (FTS5's unicode61 splits text the same way). PostgreSQL: each
    whitespace-separated part holding a word, which its parser then splits as it split the
    text, so `crawler-1` (`crawler`, `-1`) and `3.5` find themselves; at most 16 either way.
    """
    if dialect == "sqlite":
        return words_of(query)
    terms: dict[str, str] = {}
    for part in _UNSENDABLE.sub(" ", query).split():
        if words_of(part):
            terms.setdefault(part.lower(), part)
            if len(terms) == MAX_WORDS:
                break
    return list(terms.values())


def index_behind(uow: UnitOfWork, source: str) -> bool:
    """Whether `source`'s SQLite indexes ("events"; "sessions": chat, task and subject) lack
    rows added since they were last brought up to date; PostgreSQL's indexes never do."""
    if uow.dialect.name != "sqlite":
        return False
    return bool(uow.scalar(sa.text(LAZY_INDEXES[source][0])))


def index_pending(uow: UnitOfWork, source: str) -> None:
    """Index, in one batch, the rows of `source` added since its last search (SQLite)."""
    for statement in LAZY_INDEXES[source][1]:
        uow.execute(sa.text(statement))


def search(uow: UnitOfWork, query: str, limit: int) -> list[SearchHit]:
    """Sessions holding every word of `query`, best first, with their best-matching snippet."""
    words = terms_of(query, uow.dialect.name)
    if not words:
        return []
    sql, params = search_statement(uow.dialect.name, words, limit)
    return [
        SearchHit(
            session_id=row.session_id,
            source=row.source,
            snippet=row.snippet if row.snippet is not None else excerpt(row.body or "", words),
            rank=row.rank,
        )
        for row in uow.execute(sa.text(sql), params)
    ]


SNIPPET_WORDS = 16
_WORD = re.compile(r"[^\W_]+")
_LEAD_WORDS, _LEAD_CHARS = 3, 120
"""Words shown before the first hit, looked for in this many characters before it."""


@lru_cache(maxsize=64)
def _hits(words: tuple[str, ...]) -> re.Pattern[str]:
    """Any of `words` standing alone, in any case (longest first, so none hides another)."""
    alternatives = "|".join(re.escape(word) for word in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<![^\W_])(?:{alternatives})(?![^\W_])", re.IGNORECASE)


def excerpt(text: str, words: list[str]) -> str:
    """About 16 words of `text` around the first of `words` in it, each hit in [brackets].

    Its cost is bounded by where the first hit is, never by how many there are: one
    regular-expression scan, then the few words around it (FTS5's own snippet() scores
    every window against every hit, quadratic in the hits). A word found only through
    FTS5's folding (diacritics) gives the text's opening words instead.
    """
    hit = _hits(tuple(words))
    found = hit.search(text)
    at = found.start() if found else 0
    lead = list(_WORD.finditer(text, max(0, at - _LEAD_CHARS), at))
    if lead and lead[0].start() == at - _LEAD_CHARS and _WORD.match(text, lead[0].start() - 1):
        lead = lead[1:]  # a word cut by the window's start
    chosen = lead[-_LEAD_WORDS:] if lead else []
    chosen += islice(_WORD.finditer(text, at), SNIPPET_WORDS - len(chosen))
    if not chosen:
        return text[:_LEAD_CHARS].strip()
    begin, end = chosen[0].start(), chosen[-1].end()
    marked = hit.sub(lambda m: f"[{m[0]}]", text[begin:end])
    before = "…" if _WORD.search(text, 0, begin) else ""
    after = "…" if _WORD.search(text, end) else ""
    return f"{before}{marked}{after}"
