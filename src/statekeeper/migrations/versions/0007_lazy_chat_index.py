"""chat messages indexed for search in batches, as the event log is

SQLite: an FTS5 insert per chat message wrote about six of the ten WAL pages an append
commits. Messages are now indexed by the first search after them, in one batch, like the
events of revision 0005: `search_chat_indexed` marks how far, and the triggers keep the
index exact for rows at or below the mark (a rowid SQLite reuses after deleting the newest
messages is indexed at once). PostgreSQL keeps its GIN index: nothing changes there.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEARCH, TABLE, KEY, COLUMN = "search_chat", "chat_messages", "seq", "content"
MARK = "search_chat_indexed"
EVENTS = ("insert", "delete", "update")


def _triggers(guard: str | None) -> None:
    """Revision 0002's triggers, each firing only for rows `guard` selects (None: all)."""
    add = f"INSERT INTO {SEARCH}(rowid, {COLUMN}) VALUES (new.{KEY}, new.{COLUMN});"
    remove = (
        f"INSERT INTO {SEARCH}({SEARCH}, rowid, {COLUMN}) "
        f"VALUES ('delete', old.{KEY}, old.{COLUMN});"
    )
    new = f" WHEN new.{KEY} <= {guard}" if guard else ""
    old = f" WHEN old.{KEY} <= {guard}" if guard else ""
    op.execute(f"CREATE TRIGGER {SEARCH}_insert AFTER INSERT ON {TABLE}{new} BEGIN {add} END")
    op.execute(f"CREATE TRIGGER {SEARCH}_delete AFTER DELETE ON {TABLE}{old} BEGIN {remove} END")
    op.execute(
        f"CREATE TRIGGER {SEARCH}_update AFTER UPDATE OF {COLUMN} ON {TABLE}{old} "
        f"BEGIN {remove} {add} END"
    )


def _drop_triggers() -> None:
    for event in EVENTS:
        op.execute(f"DROP TRIGGER {SEARCH}_{event}")


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    _drop_triggers()
    op.execute(f"CREATE TABLE {MARK} (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL)")
    # Every message so far is indexed (revision 0002's triggers): the mark starts at the last.
    op.execute(f"INSERT INTO {MARK} (id, seq) SELECT 1, coalesce(max({KEY}), 0) FROM {TABLE}")
    _triggers(f"(SELECT seq FROM {MARK})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    _drop_triggers()
    op.execute(
        f"INSERT INTO {SEARCH}(rowid, {COLUMN}) SELECT {KEY}, {COLUMN} FROM {TABLE} "
        f"WHERE {KEY} > (SELECT seq FROM {MARK}) ORDER BY {KEY}"
    )
    op.execute(f"DROP TABLE {MARK}")
    _triggers(None)
