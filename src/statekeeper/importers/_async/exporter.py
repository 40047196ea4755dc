"""Writing a workspace's sessions as the legacy editor's file: export, and the legacy mirror.

The mirror (`legacy_mirror=DIR`) rewrites `DIR/<workspace id>.json` after every commit
that changed a session of that workspace, as the old app rewrote its own files, so the
old app can be gone back to at any time.
"""

from __future__ import annotations

from pathlib import Path

from statekeeper.asyncdb import AsyncDatabase
from statekeeper.errors import StorageError
from statekeeper.files import write_json_atomic
from statekeeper.importers import legacy
from statekeeper.services import worktree

__all__ = ["AsyncLegacyMirror", "write_workspace"]


async def write_workspace(database: AsyncDatabase, workspace_id: str, path: Path) -> int:
    """Write the workspace's sessions oldest first, as the editor appended them, atomically
    (a reader sees the old file or the new one, never a torn one); returns how many."""
    newest_first = await database.run(
        lambda uow: worktree.list_in_workspace(uow, workspace_id, None, None), write=False
    )
    document = [legacy.dump(session) for session in reversed(newest_first)]
    await database.offload(write_json_atomic, path, document)
    return len(newest_first)


class AsyncLegacyMirror:
    """Keeps `<directory>/<workspace id>.json` current after each committed change."""

    def __init__(self, database: AsyncDatabase, directory: Path) -> None:
        self.database = database
        self.directory = directory

    async def __call__(self, workspace_ids: set[str]) -> None:
        """Rewrite the file of each workspace whose sessions a commit changed."""
        for workspace_id in sorted(workspace_ids):
            path = self.directory / f"{workspace_id}.json"
            try:
                await write_workspace(self.database, workspace_id, path)
            except OSError as exc:
                raise StorageError(
                    f"the change is committed, but the legacy mirror {path} could not be "
                    f"written: {exc.strerror or exc}"
                ) from exc
