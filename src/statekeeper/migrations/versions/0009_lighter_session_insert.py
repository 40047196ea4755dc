"""a new session writes 12 WAL pages instead of 20: its task and subject indexed in batches,
two partial indexes

SQLite: the FTS5 inserts of a session's task and subject wrote six of the twenty pages a
`create_session` commits. They are now indexed by the first search after them, in one
batch, as chat (revision 0007) and events (0005) are: `search_task_indexed` and
`search_subject_indexed` mark how far, and the triggers keep the index exact for rows at
or below the mark. Both engines: retention's index holds only finished sessions
(`completed_at IS NOT NULL`) and the workspace history index only sessions with a
workspace, so a running session without one touches neither.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE, KEY = "sessions", "pk"
SOURCES = (("search_task", "task"), ("search_subject", "subject"))
EVENTS = ("insert", "delete", "update")
# (name, columns, the rows it holds: None for all of them)
PARTIAL = (
    ("ix_sessions_status_completed_at", ["status", "completed_at"], "completed_at IS NOT NULL"),
    (
        "ix_sessions_workspace_id_created_at",
        ["workspace_id", "created_at", "id"],
        "workspace_id IS NOT NULL",
    ),
)


def _triggers(search: str, column: str, guard: str | None) -> None:
    """Revision 0002's triggers, each firing only for rows `guard` selects (None: all)."""
    add = f"INSERT INTO {search}(rowid, {column}) VALUES (new.{KEY}, new.{column});"
    remove = (
        f"INSERT INTO {search}({search}, rowid, {column}) "
        f"VALUES ('delete', old.{KEY}, old.{column});"
    )
    new = f" WHEN new.{KEY} <= {guard}" if guard else ""
    old = f" WHEN old.{KEY} <= {guard}" if guard else ""
    op.execute(f"CREATE TRIGGER {search}_insert AFTER INSERT ON {TABLE}{new} BEGIN {add} END")
    op.execute(f"CREATE TRIGGER {search}_delete AFTER DELETE ON {TABLE}{old} BEGIN {remove} END")
    op.execute(
        f"CREATE TRIGGER {search}_update AFTER UPDATE OF {column} ON {TABLE}{old} "
        f"BEGIN {remove} {add} END"
    )


def _drop_triggers(search: str) -> None:
    for event in EVENTS:
        op.execute(f"DROP TRIGGER {search}_{event}")


def _indexes(partial: bool) -> None:
    dialect = op.get_bind().dialect.name
    for name, columns, where in PARTIAL:
        op.drop_index(name, table_name=TABLE)
        condition: dict[str, Any] = {f"{dialect}_where": sa.text(where)} if partial else {}
        op.create_index(name, TABLE, columns, **condition)


def upgrade() -> None:
    _indexes(partial=True)
    if op.get_bind().dialect.name != "sqlite":
        return
    for search, column in SOURCES:
        mark = f"{search}_indexed"
        _drop_triggers(search)
        op.execute(
            f"CREATE TABLE {mark} (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL)"
        )
        # Every session so far is indexed (revision 0002's triggers): the mark starts at the last.
        op.execute(f"INSERT INTO {mark} (id, seq) SELECT 1, coalesce(max({KEY}), 0) FROM {TABLE}")
        _triggers(search, column, f"(SELECT seq FROM {mark})")


def downgrade() -> None:
    _indexes(partial=False)
    if op.get_bind().dialect.name != "sqlite":
        return
    for search, column in SOURCES:
        mark = f"{search}_indexed"
        _drop_triggers(search)
        op.execute(
            f"INSERT INTO {search}(rowid, {column}) SELECT {KEY}, {column} FROM {TABLE} "
            f"WHERE {KEY} > (SELECT seq FROM {mark}) ORDER BY {KEY}"
        )
        op.execute(f"DROP TABLE {mark}")
        _triggers(search, column, None)
