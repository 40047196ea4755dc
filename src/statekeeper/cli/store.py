"""How commands reach the store named by --url, else $STATEKEEPER_URL, else the default file."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, cast

import typer

if TYPE_CHECKING:
    from statekeeper.manager import StateManager

__all__ = ["NamespaceOption", "open_manager", "store_url"]

NamespaceOption = Annotated[
    str, typer.Option("--namespace", metavar="NS", help="The agent namespace to work in.")
]
"""The `--namespace` option of the agent store's commands."""


def store_url(ctx: typer.Context) -> str | None:
    """The --url given to the root command (None lets the library resolve it)."""
    return cast("str | None", ctx.find_root().obj)


def open_manager(
    ctx: typer.Context,
    *,
    auto_migrate: bool = True,
    check_schema: bool = True,
    namespace: str = "default",
) -> StateManager:
    """A StateManager on the store, seeing `namespace`'s agents; use it as a context manager
    so it is closed."""
    from statekeeper.manager import StateManager

    return StateManager(
        store_url(ctx), auto_migrate=auto_migrate, check_schema=check_schema, namespace=namespace
    )
