"""`statekeeper stats`: session counts, averages and daily cost."""

from __future__ import annotations

from typing import Annotated

import typer

from statekeeper.cli.output import JsonFlag, emit_json, print_fields, print_table
from statekeeper.cli.store import open_manager

__all__ = ["stats"]


def stats(
    ctx: typer.Context,
    days: Annotated[int, typer.Option(help="How many days of daily cost to show.")] = 7,
    as_json: JsonFlag = False,
) -> None:
    """Show session counts, averages over completed sessions, and cost per day."""
    with open_manager(ctx) as sm:
        statistics = sm.get_statistics()
        trends = sm.get_cost_trends(days)
    if as_json:
        emit_json(
            {
                "statistics": statistics.model_dump(mode="json"),
                "cost_trends": [trend.model_dump(mode="json") for trend in trends],
            }
        )
        return
    print_fields(statistics.model_dump().items(), title="Sessions")
    print_table(
        ["day", "sessions", "cost_usd"],
        [(trend.day, trend.sessions, trend.cost_usd) for trend in trends],
        title=f"Cost per day, last {days} days",
    )
