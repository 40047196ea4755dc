"""How commands reach the store named by --url, else $STATEKEEPER_URL, else the default file."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, cast

import typer

from statekeeper.cli.output import fail

if TYPE_CHECKING:
    from statekeeper.manager import StateManager

__all__ = ["NamespaceOption", "Target", "open_manager", "require_store", "store_url"]

NamespaceOption = Annotated[
    str, typer.Option("--namespace", metavar="NS", help="The agent namespace to work in.")
]
"""The `--namespace` option of the agent store's commands."""


@dataclass(frozen=True)
class Target:
    """The store the root command's --url and --schema name (None: the library decides)."""

    url: str | None = None
    schema: str | None = None


def _target(ctx: typer.Context) -> Target:
    return cast(Target, ctx.find_root().obj or Target())


def store_url(ctx: typer.Context) -> str | None:
    """The --url given to the root command (None lets the library resolve it)."""
    return _target(ctx).url


def require_store(ctx: typer.Context) -> None:
    """Refuse a store named by --url or $STATEKEEPER_URL that does not exist (a typo must not
    become a new, empty store); the default location is created as usual."""
    from statekeeper.config import ENV_URL, resolve_url, sqlite_file

    named = store_url(ctx) or os.environ.get(ENV_URL)
    if not named:
        return
    path = sqlite_file(resolve_url(named))
    if path is not None and not path.exists():
        fail(
            f"no store at {path}: check --url or ${ENV_URL} "
            "(only `db upgrade` and the import commands create a store)"
        )


def open_manager(
    ctx: typer.Context,
    *,
    auto_migrate: bool = True,
    check_schema: bool = True,
    namespace: str = "default",
    create: bool = False,
) -> StateManager:
    """A StateManager on the store, seeing `namespace`'s agents; use it as a context manager
    so it is closed. Unless `create`, a store the user named must already exist."""
    from statekeeper.manager import StateManager

    if not create:
        require_store(ctx)
    return StateManager(
        store_url(ctx),
        auto_migrate=auto_migrate,
        check_schema=check_schema,
        namespace=namespace,
        schema=_target(ctx).schema,
    )
