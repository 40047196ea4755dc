"""Aggregates, reports and the event log."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import Field

from statekeeper.schemas.base import DTO, METADATA, Money, StoredObject

__all__ = [
    "CostTrend",
    "Event",
    "IntegrityReport",
    "MigrationRecord",
    "SchemaStatus",
    "SessionStatistics",
]


class SessionStatistics(DTO):
    """Counts over all sessions; averages over completed sessions only."""

    total_sessions: int
    completed_sessions: int
    failed_sessions: int
    avg_cost_usd: Money
    avg_duration_ms: int


class CostTrend(DTO):
    """Spend on one UTC day, by sessions created that day."""

    day: date
    cost_usd: Money
    sessions: int


class IntegrityReport(DTO):
    """The outcome of `integrity_check`: ok, or the problems found."""

    ok: bool
    problems: list[str]


class MigrationRecord(DTO):
    """A schema revision applied to this database."""

    revision: str
    description: str
    applied_at: datetime


class SchemaStatus(DTO):
    """Where a database stands in the migration chain (`revision` None: empty)."""

    revision: str | None
    head: str
    at_head: bool


class Event(DTO):
    """An entry of the event log."""

    id: str
    session_id: str | None
    event_type: str
    actor_type: str
    actor_id: str
    content: str
    metadata: StoredObject = Field(default_factory=dict, validation_alias=METADATA)
    created_at: datetime
