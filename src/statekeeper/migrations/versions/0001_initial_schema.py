"""initial schema: sessions, phases, context, worktrees, events

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _json(name: str, *, nullable: bool = False) -> sa.Column[object]:
    kind = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    return sa.Column(name, kind, nullable=nullable)


def _money(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.Numeric(precision=15, scale=8), nullable=False)


def _pk(name: str) -> sa.Column[object]:
    kind = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    return sa.Column(name, kind, autoincrement=True, nullable=False)


def _session_fk(*, nullable: bool = False) -> sa.Column[object]:
    return sa.Column("session_id", sa.String(255), nullable=nullable)


def _cascade_to_sessions(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["session_id"], ["sessions.id"], name=f"fk_{table}_session_id_sessions", ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "schema_migrations",
        sa.Column("revision", sa.String(64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        _ts("applied_at"),
        sa.PrimaryKeyConstraint("revision", name="pk_schema_migrations"),
    )
    op.create_table(
        "workspaces",
        sa.Column("id", sa.String(16), nullable=False),
        sa.Column("path", sa.Text(), nullable=True),
        _ts("last_accessed"),
        sa.PrimaryKeyConstraint("id", name="pk_workspaces"),
        sa.UniqueConstraint("path", name="uq_workspaces_path"),
    )
    op.create_table(
        "sessions",
        _pk("pk"),
        sa.Column("id", sa.String(255), nullable=False),
        sa.Column("workspace_id", sa.String(16), nullable=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("task", sa.Text(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("completed_at", nullable=True),
        sa.Column("duration_ms", sa.BigInteger(), nullable=True),
        _money("cost_usd"),
        sa.Column("tokens_in", sa.BigInteger(), nullable=False),
        sa.Column("tokens_out", sa.BigInteger(), nullable=False),
        sa.Column("output_markdown", sa.Text(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("model", sa.String(255), nullable=True),
        sa.Column("timeout_seconds", sa.BigInteger(), nullable=True),
        sa.Column("preserve_worktrees", sa.Boolean(), nullable=True),
        sa.Column("winner_instance", sa.Integer(), nullable=True),
        _json("runtime_mix", nullable=True),
        sa.Column("files_changed", sa.Integer(), nullable=True),
        sa.Column("lines_added", sa.Integer(), nullable=True),
        sa.Column("lines_deleted", sa.Integer(), nullable=True),
        _json("metadata"),
        sa.CheckConstraint(
            "status IN ('running', 'paused', 'completed', 'failed')",
            name=op.f("ck_sessions_status"),
        ),
        sa.CheckConstraint("cost_usd >= 0", name=op.f("ck_sessions_cost_non_negative")),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name="fk_sessions_workspace_id_workspaces",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("pk", name="pk_sessions"),
        sa.UniqueConstraint("id", name="uq_sessions_id"),
    )
    op.create_index("ix_sessions_created_at_id", "sessions", ["created_at", "id"])
    op.create_index("ix_sessions_status_created_at", "sessions", ["status", "created_at", "id"])
    op.create_index("ix_sessions_kind_created_at", "sessions", ["kind", "created_at", "id"])
    op.create_index(
        "ix_sessions_workspace_id_created_at", "sessions", ["workspace_id", "created_at", "id"]
    )
    op.create_index("ix_sessions_status_completed_at", "sessions", ["status", "completed_at"])

    op.create_table(
        "phase_completions",
        _pk("id"),
        _session_fk(),
        sa.Column("phase_id", sa.String(255), nullable=False),
        _ts("completed_at"),
        sa.Column("duration_ms", sa.BigInteger(), nullable=False),
        _json("output"),
        _money("cost_usd"),
        sa.Column("tokens_in", sa.BigInteger(), nullable=False),
        sa.Column("tokens_out", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("cost_usd >= 0", name=op.f("ck_phase_completions_cost_non_negative")),
        sa.CheckConstraint(
            "duration_ms >= 0", name=op.f("ck_phase_completions_duration_non_negative")
        ),
        _cascade_to_sessions("phase_completions"),
        sa.PrimaryKeyConstraint("id", name="pk_phase_completions"),
        sa.UniqueConstraint(
            "session_id", "phase_id", name="uq_phase_completions_session_id_phase_id"
        ),
    )
    op.create_index("ix_phase_completions_session_id_id", "phase_completions", ["session_id", "id"])
    op.create_table(
        "workflow_context",
        _session_fk(),
        _json("data"),
        sa.Column("version", sa.Integer(), nullable=False),
        _ts("updated_at"),
        _cascade_to_sessions("workflow_context"),
        sa.PrimaryKeyConstraint("session_id", name="pk_workflow_context"),
    )
    op.create_table(
        "instances",
        _pk("id"),
        _session_fk(),
        sa.Column("instance_number", sa.Integer(), nullable=False),
        sa.Column("worktree_path", sa.Text(), nullable=False),
        sa.Column("branch", sa.Text(), nullable=False),
        sa.Column("agent_name", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("tmux_session_id", sa.Text(), nullable=False),
        sa.Column("output", sa.Text(), nullable=True),
        _ts("start_time", nullable=True),
        _ts("end_time", nullable=True),
        sa.Column("files_changed", sa.Integer(), nullable=True),
        sa.Column("lines_added", sa.Integer(), nullable=True),
        sa.Column("lines_deleted", sa.Integer(), nullable=True),
        sa.Column("runtime", sa.String(64), nullable=True),
        sa.Column("model", sa.String(255), nullable=True),
        sa.Column("runtime_label", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('idle', 'running', 'completed', 'failed', 'paused', 'archived')",
            name=op.f("ck_instances_status"),
        ),
        _cascade_to_sessions("instances"),
        sa.PrimaryKeyConstraint("id", name="pk_instances"),
        sa.UniqueConstraint(
            "session_id", "instance_number", name="uq_instances_session_id_instance_number"
        ),
    )
    op.create_table(
        "chat_messages",
        _pk("seq"),
        sa.Column("id", sa.String(255), nullable=False),
        _session_fk(),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        _ts("created_at"),
        sa.Column("instance_number", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "role IN ('user', 'assistant', 'system')", name=op.f("ck_chat_messages_role")
        ),
        _cascade_to_sessions("chat_messages"),
        sa.PrimaryKeyConstraint("seq", name="pk_chat_messages"),
        sa.UniqueConstraint("id", name="uq_chat_messages_id"),
    )
    op.create_index("ix_chat_messages_session_id_seq", "chat_messages", ["session_id", "seq"])
    op.create_table(
        "events",
        _pk("seq"),
        sa.Column("id", sa.String(36), nullable=False),
        _session_fk(nullable=True),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("actor_type", sa.String(64), nullable=False),
        sa.Column("actor_id", sa.String(255), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        _json("metadata"),
        _ts("created_at"),
        _cascade_to_sessions("events"),
        sa.PrimaryKeyConstraint("seq", name="pk_events"),
        sa.UniqueConstraint("id", name="uq_events_id"),
    )
    op.create_index("ix_events_session_id_seq", "events", ["session_id", "seq"])
    op.create_index("ix_events_event_type_seq", "events", ["event_type", "seq"])


def downgrade() -> None:
    for table in (
        "events",
        "chat_messages",
        "instances",
        "workflow_context",
        "phase_completions",
        "sessions",
        "workspaces",
        "schema_migrations",
    ):
        op.drop_table(table)
