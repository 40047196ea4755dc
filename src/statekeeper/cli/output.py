"""How commands print: rich tables for people, JSON for machines, one stderr line on failure."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["JsonFlag", "cell", "emit_json", "fail", "print_fields", "print_table", "say"]

JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print JSON on stdout (and nothing else) instead of text.")
]
"""The `--json` option every command takes."""


def emit_json(value: Any) -> None:
    """Print `value` as JSON: it is the whole of stdout, so the output parses as one document."""
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def say(message: str) -> None:
    """Print one plain line of human output."""
    typer.echo(message)


def fail(message: str, *, code: int = 1) -> NoReturn:
    """Print `error: <message>` on stderr, folded onto one line, and exit with `code`."""
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    raise typer.Exit(code)


def cell(value: object) -> str:
    """Text for a table cell: money as plain decimals, times as ISO-8601, JSON compact."""
    if value is None:
        return "-"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def print_table(
    columns: Sequence[str], rows: Iterable[Sequence[object]], *, title: str | None = None
) -> None:
    """Print rows under a header; the first column (an id or a name) never wraps."""
    from rich.table import Table

    table = Table(title=title)
    for index, column in enumerate(columns):
        table.add_column(column, no_wrap=index == 0)
    for row in rows:
        table.add_row(*(cell(value) for value in row))
    _console().print(table)


def print_fields(fields: Iterable[tuple[str, object]], *, title: str | None = None) -> None:
    """Print name/value pairs as a two-column table without a header."""
    from rich.table import Table

    table = Table(title=title, show_header=False)
    table.add_column("field", no_wrap=True, style="bold")
    table.add_column("value")
    for name, value in fields:
        table.add_row(name, cell(value))
    _console().print(table)


def _console() -> Console:
    """A console on the current stdout that never reads stored text as markup or emoji.

    When stdout is not a terminal, tables get all the width they need, so piped rows are
    never wrapped or cut.
    """
    from rich.console import Console

    width = None if sys.stdout.isatty() else 100_000
    return Console(width=width, markup=False, emoji=False, highlight=False)
