"""`statekeeper db`: migrate, inspect, back up and copy the store; never migrates on its own."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from statekeeper.cli.output import JsonFlag, emit_json, fail, print_table, say
from statekeeper.cli.store import store_url

if TYPE_CHECKING:
    from datetime import datetime

    import sqlalchemy as sa

__all__ = ["app"]

app = typer.Typer(help="Migrate, inspect, back up and copy the database.", no_args_is_help=True)


@contextmanager
def _engine(ctx: typer.Context, *, must_exist: bool = True) -> Iterator[sa.Engine]:
    """A plain engine on the store (no schema check), disposed after; driver errors translated.

    Unless `must_exist` is false, a SQLite path with no file is an error, not a new database.
    """
    import sqlalchemy as sa

    from statekeeper.config import create_engine, is_memory, resolve_url
    from statekeeper.db import translate_error

    url = resolve_url(store_url(ctx))
    sqlite_file = url.get_backend_name() == "sqlite" and not is_memory(url)
    if must_exist and sqlite_file and not Path(str(url.database)).expanduser().exists():
        fail(f"no database at {url.database}")
    try:
        engine = create_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()
    except sa.exc.SQLAlchemyError as exc:
        raise translate_error(exc) from exc


def _status(engine: sa.Engine) -> dict[str, Any]:
    """Where the database is in the migration chain: revision (None if empty), head, at_head."""
    from statekeeper import migrate

    with engine.connect() as connection:
        revision = migrate.current_revision(connection)
    head = migrate.head_revision()
    return {"revision": revision, "head": head, "at_head": revision == head}


def _describe(status: dict[str, Any]) -> str:
    """One line: the revision, and whether it is the head."""
    revision = status["revision"] or "<empty>"
    if status["at_head"]:
        return f"{revision} (head)"
    return f"{revision} (not at head {status['head']})"


def _report(status: dict[str, Any], as_json: bool) -> None:
    """Print the status as JSON or as its one-line description."""
    if as_json:
        emit_json(status)
    else:
        say(_describe(status))


@app.command()
def upgrade(
    ctx: typer.Context,
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    as_json: JsonFlag = False,
) -> None:
    """Upgrade the schema to REVISION (default: head) in one transaction."""
    from statekeeper import migrate

    with _engine(ctx, must_exist=False) as engine:
        migrate.upgrade(engine, revision)
        _report(_status(engine), as_json)


@app.command()
def downgrade(
    ctx: typer.Context,
    revision: Annotated[str, typer.Argument(help='Target revision; "base" removes every table.')],
    as_json: JsonFlag = False,
) -> None:
    """Downgrade the schema to REVISION in one transaction."""
    from statekeeper import migrate

    with _engine(ctx) as engine:
        migrate.downgrade(engine, revision)
        _report(_status(engine), as_json)


@app.command()
def current(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Print the database's revision and whether it is the head."""
    with _engine(ctx) as engine:
        _report(_status(engine), as_json)


@app.command()
def check(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Exit 0 if the schema is at head, else exit 1 saying to run `statekeeper db upgrade`."""
    with _engine(ctx) as engine:
        status = _status(engine)
    _report(status, as_json)
    if not status["at_head"]:
        fail(
            f"database is at {status['revision'] or '<empty>'}, expected {status['head']}: "
            "run `statekeeper db upgrade`"
        )


@app.command()
def history(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List the migration chain, oldest first, marking what is applied to this database."""
    from statekeeper import migrate

    with _engine(ctx) as engine, engine.connect() as connection:
        revision = migrate.current_revision(connection)
        applied_at = _applied_at(connection)
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


def _applied_at(connection: sa.Connection) -> dict[str, datetime]:
    """When each revision was applied, from schema_migrations (absent while empty)."""
    import sqlalchemy as sa

    from statekeeper.models import MigrationRow

    table = MigrationRow.__table__
    if not sa.inspect(connection).has_table(MigrationRow.__tablename__):
        return {}
    query = sa.select(table.c.revision, table.c.applied_at)
    return {row.revision: row.applied_at for row in connection.execute(query)}


@app.command()
def backup(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="SQLite file to write (replaced atomically).")],
    as_json: JsonFlag = False,
) -> None:
    """Write a consistent SQLite copy of the store to PATH, from SQLite or PostgreSQL."""
    from statekeeper.services.maintenance import backup as write_backup

    with _engine(ctx) as engine, engine.connect() as connection:
        write_backup(connection, path)
    if as_json:
        emit_json({"path": str(path)})
    else:
        say(f"backed up to {path}")


@app.command()
def copy(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="URL or SQLite path of an empty store.")],
    as_json: JsonFlag = False,
) -> None:
    """Copy the whole store into an empty store at TARGET (e.g. SQLite to PostgreSQL)."""
    from statekeeper.config import create_engine, resolve_url
    from statekeeper.services.maintenance import copy_store

    destination = create_engine(resolve_url(target))
    try:
        with _engine(ctx) as engine, engine.connect() as connection:
            rows = copy_store(connection, destination)
    finally:
        destination.dispose()
    if as_json:
        emit_json({"target": target, "rows": rows})
    else:
        say(f"copied {rows:,} rows to {target}")
