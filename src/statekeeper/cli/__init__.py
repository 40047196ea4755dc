"""The `statekeeper` command; typer and rich are imported here and nowhere else."""

from statekeeper.cli.app import app, main

__all__ = ["app", "main"]
