"""The only dialect-specific SQL: upserts, UTC day truncation, maintenance statements."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement

from statekeeper.executor import prepared
from statekeeper.queries import TALLY_COLUMNS

__all__ = [
    "LAZY_INDEXES",
    "MAINTENANCE",
    "TALLY_FOLD",
    "as_date",
    "event_search_statement",
    "insert_new",
    "reset_sequence",
    "upsert",
    "utc_day",
]

MAINTENANCE: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "sqlite": {
        "vacuum": ("VACUUM",),
        "optimize": ("PRAGMA optimize=0x10002",),
        "checkpoint": ("PRAGMA wal_checkpoint(TRUNCATE)",),
    },
    "postgresql": {
        "vacuum": ("VACUUM (ANALYZE)",),
        "optimize": ("ANALYZE",),
        # The server checkpoints its own WAL; forcing one is an administrator's decision.
        "checkpoint": (),
    },
}
"""Statements per dialect and operation, run outside any transaction."""


@cache
def upsert(
    dialect: str,
    table: sa.Table,
    keys: tuple[str, ...],
    update: tuple[str, ...],
    increment: str | None = None,
) -> sa.Insert:
    """INSERT ... ON CONFLICT (keys) DO UPDATE SET the `update` columns (built once).

    `increment` names a column that goes up by one on conflict (a version counter).
    Executed with the row's column values as parameters.
    """
    insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
    statement = insert(table)
    assignments: dict[str, Any] = {name: statement.excluded[name] for name in update}
    if increment is not None:
        assignments[increment] = table.c[increment] + 1
    return prepared(statement.on_conflict_do_update(index_elements=list(keys), set_=assignments))


@cache
def insert_new(dialect: str, table: sa.Table) -> sa.Insert:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING the key (built once): no row when taken.

    A concurrent insert of the same key waits for the other transaction and then does
    nothing, where a plain INSERT would fail on PostgreSQL.
    """
    insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
    statement = insert(table).on_conflict_do_nothing()
    return prepared(statement.returning(*table.primary_key.columns))


def reset_sequence(table: str, column: str) -> str:
    """PostgreSQL: make a serial column's sequence continue after the rows already there.

    Only our own table and column names are formatted in, never user input.
    """
    return (
        f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
        f"coalesce(max({column}), 0) + 1, false) FROM {table}"
    )


def utc_day(dialect: str, column: ColumnElement[Any]) -> ColumnElement[Any]:
    """The UTC calendar day of a timestamp column (SQLite stores naive UTC text)."""
    if dialect == "sqlite":
        return sa.func.date(column)
    return sa.func.date(sa.func.timezone("UTC", column))


def as_date(value: date | str) -> date:
    """A day as returned by `utc_day`: a date on PostgreSQL, ISO text on SQLite."""
    return value if isinstance(value, date) else date.fromisoformat(value)


# Full-text search (objects created by revisions 0002 and 0004) --------------------------

# (source label, table, key column, text column, FTS5 table): revisions 0002 and 0004
_SEARCH_SOURCES = (
    ("subject", "sessions", "pk", "subject", "search_subject"),
    ("task", "sessions", "pk", "task", "search_task"),
    ("chat", "chat_messages", "seq", "content", "search_chat"),
    ("instance_output", "instances", "id", "output", "search_output"),
)
_PG_INDEXED_CHARS = 262_144  # must equal revision 0002, so the planner uses its GIN indexes


def _owner(table: str) -> str:
    return "id" if table == "sessions" else "session_id"


def _pg_vector(column: str) -> str:
    return f"to_tsvector('simple'::regconfig, left(coalesce({column}, ''), {_PG_INDEXED_CHARS}))"


