"""Aggregates over all sessions: statistics and daily cost trends."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal

from statekeeper.dialects import as_date
from statekeeper.executor import UnitOfWork
from statekeeper.queries import sessions as q
from statekeeper.schemas import CostTrend, SessionStatistics
from statekeeper.values import MONEY_PLACES, ZERO, utcnow

__all__ = ["cost_trends", "statistics"]


def _money(value: object) -> Decimal:
    """A database aggregate (float on SQLite, Decimal on PostgreSQL) as exact money."""
    if value is None:
        return ZERO
    return Decimal(str(value)).quantize(Decimal(1).scaleb(-MONEY_PLACES))


def statistics(uow: UnitOfWork) -> SessionStatistics:
    """Session counts, with cost and duration averaged over completed sessions."""
    total, completed, failed, avg_cost, avg_duration = uow.execute(q.statistics()).one()
    return SessionStatistics(
        total_sessions=total,
        completed_sessions=completed,
        failed_sessions=failed,
        avg_cost_usd=_money(avg_cost),
        avg_duration_ms=round(float(avg_duration or 0)),
    )


def cost_trends(uow: UnitOfWork, days: int) -> list[CostTrend]:
    """One entry per UTC day for the last `days` days (today included), oldest first."""
    today = utcnow().date()
    first = today - timedelta(days=days - 1)
    since = datetime.combine(first, time(), tzinfo=utcnow().tzinfo)
    rows = uow.execute(q.cost_by_day(uow.dialect.name, since))
    found = {as_date(d): (_money(cost), n) for d, cost, n in rows}
    trends = []
    for offset in range(days):
        current = first + timedelta(days=offset)
        cost, sessions = found.get(current, (ZERO, 0))
        trends.append(CostTrend(day=current, cost_usd=cost, sessions=sessions))
    return trends
