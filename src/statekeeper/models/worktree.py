"""The worktree aggregate: agent instances of a session and its chat messages."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from statekeeper.enums import ChatRole, InstanceStatus
from statekeeper.models.base import Base, BigIntPK, JsonOrNull, UTCDateTime, check_in, new_id
from statekeeper.values import utcnow

if TYPE_CHECKING:
    from statekeeper.models.session import SessionRow

__all__ = ["ChatMessageRow", "InstanceRow"]


class InstanceRow(Base):
    """One agent working in its own git worktree for a session."""

    __tablename__ = "instances"
    __table_args__ = (
        UniqueConstraint("session_id", "instance_number"),
        CheckConstraint(check_in("status", tuple(InstanceStatus)), name="status"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(
        String(255), ForeignKey("sessions.id", ondelete="CASCADE")
    )
    instance_number: Mapped[int] = mapped_column(Integer)
    worktree_path: Mapped[str] = mapped_column(Text)
    branch: Mapped[str] = mapped_column(Text)
    agent_name: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=InstanceStatus.IDLE.value)
    tmux_session_id: Mapped[str] = mapped_column(Text)
    output: Mapped[str | None] = mapped_column(Text)
    start_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    files_changed: Mapped[int | None] = mapped_column(Integer)
    lines_added: Mapped[int | None] = mapped_column(Integer)
    lines_deleted: Mapped[int | None] = mapped_column(Integer)
    runtime: Mapped[str | None] = mapped_column(String(64))
    model: Mapped[str | None] = mapped_column(String(255))
    runtime_label: Mapped[str | None] = mapped_column(Text)

    session: Mapped[SessionRow] = relationship(back_populates="instances")


class ChatMessageRow(Base):
    """A chat message; `seq` orders messages exactly as they were inserted.

    Its identity is `id`: `orm_session.get(ChatMessageRow, message_id)`.
    """

    __tablename__ = "chat_messages"
    __table_args__ = (
        CheckConstraint(check_in("role", tuple(ChatRole)), name="role"),
        Index("ix_chat_messages_session_id_seq", "session_id", "seq"),
    )

    seq: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(255), unique=True, default=new_id)
    session_id: Mapped[str] = mapped_column(
        String(255), ForeignKey("sessions.id", ondelete="CASCADE")
    )
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    instance_number: Mapped[int | None] = mapped_column(Integer)
    item: Mapped[Any] = mapped_column(JsonOrNull, nullable=True)
    """The whole item, verbatim, of a message that is more than role and text (an OpenAI
    Agents SDK tool call, its output, reasoning); None for a plain message."""

    session: Mapped[SessionRow] = relationship(back_populates="chat_messages")

    __mapper_args__ = {"primary_key": [id]}