def search_statement(dialect: str, words: list[str], limit: int) -> tuple[str, dict[str, Any]]:
    """SQL and parameters ranking sessions that hold every word (in any source).

    Each row holds the winning text's `snippet` (PostgreSQL) or the whole text as `body`
    (SQLite), from which the caller makes the snippet.

    Only our own fixed fragments are formatted into the SQL; every word is a bound
    parameter, matched as a literal term, never parsed as query syntax.
    """
    if dialect == "sqlite":
        # A double-quoted FTS5 string is a literal phrase, folded and split as the index is
        # (at most combining marks: the parts must follow in order); words hold no quote.
        params: dict[str, Any] = {f"w{i}": f'"{w}"' for i, w in enumerate(words)}
        params["any"] = " OR ".join(params.values())
        holds = [
            " UNION ".join(
                f"SELECT t.{_owner(table)} AS sid FROM {fts} JOIN {table} t "
                f"ON t.{key} = {fts}.rowid WHERE {fts} MATCH :w{i}"
                for _label, table, key, _column, fts in _SEARCH_SOURCES
            )
            for i in range(len(words))
        ]
        # No snippet() here: FTS5 scores every window against every instance of the words,
        # minutes on a long text full of them. The winners' text is returned instead, and the
        # caller cuts an excerpt around the first word it finds (services/search.excerpt).
        hits = " UNION ALL ".join(
            f"SELECT t.{_owner(table)} AS session_id, '{label}' AS source, "
            f"t.{key} AS k, -bm25({fts}) AS rank "
            f"FROM {fts} JOIN {table} t ON t.{key} = {fts}.rowid "
            f"WHERE {fts} MATCH :any AND t.{_owner(table)} IN (SELECT sid FROM matched)"
            for label, table, key, _column, fts in _SEARCH_SOURCES
        )
        bodies = " ".join(
            f"WHEN '{label}' THEN (SELECT {column} FROM {table} WHERE {key} = ranked.k)"
            for label, table, key, column, _fts in _SEARCH_SOURCES
        )
        extra_ctes, snippet, body = "", "NULL", f"CASE source {bodies} END"
    else:
        params = {f"w{i}": w for i, w in enumerate(words)}
        # Spelled out, not taken from a CTE, so the planner sees it and uses the GIN indexes.
        any_word = " || ".join(f"plainto_tsquery('simple', :w{i})" for i in range(len(words)))
        holds = [
            " UNION ".join(
                f"SELECT {_owner(table)} AS sid FROM {table} "
                f"WHERE {_pg_vector(column)} @@ plainto_tsquery('simple', :w{i})"
                for _label, table, _key, column, _fts in _SEARCH_SOURCES
            )
            for i in range(len(words))
        ]
        hits = " UNION ALL ".join(
            f"SELECT {_owner(table)} AS session_id, '{label}' AS source, "
            f"left(coalesce({column}, ''), {_PG_INDEXED_CHARS}) AS body, "
            f"ts_rank({_pg_vector(column)}, {any_word}) AS rank FROM {table} "
            f"WHERE {_pg_vector(column)} @@ ({any_word}) "
            f"AND {_owner(table)} IN (SELECT sid FROM matched)"
            for label, table, _key, column, _fts in _SEARCH_SOURCES
        )
        extra_ctes, body = f"q AS (SELECT {any_word} AS query), ", "NULL"
        # Headlines are costly on long text: made for the one winning row per session only.
        snippet = (
            "ts_headline('simple', body, (SELECT query FROM q), "
            "'StartSel=[, StopSel=], MaxWords=24, MinWords=8, MaxFragments=1')"
        )
    params["limit"] = limit
    per_word = ", ".join(f"w{i} AS ({sql})" for i, sql in enumerate(holds))
    matched = " INTERSECT ".join(f"SELECT sid FROM w{i}" for i in range(len(words)))
    sql = (
        f"WITH {per_word}, matched AS ({matched}), {extra_ctes}hits AS ({hits}), "
        "ranked AS (SELECT *, row_number() OVER "
        "(PARTITION BY session_id ORDER BY rank DESC, source) AS n FROM hits) "
        f"SELECT session_id, source, {snippet} AS snippet, {body} AS body, rank FROM ranked "
        "WHERE n = 1 ORDER BY rank DESC, session_id LIMIT :limit"
    )
    return sql, params


