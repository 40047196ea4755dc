"""`statekeeper events`: page through the event log by session or type, and search it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from statekeeper.cli.output import JsonFlag, emit_json, fail, print_table, say
from statekeeper.cli.store import open_manager

if TYPE_CHECKING:
    from statekeeper.schemas import Event

__all__ = ["app"]

app = typer.Typer(help="List and search the event log.", no_args_is_help=True)

SessionOption = Annotated[
    str | None, typer.Option("--session", metavar="ID", help="Only this session's events.")
]
TypeOption = Annotated[
    str | None, typer.Option("--type", metavar="TYPE", help="Only events of this type.")
]


def _print(events: Sequence[Event], as_json: bool) -> None:
    """Print events as one JSON list, or as a table (their metadata in JSON only)."""
    if as_json:
        emit_json([event.model_dump(mode="json") for event in events])
        return
    print_table(
        ["id", "created_at", "event_type", "session_id", "actor", "content"],
        [
            (
                e.id,
                e.created_at,
                e.event_type,
                e.session_id,
                f"{e.actor_type}:{e.actor_id}",
                e.content,
            )
            for e in events
        ],
    )


@app.command("list")
def list_events(
    ctx: typer.Context,
    session_id: SessionOption = None,
    event_type: TypeOption = None,
    limit: Annotated[int | None, typer.Option(help="Most events to show (default: all).")] = None,
    after: Annotated[
        str | None,
        typer.Option(metavar="ID", help="Continue after this id (the last of the previous page)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """List a session's events, or one type's, in the order they happened."""
    if (session_id is None) == (event_type is None):
        fail("give exactly one of --session and --type")
    with open_manager(ctx) as sm:
        if session_id is not None:
            events = sm.get_events(session_id, limit=limit, after=after)
        else:
            assert event_type is not None
            events = sm.get_events_by_type(event_type, limit=limit, after=after)
    _print(events, as_json)


@app.command()
def search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="Words to find; any text is safe.")],
    limit: Annotated[int, typer.Option(help="Most events to show.")] = 50,
    before: Annotated[
        str | None,
        typer.Option(metavar="ID", help="Continue after this id (the last of the previous page)."),
    ] = None,
    session_id: SessionOption = None,
    event_type: TypeOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Find events whose content holds every word of QUERY, newest first."""
    with open_manager(ctx) as sm:
        hits = sm.search_events(
            query, limit=limit, before=before, session_id=session_id, event_type=event_type
        )
    if not hits and not as_json:
        say(f"no event matches {query!r}")
        return
    _print(hits, as_json)
