"""framework adapters: LangGraph checkpoints and writes; verbatim items beside chat messages

A LangGraph thread is a session: its checkpoints and pending writes go with it. A chat
message written by the OpenAI Agents SDK adapter that is more than role and text keeps the
whole item as JSON in `chat_messages.item` (added in place: no table rebuild, so the
full-text triggers of revision 0002 stay).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json(name: str, *, nullable: bool = False) -> sa.Column[object]:
    kind = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    return sa.Column(name, kind, nullable=nullable)


def _to_sessions(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["session_id"], ["sessions.id"], name=f"fk_{table}_session_id_sessions", ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "graph_checkpoints",
        sa.Column("session_id", sa.String(255), nullable=False),
        sa.Column("checkpoint_ns", sa.Text(), nullable=False),
        sa.Column("checkpoint_id", sa.String(64), nullable=False),
        sa.Column("parent_checkpoint_id", sa.String(64), nullable=True),
        sa.Column("type", sa.String(32), nullable=True),
        sa.Column("checkpoint", sa.LargeBinary(), nullable=False),
        _json("metadata"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _to_sessions("graph_checkpoints"),
        sa.PrimaryKeyConstraint(
            "session_id", "checkpoint_ns", "checkpoint_id", name="pk_graph_checkpoints"
        ),
    )
    op.create_table(
        "graph_writes",
        sa.Column("session_id", sa.String(255), nullable=False),
        sa.Column("checkpoint_ns", sa.Text(), nullable=False),
        sa.Column("checkpoint_id", sa.String(64), nullable=False),
        sa.Column("task_id", sa.String(255), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("type", sa.String(32), nullable=True),
        sa.Column("value", sa.LargeBinary(), nullable=True),
        sa.Column("task_path", sa.Text(), nullable=False),
        _to_sessions("graph_writes"),
        sa.PrimaryKeyConstraint(
            "session_id", "checkpoint_ns", "checkpoint_id", "task_id", "idx", name="pk_graph_writes"
        ),
    )
    op.add_column("chat_messages", _json("item", nullable=True))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # DROP COLUMN in place (SQLite >= 3.35): a batch rebuild would drop the FTS triggers.
        op.execute("ALTER TABLE chat_messages DROP COLUMN item")
    else:
        op.drop_column("chat_messages", "item")
    op.drop_table("graph_writes")
    op.drop_table("graph_checkpoints")
