"""The root `statekeeper` command: the --url option, the sub-commands, and error reporting."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from statekeeper.cli import agents, db, events, legacy, sessions, snapshots, stats
from statekeeper.cli.output import fail
from statekeeper.cli.store import Target
from statekeeper.errors import StateError

__all__ = ["app", "main"]


class _ReportingGroup(TyperGroup):
    """Every command runs inside this group, so its errors are reported here and only here."""

    # typer keeps click's Context class private, hence `Any`.
    def invoke(self, ctx: Any) -> Any:
        """Run the command; a StateError or OSError ends as `error: <message>` and exit 1."""
        try:
            return super().invoke(ctx)
        except StateError as exc:
            fail(str(exc))
        except BrokenPipeError:
            raise  # the reader of stdout went away (`| head`): typer exits quietly
        except OSError as exc:
            fail(f"{exc.filename}: {exc.strerror}" if exc.filename and exc.strerror else str(exc))


app = typer.Typer(
    name="statekeeper",
    cls=_ReportingGroup,
    no_args_is_help=True,
    # An unexpected traceback must not print local variables such as a URL's password.
    pretty_exceptions_show_locals=False,
)
app.add_typer(db.app, name="db")
app.add_typer(sessions.app, name="sessions")
app.add_typer(agents.app, name="agents")
app.add_typer(snapshots.app, name="snapshots")
app.add_typer(events.app, name="events")
app.command("stats")(stats.stats)
app.command("import-json")(legacy.import_json)
app.command("validate-json")(legacy.validate_json)


def _print_version(wanted: bool) -> None:
    """`--version`: print the installed version and stop."""
    if wanted:
        from statekeeper import __version__

        typer.echo(f"statekeeper {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="SQLAlchemy URL or SQLite file path "
            "(default: $STATEKEEPER_URL, else state.db in the user data directory).",
        ),
    ] = None,
    schema: Annotated[
        str | None,
        typer.Option(
            metavar="NAME",
            help="PostgreSQL: the schema the store's tables are in "
            "(default: $STATEKEEPER_SCHEMA, else the server's search_path).",
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the installed version and exit.",
        ),
    ] = False,
) -> None:
    """Inspect and maintain statekeeper's store of AI-agent workflow state."""
    ctx.obj = Target(url, schema)


def main() -> None:
    """Entry point of the `statekeeper` executable."""
    app()
