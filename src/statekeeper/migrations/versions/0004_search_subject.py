"""full-text search over the session subject as well (the company, the repository...)

The same machinery as revision 0002, for one more source: an external-content FTS5 table
kept by triggers on SQLite, a GIN expression index on PostgreSQL.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME, TABLE, KEY, COLUMN = "search_subject", "sessions", "pk", "subject"
TOKENIZER = "unicode61 remove_diacritics 0"  # as revision 0002: both engines match alike
PG_INDEXED_CHARS = 262_144


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            f"CREATE VIRTUAL TABLE {NAME} USING fts5({COLUMN}, content='{TABLE}', "
            f"content_rowid='{KEY}', tokenize='{TOKENIZER}')"
        )
        add = f"INSERT INTO {NAME}(rowid, {COLUMN}) VALUES (new.{KEY}, new.{COLUMN});"
        remove = (
            f"INSERT INTO {NAME}({NAME}, rowid, {COLUMN}) "
            f"VALUES ('delete', old.{KEY}, old.{COLUMN});"
        )
        op.execute(f"CREATE TRIGGER {NAME}_insert AFTER INSERT ON {TABLE} BEGIN {add} END")
        op.execute(f"CREATE TRIGGER {NAME}_delete AFTER DELETE ON {TABLE} BEGIN {remove} END")
        op.execute(
            f"CREATE TRIGGER {NAME}_update AFTER UPDATE OF {COLUMN} ON {TABLE} "
            f"BEGIN {remove} {add} END"
        )
        op.execute(f"INSERT INTO {NAME}({NAME}) VALUES ('rebuild')")
    else:
        vector = (
            f"to_tsvector('simple'::regconfig, left(coalesce({COLUMN}, ''), {PG_INDEXED_CHARS}))"
        )
        op.execute(
            f"CREATE INDEX {NAME}_fts ON {TABLE} USING gin ({vector}) WITH (fastupdate = off)"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for event in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER {NAME}_{event}")
        op.execute(f"DROP TABLE {NAME}")
    else:
        op.execute(f"DROP INDEX {NAME}_fts")
