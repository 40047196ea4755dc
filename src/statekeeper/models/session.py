"""The session aggregate: workspaces, sessions, phase checkpoints and workflow context."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from statekeeper.enums import SessionStatus
from statekeeper.models.base import (
    Base,
    BigIntPK,
    JsonValue,
    Money,
    UTCDateTime,
    check_in,
    new_id,
    zero,
)
from statekeeper.values import utcnow

if TYPE_CHECKING:
    from statekeeper.models.agent import SnapshotRow
    from statekeeper.models.event import EventRow
    from statekeeper.models.worktree import ChatMessageRow, InstanceRow

# Children go with their session; with passive_deletes the database cascades the delete,
# so the ORM need not load them first.
_OWNED = "all, delete-orphan"

__all__ = ["ContextRow", "PhaseRow", "SessionRow", "WorkspaceRow"]


def _only(condition: str) -> dict[str, Any]:
    """A partial index's condition on both engines: rows outside it cost a write nothing."""
    return {"sqlite_where": text(condition), "postgresql_where": text(condition)}


class WorkspaceRow(Base):
    """A workspace directory, keyed by the first 16 hex chars of sha256(canonical path).

    `path` is unknown (NULL) for a workspace known only by the hash in a legacy file's name.
    """

    __tablename__ = "workspaces"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    path: Mapped[str | None] = mapped_column(Text, unique=True)
    last_accessed: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    sessions: Mapped[list[SessionRow]] = relationship(
        back_populates="workspace",
        order_by="SessionRow.created_at",
        passive_deletes=True,  # the database sets their workspace_id to NULL
    )


class SessionRow(Base):
    """One run of a workflow (or a worktree competition, ensemble, debate...).

    Its identity is `id`, so `orm_session.get(SessionRow, session_id)` finds it; `pk` is a
    stable integer key the full-text indexes point at.
    """

    __tablename__ = "sessions"
    __table_args__ = (
        CheckConstraint(check_in("status", tuple(SessionStatus)), name="status"),
        CheckConstraint("cost_usd >= 0", name="cost_non_negative"),
        # Keyset paging of history, newest first, optionally filtered.
        Index("ix_sessions_created_at_id", "created_at", "id"),
        Index("ix_sessions_status_created_at", "status", "created_at", "id"),
        Index("ix_sessions_kind_created_at", "kind", "created_at", "id"),
        Index(
            "ix_sessions_workspace_id_created_at",
            "workspace_id",
            "created_at",
            "id",
            **_only("workspace_id IS NOT NULL"),
        ),
        # Retention finds terminal sessions by completion time; a running one is not in it.
        Index(
            "ix_sessions_status_completed_at",
            "status",
            "completed_at",
            **_only("completed_at IS NOT NULL"),
        ),
    )

    # A stable integer key: full-text indexes point at rows by it (VACUUM may renumber rowids
    # of tables without one); `id` is what callers and foreign keys use.
    pk: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(255), unique=True, default=new_id)
    workspace_id: Mapped[str | None] = mapped_column(
        String(16), ForeignKey("workspaces.id", ondelete="SET NULL")
    )
    kind: Mapped[str] = mapped_column(String(64), default="workflow")
    subject: Mapped[str | None] = mapped_column(Text)
    task: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=SessionStatus.RUNNING.value)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration_ms: Mapped[int | None] = mapped_column(BigInteger)
    cost_usd: Mapped[Decimal] = mapped_column(Money, default=zero)
    tokens_in: Mapped[int] = mapped_column(BigInteger, default=0)
    tokens_out: Mapped[int] = mapped_column(BigInteger, default=0)
    output_markdown: Mapped[str | None] = mapped_column(Text)
    error_message: Mapped[str | None] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(String(255))
    timeout_seconds: Mapped[int | None] = mapped_column(BigInteger)
    preserve_worktrees: Mapped[bool | None] = mapped_column(Boolean)
    winner_instance: Mapped[int | None] = mapped_column(Integer)
    runtime_mix: Mapped[list[str] | None] = mapped_column(JsonValue)
    files_changed: Mapped[int | None] = mapped_column(Integer)
    lines_added: Mapped[int | None] = mapped_column(Integer)
    lines_deleted: Mapped[int | None] = mapped_column(Integer)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JsonValue, default=dict)

    workspace: Mapped[WorkspaceRow | None] = relationship(back_populates="sessions")
    phases: Mapped[list[PhaseRow]] = relationship(
        back_populates="session",
        order_by="PhaseRow.id",
        cascade=_OWNED,
        passive_deletes=True,
    )
    context: Mapped[ContextRow | None] = relationship(
        back_populates="session", cascade=_OWNED, passive_deletes=True
    )
    instances: Mapped[list[InstanceRow]] = relationship(
        back_populates="session",
        order_by="InstanceRow.instance_number",
        cascade=_OWNED,
        passive_deletes=True,
    )
    chat_messages: Mapped[list[ChatMessageRow]] = relationship(
        back_populates="session",
        order_by="ChatMessageRow.seq",
        cascade=_OWNED,
        passive_deletes=True,
    )
    events: Mapped[list[EventRow]] = relationship(
        back_populates="session",
        order_by="EventRow.seq",
        cascade=_OWNED,
        passive_deletes=True,
    )
    snapshots: Mapped[list[SnapshotRow]] = relationship(
        back_populates="session",
        order_by="SnapshotRow.pk",
        cascade=_OWNED,
        passive_deletes=True,
    )

    __mapper_args__ = {"primary_key": [id]}


class PhaseRow(Base):
    """A completed phase of a session: its output, duration, cost and tokens."""

    __tablename__ = "phase_completions"
    __table_args__ = (
        UniqueConstraint("session_id", "phase_id"),
        # A session's phases in order, and its last phase, without sorting.
        Index("ix_phase_completions_session_id_id", "session_id", "id"),
        CheckConstraint("cost_usd >= 0", name="cost_non_negative"),
        CheckConstraint("duration_ms >= 0", name="duration_non_negative"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(
        String(255), ForeignKey("sessions.id", ondelete="CASCADE")
    )
    phase_id: Mapped[str] = mapped_column(String(255))
    completed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    duration_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    output: Mapped[Any] = mapped_column(JsonValue)
    cost_usd: Mapped[Decimal] = mapped_column(Money, default=zero)
    tokens_in: Mapped[int] = mapped_column(BigInteger, default=0)
    tokens_out: Mapped[int] = mapped_column(BigInteger, default=0)

    session: Mapped[SessionRow] = relationship(back_populates="phases")


class ContextRow(Base):
    """The workflow context of a session: one JSON object, versioned on every save."""

    __tablename__ = "workflow_context"

    session_id: Mapped[str] = mapped_column(
        String(255), ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True
    )
    data: Mapped[dict[str, Any]] = mapped_column(JsonValue, default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    session: Mapped[SessionRow] = relationship(back_populates="context")
