"""Write a workspace's sessions back out as a legacy file, e.g. to roll a migration back."""

from __future__ import annotations

from pathlib import Path

from statekeeper.db import Database
from statekeeper.files import write_json_atomic
from statekeeper.importers import legacy
from statekeeper.services import worktree

__all__ = ["export_json"]


def export_json(database: Database, workspace_id: str, path: Path) -> int:
    """Write the workspace's sessions oldest first, as the editor appended them; count them.

    A leading `~` in `path` is the user's home directory, as in a shell.
    """
    newest_first = database.run(
        lambda db: worktree.list_in_workspace(db, workspace_id, None, None), write=False
    )
    write_json_atomic(
        path.expanduser(), [legacy.dump(session) for session in reversed(newest_first)]
    )
    return len(newest_first)
