"""`statekeeper db`: migrate, inspect, back up and copy the store; never migrates on its own."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from statekeeper.cli.output import JsonFlag, emit_json, fail, print_table, say
from statekeeper.cli.store import open_manager

if TYPE_CHECKING:
    from statekeeper.manager import StateManager
    from statekeeper.schemas import SchemaStatus

__all__ = ["app"]

app = typer.Typer(help="Migrate, inspect, back up and copy the database.", no_args_is_help=True)


@contextmanager
def _manager(ctx: typer.Context, *, must_exist: bool = True) -> Iterator[StateManager]:
    """The manager on the store at whatever revision it is (no migration, no refusal).

    Unless `must_exist` is false, a store named by --url that does not exist is an error.
    """
    with open_manager(ctx, check_schema=False, create=not must_exist) as manager:
        yield manager


def _describe(status: SchemaStatus) -> str:
    """One line: the revision, and whether it is the head."""
    revision = status.revision or "<empty>"
    if status.at_head:
        return f"{revision} (head)"
    return f"{revision} (not at head {status.head})"


def _report(status: SchemaStatus, as_json: bool) -> None:
    """Print the status as JSON or as its one-line description."""
    if as_json:
        emit_json(status.model_dump(mode="json"))
    else:
        say(_describe(status))


@app.command()
def upgrade(
    ctx: typer.Context,
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    as_json: JsonFlag = False,
) -> None:
    """Upgrade the schema to REVISION (default: head) in one transaction."""
    with _manager(ctx, must_exist=False) as manager:
        _report(manager.upgrade_schema(revision), as_json)


@app.command()
def downgrade(
    ctx: typer.Context,
    revision: Annotated[str, typer.Argument(help='Target revision; "base" removes every table.')],
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Downgrade even though the store holds rows.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Downgrade the schema to REVISION in one transaction (a store holding rows needs --yes:
    a downgrade drops the tables and columns that later revisions added, with their data)."""
    with _manager(ctx) as manager:
        occupied = manager.tables_with_rows()
        if occupied and not yes:
            fail(
                f"refusing to downgrade a store that holds rows (in {', '.join(occupied)}) "
                "without --yes: it can delete data; `statekeeper db backup PATH` first",
                code=2,
            )
        _report(manager.downgrade_schema(revision), as_json)


@app.command()
def current(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Print the database's revision and whether it is the head."""
    with _manager(ctx) as manager:
        _report(manager.schema_status(), as_json)


@app.command()
def check(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Exit 0 if the schema is at head, else exit 1 saying to run `statekeeper db upgrade`."""
    with _manager(ctx) as manager:
        status = manager.schema_status()
    _report(status, as_json)
    if not status.at_head:
        fail(
            f"database is at {status.revision or '<empty>'}, expected {status.head}: "
            "run `statekeeper db upgrade`"
        )


@app.command()
def history(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List the migration chain, oldest first, marking what is applied to this database."""
    from statekeeper import migrate

    with _manager(ctx) as manager:
        revision = manager.schema_status().revision
        applied_at = {r.revision: r.applied_at for r in manager.get_migration_history()}
    chain = migrate.revisions()
    applied = _applied([info.revision for info in chain], revision)
    entries = [(info, info.revision in applied, applied_at.get(info.revision)) for info in chain]
    if as_json:
        emit_json(
            [
                {
                    "revision": info.revision,
                    "down_revision": info.down_revision,
                    "description": info.description,
                    "applied": done,
                    "applied_at": None if when is None else when.isoformat(),
                }
                for info, done, when in entries
            ]
        )
        return
    print_table(
        ["revision", "description", "applied", "applied_at"],
        [
            (info.revision, info.description, "yes" if done else "no", when)
            for info, done, when in entries
        ],
    )


def _applied(chain: list[str], revision: str | None) -> set[str]:
    """The revisions up to `revision`; one this chain does not know is newer, so all are."""
    if revision is None:
        return set()
    if revision not in chain:
        return set(chain)
    return set(chain[: chain.index(revision) + 1])


@app.command()
def backup(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="SQLite file to write (replaced atomically).")],
    as_json: JsonFlag = False,
) -> None:
    """Write a consistent SQLite copy of the store to PATH, from SQLite or PostgreSQL."""
    with _manager(ctx) as manager:
        manager.backup(path)
    if as_json:
        emit_json({"path": str(path)})
    else:
        say(f"backed up to {path}")


@app.command()
def restore(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A file written by `statekeeper db backup`.")],
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Replace the rows the store holds now.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Put the backup at PATH back: the store's rows are replaced by the backup's, in one
    transaction (a store holding rows needs --yes). The backup is checked first and may be
    at an older revision; it is migrated to head in a temporary copy, never changed itself."""
    with open_manager(ctx, create=True) as manager:
        occupied = manager.tables_with_rows()
        if occupied and not yes:
            fail(
                f"refusing to replace the rows the store holds (in {', '.join(occupied)}) "
                "without --yes",
                code=2,
            )
        rows = manager.restore_backup(path, overwrite=yes)
    if as_json:
        emit_json({"path": str(path), "rows": rows})
    else:
        say(f"restored {rows:,} rows from {path}")


@app.command()
def copy(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="URL or SQLite path of an empty store.")],
    as_json: JsonFlag = False,
) -> None:
    """Copy the whole store into an empty store at TARGET (e.g. SQLite to PostgreSQL)."""
    with _manager(ctx) as manager:
        rows = manager.copy_to(target)
    if as_json:
        emit_json({"target": target, "rows": rows})
    else:
        say(f"copied {rows:,} rows to {target}")
