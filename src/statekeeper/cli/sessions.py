"""`statekeeper sessions`: list, show, export, import, delete and prune stored runs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from statekeeper.cli.output import (
    JsonFlag,
    emit_json,
    fail,
    print_fields,
    print_table,
    say,
)
from statekeeper.cli.store import open_manager
from statekeeper.errors import SessionNotFound

__all__ = ["app"]

app = typer.Typer(
    help="List, show, export, import, delete and prune sessions.", no_args_is_help=True
)

SessionId = Annotated[str, typer.Argument(metavar="ID", help="Session id.")]


@app.command("list")
def list_sessions(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(help="Most sessions to show.")] = 50,
    status: Annotated[
        str | None, typer.Option(help="Only this status: running, paused, completed or failed.")
    ] = None,
    kind: Annotated[str | None, typer.Option(help="Only this kind, e.g. workflow.")] = None,
    workspace: Annotated[
        Path | None, typer.Option(help="Only sessions of this workspace directory.")
    ] = None,
    before: Annotated[
        str | None,
        typer.Option(metavar="ID", help="Continue after this id (the last of the previous page)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """List sessions, newest first; page on with --before LAST_ID."""
    with open_manager(ctx) as sm:
        page = sm.get_session_history(
            limit, status=status, kind=kind, workspace=workspace, before=before
        )
    if as_json:
        emit_json([summary.model_dump(mode="json") for summary in page])
        return
    print_table(
        ["id", "subject", "kind", "status", "created_at", "duration_ms", "cost_usd"],
        [
            (s.id, s.subject, s.kind, s.status, s.created_at, s.duration_ms, s.cost_usd)
            for s in page
        ],
    )


@app.command()
def search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="Words to find; any text is safe.")],
    limit: Annotated[int, typer.Option(help="Most sessions to show.")] = 20,
    as_json: JsonFlag = False,
) -> None:
    """Find sessions whose subject, task, chat or instance output holds every word of QUERY."""
    with open_manager(ctx) as sm:
        hits = sm.search_sessions(query, limit=limit)
    if as_json:
        emit_json([hit.model_dump(mode="json") for hit in hits])
        return
    if not hits:
        say(f"no session matches {query!r}")
        return
    print_table(
        ["session", "source", "snippet", "rank"],
        [(h.session_id, h.source, h.snippet, f"{h.rank:.3g}") for h in hits],
    )


@app.command()
def show(ctx: typer.Context, session_id: SessionId, as_json: JsonFlag = False) -> None:
    """Show a session with its completed phases, saved context, instances and chat."""
    with open_manager(ctx) as sm:
        session = sm.get_session(session_id)
        if session is None:
            raise SessionNotFound(session_id)
        phases = sm.get_completed_phases(session_id)
        context = sm.load_context(session_id)
        instances = sm.get_instances(session_id)
        chat = sm.get_chat_history(session_id)
    if as_json:
        emit_json(
            {
                "session": session.model_dump(mode="json"),
                "phases": [phase.model_dump(mode="json") for phase in phases],
                "context": None if context is None else context.model_dump(mode="json"),
                "instances": [instance.model_dump(mode="json") for instance in instances],
                "chat": [message.model_dump(mode="json") for message in chat],
            }
        )
        return
    print_fields(session.model_dump().items(), title="Session")
    print_table(
        ["phase_id", "completed_at", "duration_ms", "cost_usd", "tokens_in", "tokens_out"],
        [
            (p.phase_id, p.completed_at, p.duration_ms, p.cost_usd, p.tokens_in, p.tokens_out)
            for p in phases
        ],
        title="Completed phases",
    )
    if context is None:
        say("no saved context")
    else:
        print_fields(context.model_dump().items(), title="Context")
    if instances:
        print_table(
            ["instance", "status", "agent_name", "branch", "worktree_path", "files_changed"],
            [
                (i.instance_id, i.status, i.agent_name, i.branch, i.worktree_path, i.files_changed)
                for i in instances
            ],
            title="Instances",
        )
    if chat:
        print_table(
            ["timestamp", "role", "instance", "content"],
            [(m.timestamp, m.role, m.instance_id, m.content) for m in chat],
            title="Chat",
        )


@app.command()
def export(
    ctx: typer.Context,
    session_id: SessionId,
    path: Annotated[Path, typer.Argument(help="JSON file to write (replaced atomically).")],
    as_json: JsonFlag = False,
) -> None:
    """Write a session and everything that belongs to it to a JSON file."""
    with open_manager(ctx) as sm:
        sm.export_session(session_id, path)
    if as_json:
        emit_json({"session_id": session_id, "path": str(path)})
    else:
        say(f"exported {session_id} to {path}")


@app.command("import")
def import_session(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A file written by `sessions export`.")],
    as_json: JsonFlag = False,
) -> None:
    """Import a session file written by `sessions export`: all of it or nothing."""
    with open_manager(ctx, create=True) as sm:
        session_id = sm.import_session(path)
    if as_json:
        emit_json({"session_id": session_id})
    else:
        say(f"imported {session_id}")


def _can_ask() -> bool:
    """Whether a person can answer a confirmation prompt (scripts must pass --yes)."""
    return sys.stdin.isatty()


@app.command()
def delete(
    ctx: typer.Context,
    session_id: SessionId,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Delete a session and everything that belongs to it (asks first, unless --yes)."""
    if not yes:
        if not _can_ask():
            fail(f"refusing to delete session {session_id} without --yes", code=2)
        # The prompt goes to stderr so that --json output stays the whole of stdout.
        typer.confirm(f"Delete session {session_id}?", abort=True, err=True)
    with open_manager(ctx) as sm:
        sm.delete_session(session_id)
    if as_json:
        emit_json({"session_id": session_id, "deleted": True})
    else:
        say(f"deleted {session_id}")


@app.command()
def cleanup(
    ctx: typer.Context,
    days: Annotated[
        int, typer.Option(help="Delete completed and failed sessions finished over DAYS ago.")
    ],
    as_json: JsonFlag = False,
) -> None:
    """Delete completed and failed sessions older than --days, and print how many."""
    with open_manager(ctx) as sm:
        deleted = sm.cleanup_old_sessions(days)
    if as_json:
        emit_json({"deleted": deleted})
    else:
        say(f"deleted {deleted} sessions")
