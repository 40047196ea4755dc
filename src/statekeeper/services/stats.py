"""Aggregates over all sessions: statistics and daily cost trends."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal

import sqlalchemy as sa

from statekeeper.dialects import TALLY_FOLD, as_date
from statekeeper.executor import UnitOfWork
from statekeeper.queries import sessions as q
from statekeeper.schemas import CostTrend, SessionStatistics
from statekeeper.values import MONEY_PLACES, ZERO, utcnow

__all__ = ["FOLD_AT", "cost_trends", "fold_tally", "statistics"]


def _money(value: object) -> Decimal:
    """A database aggregate (float on SQLite, Decimal on PostgreSQL) as exact money."""
    if value is None:
        return ZERO
    return Decimal(str(value)).quantize(Decimal(1).scaleb(-MONEY_PLACES))


FOLD_AT = 256
"""Tally rows beyond which a reader folds them into one (each session change adds one)."""


def statistics(uow: UnitOfWork) -> tuple[SessionStatistics, int]:
    """Session counts, with cost and duration averaged over completed sessions, from the
    tallies the triggers keep (revision 0008); and how many tally rows were summed."""
    row = uow.execute(q.TALLIES).one()
    total, completed, failed, cost_units, timed, duration_ms, parts = (int(v) for v in row)
    avg_cost = Decimal(cost_units).scaleb(-MONEY_PLACES) / completed if completed else ZERO
    return (
        SessionStatistics(
            total_sessions=total,
            completed_sessions=completed,
            failed_sessions=failed,
            avg_cost_usd=_money(avg_cost),
            avg_duration_ms=round(duration_ms / timed) if timed else 0,
        ),
        parts,
    )


def fold_tally(uow: UnitOfWork) -> None:
    """Fold the tally's rows into one, so reads stay as cheap as the store grows."""
    for statement in TALLY_FOLD[uow.dialect.name]:
        uow.execute(sa.text(statement))


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
