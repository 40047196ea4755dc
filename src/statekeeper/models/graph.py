"""LangGraph checkpoints and pending writes, kept per session (a LangGraph thread)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from statekeeper.models.base import Base, JsonValue, UTCDateTime
from statekeeper.values import utcnow

__all__ = ["GraphCheckpointRow", "GraphWriteRow"]


class GraphCheckpointRow(Base):
    """One LangGraph checkpoint of a thread (a session of kind `langgraph`).

    `checkpoint` is the serializer's typed bytes (`type` names the encoding); `metadata`
    is plain JSON so it can be filtered in SQL. `checkpoint_ns` is text without a limit:
    a subgraph's namespace grows with each level of nesting.
    """

    __tablename__ = "graph_checkpoints"

    session_id: Mapped[str] = mapped_column(
        String(255), ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True
    )
    checkpoint_ns: Mapped[str] = mapped_column(Text, primary_key=True, default="")
    checkpoint_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    parent_checkpoint_id: Mapped[str | None] = mapped_column(String(64))
    type: Mapped[str | None] = mapped_column(String(32))
    checkpoint: Mapped[bytes] = mapped_column(LargeBinary)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JsonValue, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class GraphWriteRow(Base):
    """A pending write of a task against a checkpoint (LangGraph's `put_writes`)."""

    __tablename__ = "graph_writes"

    session_id: Mapped[str] = mapped_column(
        String(255), ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True
    )
    checkpoint_ns: Mapped[str] = mapped_column(Text, primary_key=True, default="")
    checkpoint_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    task_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(Text)
    type: Mapped[str | None] = mapped_column(String(32))
    value: Mapped[bytes | None] = mapped_column(LargeBinary)
    task_path: Mapped[str] = mapped_column(Text, default="")
