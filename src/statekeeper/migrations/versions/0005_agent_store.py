"""agent store: agents, state transitions, snapshots, tasks; full-text search of events

Agents are keyed by (namespace, agent_id); transitions and agent snapshots refer to them by
that pair and go with them. A snapshot belongs to a session or to an agent, never both.
Large agent states and snapshot payloads may be stored zstd-compressed in the `*_zstd`
columns, the JSON column then being NULL.
Event content is searchable: on SQLite an external-content FTS5 table filled in batches
before each search (search_events_indexed marks how far), on PostgreSQL a GIN expression
index.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEARCH, TABLE, KEY, COLUMN = "search_events", "events", "seq", "content"
MARK = "search_events_indexed"  # SQLite: how far the event log is indexed
TOKENIZER = "unicode61 remove_diacritics 0"  # as revision 0002: both engines match alike
PG_INDEXED_CHARS = 262_144


def _ts(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _json(name: str, *, nullable: bool = False) -> sa.Column[object]:
    kind = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    return sa.Column(name, kind, nullable=nullable)


def _pk(name: str) -> sa.Column[object]:
    kind = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    return sa.Column(name, kind, autoincrement=True, nullable=False)


def _to_agents(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["namespace", "agent_id"],
        ["agents.namespace", "agents.agent_id"],
        name=f"fk_{table}_namespace_agents",
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("namespace", sa.String(255), nullable=False),
        sa.Column("agent_id", sa.String(255), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        _json("metadata"),
        _json("state_data", nullable=True),
        sa.Column("state_data_zstd", sa.LargeBinary(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("deleted_at", nullable=True),
        sa.CheckConstraint(
            "status IN ('idle', 'running', 'paused', 'stopped', 'failed')",
            name=op.f("ck_agents_status"),
        ),
        sa.CheckConstraint("version >= 1", name=op.f("ck_agents_version_positive")),
        sa.PrimaryKeyConstraint("namespace", "agent_id", name="pk_agents"),
    )
    op.create_index(
        "ix_agents_namespace_status_agent_id", "agents", ["namespace", "status", "agent_id"]
    )
    op.create_index("ix_agents_deleted_at", "agents", ["deleted_at"])

    op.create_table(
        "state_transitions",
        _pk("id"),
        sa.Column("namespace", sa.String(255), nullable=False),
        sa.Column("agent_id", sa.String(255), nullable=False),
        sa.Column("state_before", sa.String(64), nullable=True),
        sa.Column("state_after", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        _json("metadata"),
        _ts("created_at"),
        _to_agents("state_transitions"),
        sa.PrimaryKeyConstraint("id", name="pk_state_transitions"),
    )
    op.create_index(
        "ix_state_transitions_namespace_agent_id_id",
        "state_transitions",
        ["namespace", "agent_id", "id"],
    )

    op.create_table(
        "snapshots",
        _pk("pk"),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("session_id", sa.String(255), nullable=True),
        sa.Column("namespace", sa.String(255), nullable=True),
        sa.Column("agent_id", sa.String(255), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        _json("payload", nullable=True),
        sa.Column("payload_zstd", sa.LargeBinary(), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        _ts("created_at"),
        _ts("expires_at", nullable=True),
        sa.CheckConstraint(
            "(session_id IS NULL) <> (agent_id IS NULL)", name=op.f("ck_snapshots_one_owner")
        ),
        sa.CheckConstraint(
            "(agent_id IS NULL) = (namespace IS NULL)", name=op.f("ck_snapshots_agent_namespace")
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name="fk_snapshots_session_id_sessions",
            ondelete="CASCADE",
        ),
        _to_agents("snapshots"),
        sa.PrimaryKeyConstraint("pk", name="pk_snapshots"),
        sa.UniqueConstraint("id", name="uq_snapshots_id"),
    )
    op.create_index("ix_snapshots_session_id_pk", "snapshots", ["session_id", "pk"])
    op.create_index(
        "ix_snapshots_namespace_agent_id_pk", "snapshots", ["namespace", "agent_id", "pk"]
    )
    op.create_index("ix_snapshots_expires_at", "snapshots", ["expires_at"])

    op.create_table(
        "tasks",
        sa.Column("id", sa.String(255), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("assigned_to", sa.String(255), nullable=True),
        _json("metadata"),
        _ts("created_at"),
        _ts("updated_at"),
        sa.CheckConstraint(
            "status IN ('pending', 'in_progress', 'completed', 'failed', 'cancelled')",
            name=op.f("ck_tasks_status"),
        ),
        sa.PrimaryKeyConstraint("id", name="pk_tasks"),
    )
    op.create_index("ix_tasks_status_created_at", "tasks", ["status", "created_at", "id"])
    op.create_index("ix_tasks_assigned_to_created_at", "tasks", ["assigned_to", "created_at", "id"])
    op.create_index("ix_tasks_created_at_id", "tasks", ["created_at", "id"])
    _create_event_search()


def _create_event_search() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            f"CREATE VIRTUAL TABLE {SEARCH} USING fts5({COLUMN}, content='{TABLE}', "
            f"content_rowid='{KEY}', tokenize='{TOKENIZER}')"
        )
        # Events are indexed in batches, by the first search after them (an FTS5 insert per
        # event would cost every logged change a segment write). Invariant: exactly the
        # events up to MARK.seq are indexed; the triggers keep it for rows at or below it
        # (a rowid SQLite reuses after deleting the newest events is indexed at once).
        op.execute(
            f"CREATE TABLE {MARK} (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL)"
        )
        op.execute(f"INSERT INTO {MARK} (id, seq) VALUES (1, 0)")
        indexed = f"(SELECT seq FROM {MARK})"
        add = f"INSERT INTO {SEARCH}(rowid, {COLUMN}) VALUES (new.{KEY}, new.{COLUMN});"
        remove = (
            f"INSERT INTO {SEARCH}({SEARCH}, rowid, {COLUMN}) "
            f"VALUES ('delete', old.{KEY}, old.{COLUMN});"
        )
        op.execute(
            f"CREATE TRIGGER {SEARCH}_insert AFTER INSERT ON {TABLE} "
            f"WHEN new.{KEY} <= {indexed} BEGIN {add} END"
        )
        op.execute(
            f"CREATE TRIGGER {SEARCH}_delete AFTER DELETE ON {TABLE} "
            f"WHEN old.{KEY} <= {indexed} BEGIN {remove} END"
        )
        op.execute(
            f"CREATE TRIGGER {SEARCH}_update AFTER UPDATE OF {COLUMN} ON {TABLE} "
            f"WHEN old.{KEY} <= {indexed} BEGIN {remove} {add} END"
        )
    else:
        vector = (
            f"to_tsvector('simple'::regconfig, left(coalesce({COLUMN}, ''), {PG_INDEXED_CHARS}))"
        )
        op.execute(
            f"CREATE INDEX {SEARCH}_fts ON {TABLE} USING gin ({vector}) WITH (fastupdate = off)"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for event in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER {SEARCH}_{event}")
        op.execute(f"DROP TABLE {SEARCH}")
        op.execute(f"DROP TABLE {MARK}")
    else:
        op.execute(f"DROP INDEX {SEARCH}_fts")
    for table in ("tasks", "snapshots", "state_transitions", "agents"):
        op.drop_table(table)