def _lazy_index(
    table: str, search: str, key: str = "seq", column: str = "content"
) -> tuple[str, tuple[str, str]]:
    """SQLite statements of an index filled in batches (revisions 0005, 0007, 0009): whether
    rows were added since it was last brought up to date (a boolean SQL expression); index
    them in one batch, move the mark."""
    mark = f"{search}_indexed"
    behind = f"(SELECT max({key}) FROM {table}) > (SELECT seq FROM {mark})"
    catch_up = (
        f"INSERT INTO {search}(rowid, {column}) SELECT {key}, {column} FROM {table} "
        f"WHERE {key} > (SELECT seq FROM {mark}) ORDER BY {key}",
        f"UPDATE {mark} SET seq = (SELECT max({key}) FROM {table}) "
        f"WHERE seq < (SELECT max({key}) FROM {table})",
    )
    return behind, catch_up


def _lazy_indexes(*indexes: tuple[str, tuple[str, str]]) -> tuple[str, tuple[str, ...]]:
    """One check and one batch for several lazily filled indexes."""
    behind = " OR ".join(f"coalesce({check}, 0)" for check, _ in indexes)
    return f"SELECT {behind}", tuple(sql for _, statements in indexes for sql in statements)


_TALLIES = ", ".join(TALLY_COLUMNS)
_TALLY_SUMS = ", ".join(f"sum({column})" for column in TALLY_COLUMNS)
TALLY_FOLD: Mapping[str, tuple[str, ...]] = {
    # Deletes only the rows its snapshot sees: a concurrent writer's new row stays, and a
    # concurrent fold deletes (and sums) only what this one has not.
    "postgresql": (
        "WITH gone AS (DELETE FROM tally_sessions RETURNING *) "
        f"INSERT INTO tally_sessions ({_TALLIES}) SELECT {_TALLY_SUMS} FROM gone "
        "HAVING count(*) > 0",
    ),
    # One writer at a time: sum everything into a new newest row, then drop the older ones.
    "sqlite": (
        f"INSERT INTO tally_sessions ({_TALLIES}) SELECT {_TALLY_SUMS} FROM tally_sessions "
        "HAVING count(*) > 0",
        "DELETE FROM tally_sessions WHERE id < (SELECT max(id) FROM tally_sessions)",
    ),
}
"""Fold the session tally's rows into one (revision 0008), keeping every sum."""

LAZY_INDEXES = {
    "events": _lazy_indexes(_lazy_index("events", "search_events")),
    "sessions": _lazy_indexes(
        _lazy_index("chat_messages", "search_chat"),
        _lazy_index("sessions", "search_task", "pk", "task"),
        _lazy_index("sessions", "search_subject", "pk", "subject"),
    ),
}
"""SQLite: the full-text indexes a search brings up to date first, by what it searches."""


def event_search_statement(
    dialect: str,
    words: list[str],
    limit: int,
    *,
    columns: Sequence[str],
    before: int | None,
    session_id: str | None,
    event_type: str | None,
) -> tuple[str, dict[str, Any]]:
    """SQL selecting `columns` of the events whose content holds all `words`, newest first
    (revision 0005's index); words and filters are bound, never formatted in."""
    selected = ", ".join(f"e.{name}" for name in columns)
    params: dict[str, Any] = {"limit": limit}
    if dialect == "sqlite":
        # Double-quoted FTS5 strings are literal terms; adjacent ones must all match.
        params["q"] = " ".join(f'"{w}"' for w in words)
        source = "search_events f JOIN events e ON e.seq = f.rowid"
        conditions = ["search_events MATCH :q"]
        order = "f.rowid"  # FTS5 yields its matches in rowid order: no sort
    else:
        params.update({f"w{i}": w for i, w in enumerate(words)})
        query = " && ".join(f"plainto_tsquery('simple', :w{i})" for i in range(len(words)))
        vector = _pg_vector("e.content")
        source = "events e"
        conditions = [f"{vector} @@ ({query})"]
        order = "e.seq"
    if before is not None:
        conditions.append(f"{order} < :before")
        params["before"] = before
    if session_id is not None:
        conditions.append("e.session_id = :sid")
        params["sid"] = session_id
    if event_type is not None:
        conditions.append("e.event_type = :kind")
        params["kind"] = event_type
    where = " AND ".join(conditions)
    return (
        f"SELECT {selected} FROM {source} WHERE {where} ORDER BY {order} DESC LIMIT :limit",
        params,
    )
