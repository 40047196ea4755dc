"""`statekeeper snapshots`: list and restore recovery points, and apply retention."""

from __future__ import annotations

from typing import Annotated

import typer

from statekeeper.cli.output import JsonFlag, emit_json, print_table, say
from statekeeper.cli.store import NamespaceOption, open_manager

__all__ = ["app"]

app = typer.Typer(
    help="List and restore snapshots of sessions and agents, and prune old ones.",
    no_args_is_help=True,
)


@app.command("list")
def list_snapshots(
    ctx: typer.Context,
    session_id: Annotated[
        str | None, typer.Option("--session", metavar="ID", help="Only this session's.")
    ] = None,
    agent_id: Annotated[
        str | None, typer.Option("--agent", metavar="ID", help="Only this agent's.")
    ] = None,
    namespace: NamespaceOption = "default",
    as_json: JsonFlag = False,
) -> None:
    """List snapshots newest first: every session's, and the agents' of the namespace."""
    with open_manager(ctx, namespace=namespace) as sm:
        snapshots = sm.list_snapshots(session_id=session_id, agent_id=agent_id)
    if as_json:
        emit_json([snapshot.model_dump(mode="json") for snapshot in snapshots])
        return
    print_table(
        [
            "id",
            "session_id",
            "agent_id",
            "description",
            "created_at",
            "expires_at",
            "size_bytes",
            "compressed",
        ],
        [
            (
                s.id,
                s.session_id,
                s.agent_id,
                s.description,
                s.created_at,
                s.expires_at,
                s.size_bytes,
                s.compressed,
            )
            for s in snapshots
        ],
    )


@app.command()
def restore(
    ctx: typer.Context,
    snapshot_id: Annotated[str, typer.Argument(metavar="SNAPSHOT_ID", help="Snapshot id.")],
    namespace: NamespaceOption = "default",
    as_json: JsonFlag = False,
) -> None:
    """Put back what a snapshot holds: a session's context, phases and cost, or an agent's
    state and status."""
    with open_manager(ctx, namespace=namespace) as sm:
        snapshot = sm.restore_snapshot(snapshot_id)
    if as_json:
        emit_json(snapshot.model_dump(mode="json"))
    elif snapshot.session_id is not None:
        say(f"restored snapshot {snapshot.id} to session {snapshot.session_id}")
    else:
        say(f"restored snapshot {snapshot.id} to agent {snapshot.agent_id}")


@app.command()
def prune(
    ctx: typer.Context,
    keep: Annotated[
        int | None,
        typer.Option(help="Keep each owner's newest KEEP unexpired snapshots (default: 10)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Delete nothing; say what would be deleted.")
    ] = False,
    namespace: NamespaceOption = "default",
    as_json: JsonFlag = False,
) -> None:
    """Delete expired snapshots and each owner's oldest beyond --keep, and say which."""
    with open_manager(ctx, namespace=namespace) as sm:
        report = sm.prune_snapshots(keep=keep, dry_run=dry_run)
    if as_json:
        emit_json({**report.model_dump(mode="json"), "total": report.total})
        return
    say(
        f"{'would delete' if dry_run else 'deleted'} {report.total} snapshots: "
        f"{len(report.expired)} expired, {len(report.over_limit)} over the limit"
    )
    if report.total:
        print_table(
            ["snapshot", "reason"],
            [(i, "expired") for i in report.expired]
            + [(i, "over the limit") for i in report.over_limit],
        )
