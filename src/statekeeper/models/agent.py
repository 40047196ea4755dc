"""The agent store: agents with versioned state, their status transitions, snapshots, tasks."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from statekeeper.compression import unpack
from statekeeper.enums import AgentStatus, TaskStatus
from statekeeper.models.base import (
    Base,
    BigIntPK,
    JsonOrNull,
    JsonValue,
    UTCDateTime,
    check_in,
    new_id,
)
from statekeeper.values import utcnow

if TYPE_CHECKING:
    from statekeeper.models.session import SessionRow

__all__ = ["AgentRow", "SnapshotRow", "StateTransitionRow", "TaskRow"]

_AGENT_KEY = ("namespace", "agent_id")
_AGENT_REF = ("agents.namespace", "agents.agent_id")


class AgentRow(Base):
    """An agent's saved state, keyed by (namespace, agent_id); `version` counts its saves.

    `state_data` is NULL when the state was stored compressed in `state_data_zstd`:
    `decoded_state` gives the value either way. `deleted_at` marks a soft delete.
    The ORM checks `version` on flush too (version_id_col), so a stale edit raises.
    """

    __tablename__ = "agents"
    __table_args__ = (
        CheckConstraint(check_in("status", tuple(AgentStatus)), name="status"),
        CheckConstraint("version >= 1", name="version_positive"),
        Index("ix_agents_namespace_status_agent_id", "namespace", "status", "agent_id"),
        Index("ix_agents_deleted_at", "deleted_at"),
    )

    namespace: Mapped[str] = mapped_column(String(255), primary_key=True, default="default")
    agent_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=AgentStatus.IDLE.value)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JsonValue, default=dict)
    state_data: Mapped[Any] = mapped_column(JsonOrNull, nullable=True)
    state_data_zstd: Mapped[bytes | None] = mapped_column(LargeBinary)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    transitions: Mapped[list[StateTransitionRow]] = relationship(
        back_populates="agent",
        order_by="StateTransitionRow.id",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )
    snapshots: Mapped[list[SnapshotRow]] = relationship(
        back_populates="agent",
        order_by="SnapshotRow.pk",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )

    __mapper_args__ = {"version_id_col": version}

    @property
    def decoded_state(self) -> Any:
        """The agent's state, decompressed if it was stored compressed."""
        return unpack(self.state_data, self.state_data_zstd, f"state of agent {self.agent_id!r}")


class StateTransitionRow(Base):
    """One status change of an agent: recorded by the API on every change, or explicitly.

    `state_before` is NULL for the agent's creation.
    """

    __tablename__ = "state_transitions"
    __table_args__ = (
        ForeignKeyConstraint(_AGENT_KEY, _AGENT_REF, ondelete="CASCADE"),
        Index("ix_state_transitions_namespace_agent_id_id", "namespace", "agent_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    namespace: Mapped[str] = mapped_column(String(255), default="default")
    agent_id: Mapped[str] = mapped_column(String(255))
    state_before: Mapped[str | None] = mapped_column(String(64))
    state_after: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JsonValue, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    agent: Mapped[AgentRow] = relationship(back_populates="transitions")


class SnapshotRow(Base):
    """A recovery point of a session (context, completed phases, cost) or of an agent.

    Exactly one owner: `session_id`, or (`namespace`, `agent_id`). `payload` is NULL when
    stored compressed in `payload_zstd`; `decoded_payload` gives it either way. `size_bytes`
    is the size of its JSON text. Its identity is `id`; `pk` orders snapshots as created.
    """

    __tablename__ = "snapshots"
    __table_args__ = (
        ForeignKeyConstraint(_AGENT_KEY, _AGENT_REF, ondelete="CASCADE"),
        CheckConstraint("(session_id IS NULL) <> (agent_id IS NULL)", name="one_owner"),
        CheckConstraint("(agent_id IS NULL) = (namespace IS NULL)", name="agent_namespace"),
        Index("ix_snapshots_session_id_pk", "session_id", "pk"),
        Index("ix_snapshots_namespace_agent_id_pk", "namespace", "agent_id", "pk"),
        Index("ix_snapshots_expires_at", "expires_at"),
    )

    pk: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True, default=new_id)
    session_id: Mapped[str | None] = mapped_column(
        String(255), ForeignKey("sessions.id", ondelete="CASCADE")
    )
    namespace: Mapped[str | None] = mapped_column(String(255))
    agent_id: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[Any] = mapped_column(JsonOrNull, nullable=True)
    payload_zstd: Mapped[bytes | None] = mapped_column(LargeBinary)
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    session: Mapped[SessionRow | None] = relationship(back_populates="snapshots")
    agent: Mapped[AgentRow | None] = relationship(back_populates="snapshots")

    __mapper_args__ = {"primary_key": [id]}

    @property
    def decoded_payload(self) -> Any:
        """What the snapshot holds, decompressed if it was stored compressed."""
        return unpack(self.payload, self.payload_zstd, f"payload of snapshot {self.id!r}")


class TaskRow(Base):
    """A unit of work handed to an agent (or a person), with its status."""

    __tablename__ = "tasks"
    __table_args__ = (
        CheckConstraint(check_in("status", tuple(TaskStatus)), name="status"),
        Index("ix_tasks_status_created_at", "status", "created_at", "id"),
        Index("ix_tasks_assigned_to_created_at", "assigned_to", "created_at", "id"),
        Index("ix_tasks_created_at_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(255), primary_key=True, default=new_id)
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=TaskStatus.PENDING.value)
    assigned_to: Mapped[str | None] = mapped_column(String(255))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JsonValue, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
