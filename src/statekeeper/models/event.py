"""The event log: an append-only audit trail of what happened to sessions and agents."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from statekeeper.models.base import Base, BigIntPK, JsonValue, UTCDateTime, new_id
from statekeeper.values import utcnow

if TYPE_CHECKING:
    from statekeeper.models.session import SessionRow

__all__ = ["EventRow", "MigrationRow"]


class EventRow(Base):
    """One event; `seq` orders the log exactly as it was appended.

    Its identity is `id`: `orm_session.get(EventRow, event_id)`.
    """

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_session_id_seq", "session_id", "seq"),
        Index("ix_events_event_type_seq", "event_type", "seq"),
    )

    seq: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True, default=new_id)
    session_id: Mapped[str | None] = mapped_column(
        String(255), ForeignKey("sessions.id", ondelete="CASCADE")
    )
    event_type: Mapped[str] = mapped_column(String(64))
    actor_type: Mapped[str] = mapped_column(String(64), default="system")
    actor_id: Mapped[str] = mapped_column(String(255), default="statekeeper")
    content: Mapped[str] = mapped_column(Text)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JsonValue, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    session: Mapped[SessionRow | None] = relationship(back_populates="events")

    __mapper_args__ = {"primary_key": [id]}


class MigrationRow(Base):
    """When each schema revision was applied to this database (Alembic keeps only the head)."""

    __tablename__ = "schema_migrations"

    revision: Mapped[str] = mapped_column(String(64), primary_key=True)
    description: Mapped[str] = mapped_column(Text)
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
