"""full-text search over session task, chat content and instance output

SQLite: one external-content FTS5 table per source (no second copy of the text), kept in
step by triggers and keyed by each table's INTEGER PRIMARY KEY, which VACUUM never moves.
PostgreSQL: GIN indexes on to_tsvector('simple', ...) expressions, maintained by the server,
updated in place (fastupdate off) so a search never waits for VACUUM to use them.
A later migration that rebuilds sessions, chat_messages or instances in batch mode on SQLite
drops their triggers and must create them again.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (index name, table, integer key, text column)
SOURCES = (
    ("search_task", "sessions", "pk", "task"),
    ("search_chat", "chat_messages", "seq", "content"),
    ("search_output", "instances", "id", "output"),
)
# Accents are kept, as in PostgreSQL's "simple" configuration: both engines match alike.
TOKENIZER = "unicode61 remove_diacritics 0"
PG_INDEXED_CHARS = 262_144  # a tsvector holds at most 1 MB; longer text is cut for indexing


def _pg_vector(column: str) -> str:
    return f"to_tsvector('simple'::regconfig, left(coalesce({column}, ''), {PG_INDEXED_CHARS}))"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name, table, key, column in SOURCES:
            op.execute(
                f"CREATE VIRTUAL TABLE {name} USING fts5({column}, content='{table}', "
                f"content_rowid='{key}', tokenize='{TOKENIZER}')"
            )
            add = f"INSERT INTO {name}(rowid, {column}) VALUES (new.{key}, new.{column});"
            remove = (
                f"INSERT INTO {name}({name}, rowid, {column}) "
                f"VALUES ('delete', old.{key}, old.{column});"
            )
            op.execute(f"CREATE TRIGGER {name}_insert AFTER INSERT ON {table} BEGIN {add} END")
            op.execute(f"CREATE TRIGGER {name}_delete AFTER DELETE ON {table} BEGIN {remove} END")
            op.execute(
                f"CREATE TRIGGER {name}_update AFTER UPDATE OF {column} ON {table} "
                f"BEGIN {remove} {add} END"
            )
            op.execute(f"INSERT INTO {name}({name}) VALUES ('rebuild')")
    else:
        for name, table, _key, column in SOURCES:
            # No pending list: entries pending in one make the planner price the index above a
            # sequential scan (which runs to_tsvector on every row) until the next VACUUM.
            op.execute(
                f"CREATE INDEX {name}_fts ON {table} USING gin ({_pg_vector(column)}) "
                "WITH (fastupdate = off)"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name, _table, _key, _column in SOURCES:
            for event in ("insert", "delete", "update"):
                op.execute(f"DROP TRIGGER {name}_{event}")
            op.execute(f"DROP TABLE {name}")
    else:
        for name, _table, _key, _column in SOURCES:
            op.execute(f"DROP INDEX {name}_fts")
