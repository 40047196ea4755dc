"""`statekeeper import-json` and `validate-json`: move the legacy editor's session files in."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from statekeeper.cli.output import JsonFlag, emit_json, fail, print_table, say
from statekeeper.cli.store import open_manager
from statekeeper.errors import ImportFailed

if TYPE_CHECKING:
    from statekeeper.importers.store import Progress
    from statekeeper.manager import StateManager
    from statekeeper.schemas import ImportStats, ValidationReport

__all__ = ["import_json", "validate_json"]

LegacyPath = Annotated[
    Path,
    typer.Argument(help="A legacy session file, or a directory: its *.json files, not below."),
]


@contextmanager
def _progress_bar() -> Iterator[Progress]:
    """A files-done bar on stderr while a terminal watches; it disappears when done."""
    from rich.console import Console
    from rich.progress import Progress as Bar

    console = Console(stderr=True)
    with Bar(console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task("importing", total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _problems(report: ValidationReport) -> str:
    """A report's counts in one line; unreadable files are named only when there are some."""
    counts = f"{len(report.missing)} missing, {len(report.mismatched)} mismatched"
    return f"{counts}, {len(report.errors)} unreadable files" if report.errors else counts


def _archive(sm: StateManager, path: Path, stats: ImportStats) -> list[tuple[str, str]]:
    """Rename each file whose sessions all imported and validate; say what became of each."""
    from statekeeper.importers import legacy

    failed = {file for file, _ in stats.errors}
    outcomes: list[tuple[str, str]] = []
    for file in legacy.legacy_files(path):
        if str(file) in failed:
            outcomes.append((str(file), "kept: it had import errors"))
            continue
        report = sm.validate_import(file)
        if not report.ok:
            outcomes.append((str(file), f"kept: {_problems(report)}"))
            continue
        try:
            outcomes.append((str(file), f"archived as {legacy.archive(file)}"))
        except ImportFailed as exc:
            outcomes.append((str(file), f"kept: {exc}"))
    return outcomes


def import_json(
    ctx: typer.Context,
    path: LegacyPath,
    workspace: Annotated[
        Path | None,
        typer.Option(help="Put every session in this workspace (default: from the file name)."),
    ] = None,
    archive: Annotated[
        bool,
        typer.Option(
            "--archive",
            help="Rename each file whose sessions all validate to <name>.json.archive.",
        ),
    ] = False,
    update: Annotated[
        bool,
        typer.Option(
            "--update",
            help="Replace stored sessions whose copy in the files differs (never deletes).",
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Import the legacy editor's session files; exit 1 if any file or session failed."""
    with open_manager(ctx, create=True) as sm:
        with _progress_bar() as progress:
            stats = sm.import_json(path, workspace=workspace, update=update, progress=progress)
        archived = _archive(sm, path, stats) if archive else []
    if as_json:
        emit_json(
            {
                **stats.model_dump(mode="json"),
                **({"archive": dict(archived)} if archive else {}),
            }
        )
    else:
        say(
            f"imported {stats.imported}, updated {stats.updated}, skipped {stats.skipped}, "
            f"errors {len(stats.errors)}"
        )
        if stats.errors:
            print_table(["file", "error"], stats.errors, title="Errors")
        if archived:
            print_table(["file", "archive"], archived, title="Archive")
    if stats.errors:
        fail(f"{len(stats.errors)} import errors (files or sessions)")


def validate_json(ctx: typer.Context, path: LegacyPath, as_json: JsonFlag = False) -> None:
    """Check that the store holds every session of the files as written; exit 1 if not."""
    with open_manager(ctx) as sm:
        report = sm.validate_import(path)
    if as_json:
        emit_json({**report.model_dump(mode="json"), "ok": report.ok})
    elif report.ok:
        say("every session of the files is stored as written")
    else:
        if report.missing or report.mismatched:
            print_table(
                ["session", "problem"],
                [(label, "missing") for label in report.missing]
                + [(label, "mismatched") for label in report.mismatched],
            )
        if report.errors:
            print_table(["file", "error"], report.errors, title="Errors")
    if not report.ok:
        fail(_problems(report))
