"""`statekeeper stats`: session counts, averages and daily cost."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from statekeeper.cli.output import JsonFlag, emit_json, fail, print_fields, print_table, say
from statekeeper.cli.store import open_manager

__all__ = ["stats"]


def stats(
    ctx: typer.Context,
    days: Annotated[int, typer.Option(help="How many days of daily cost to show.")] = 7,
    plot: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE.png",
            help="Also draw cost per day and phase durations into this image (matplotlib).",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Show session counts, averages over completed sessions, and cost per day."""
    with open_manager(ctx) as sm:
        statistics = sm.get_statistics()
        trends = sm.get_cost_trends(days)
        if plot is not None:
            _plot(sm, plot)
    if as_json:
        emit_json(
            {
                "statistics": statistics.model_dump(mode="json"),
                "cost_trends": [trend.model_dump(mode="json") for trend in trends],
            }
        )
        return
    print_fields(statistics.model_dump().items(), title="Sessions")
    if plot is not None:
        say(f"plots written to {plot}")
    print_table(
        ["day", "sessions", "cost_usd"],
        [(trend.day, trend.sessions, trend.cost_usd) for trend in trends],
        title=f"Cost per day, last {days} days",
    )


def _plot(sm: object, path: Path) -> None:
    """The notebook's overview plots, into an image file; one line when a package is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: never open a window from a command
        from statekeeper import analytics

        analytics.plot_overview(sm, path)
    except ModuleNotFoundError as exc:
        fail(f"{exc.name} is not installed: --plot needs pip install 'statekeeper[analytics]'")
