"""`statekeeper agents`: list, show and trace the agents of one namespace of the agent store."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from statekeeper.cli.output import JsonFlag, emit_json, print_fields, print_table
from statekeeper.cli.store import NamespaceOption, open_manager
from statekeeper.errors import AgentNotFound

if TYPE_CHECKING:
    from statekeeper.manager import StateManager

__all__ = ["app"]

app = typer.Typer(help="List, show and trace the agents of a namespace.", no_args_is_help=True)

AgentId = Annotated[str, typer.Argument(metavar="AGENT_ID", help="Agent id.")]


def _deleted(sm: StateManager, agent_id: str) -> bool:
    """Whether the namespace holds the agent soft-deleted (load_agent_state hides those)."""
    return any(
        a.agent_id == agent_id and a.deleted_at is not None
        for a in sm.list_agents(include_deleted=True)
    )


@app.command("list")
def list_agents(
    ctx: typer.Context,
    status: Annotated[
        str | None,
        typer.Option(help="Only this status: idle, running, paused, stopped or failed."),
    ] = None,
    include_deleted: Annotated[
        bool, typer.Option("--deleted", help="Include soft-deleted agents.")
    ] = False,
    namespace: NamespaceOption = "default",
    as_json: JsonFlag = False,
) -> None:
    """List the namespace's agents by id, with their status and version."""
    with open_manager(ctx, namespace=namespace) as sm:
        agents = sm.list_agents(status=status, include_deleted=include_deleted)
    if as_json:
        emit_json([agent.model_dump(mode="json") for agent in agents])
        return
    columns = ["agent_id", "name", "status", "version", "created_at", "updated_at"]
    print_table(
        [*columns, "deleted_at"] if include_deleted else columns,
        [
            (a.agent_id, a.name, a.status, a.version, a.created_at, a.updated_at)
            + ((a.deleted_at,) if include_deleted else ())
            for a in agents
        ],
    )


@app.command()
def show(
    ctx: typer.Context,
    agent_id: AgentId,
    namespace: NamespaceOption = "default",
    as_json: JsonFlag = False,
) -> None:
    """Show an agent's saved state: status, version, metadata and state data."""
    with open_manager(ctx, namespace=namespace) as sm:
        agent = sm.load_agent_state(agent_id)
        if agent is None:
            raise AgentNotFound(agent_id, sm.namespace, deleted=_deleted(sm, agent_id))
    if as_json:
        emit_json(agent.model_dump(mode="json"))
    else:
        print_fields(agent.model_dump().items(), title="Agent")


@app.command()
def history(
    ctx: typer.Context,
    agent_id: AgentId,
    limit: Annotated[int, typer.Option(help="Most transitions to show.")] = 50,
    namespace: NamespaceOption = "default",
    as_json: JsonFlag = False,
) -> None:
    """List an agent's status transitions, newest first (soft-deleted agents' too)."""
    with open_manager(ctx, namespace=namespace) as sm:
        transitions = sm.get_state_history(agent_id, limit)
        unknown = not transitions and sm.load_agent_state(agent_id) is None
        if unknown and not _deleted(sm, agent_id):
            raise AgentNotFound(agent_id, sm.namespace)
    if as_json:
        emit_json([transition.model_dump(mode="json") for transition in transitions])
        return
    print_table(
        ["id", "created_at", "state_before", "state_after", "reason", "metadata"],
        [
            (t.id, t.created_at, t.state_before, t.state_after, t.reason, t.metadata)
            for t in transitions
        ],
    )
