"""Import legacy session files: one file at a time, new sessions in batched transactions.

A batch the database refuses (say, a chat message id another session already uses) is
retried one session per transaction, so only the offending session is reported. Only
an id found stored counts as skipped, so a copy that failed leaves its id to a later one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from statekeeper.asyncdb import AsyncDatabase
from statekeeper.errors import InvalidInput, StateError
from statekeeper.importers import legacy, store
from statekeeper.importers.store import BATCH_SIZE, Progress
from statekeeper.schemas import ImportStats, WorktreeSession
from statekeeper.services import workspaces
from statekeeper.values import utcnow

__all__ = ["import_json"]


@dataclass
class _Run:
    """One import: where sessions go, and what it did so far."""

    database: AsyncDatabase
    workspace: str | None
    update: bool
    stats: ImportStats = field(default_factory=ImportStats)

    def owner(self, path: Path) -> store.Owner:
        """The workspace of a file's sessions: the one given, else the file name's hash."""
        workspace, key = self.workspace, legacy.workspace_key(path)
        if workspace is not None:
            return lambda uow: workspaces.touch(uow, workspace, utcnow())
        if key is not None:
            return lambda uow: workspaces.touch_hashed(uow, key, utcnow())
        return lambda uow: None

    async def import_file(self, path: Path) -> None:
        """Import one file's valid sessions; record its errors (one entry if it is unreadable)."""
        try:
            document = legacy.read(path)
        except legacy.LegacyFileError as exc:
            self.stats.errors.append((str(path), exc.reason))
            return
        owner = self.owner(path)
        batch: dict[str, WorktreeSession] = {}
        for index, item in enumerate(document.items):
            session = legacy.parse(item, index, document)
            if isinstance(session, legacy.Rejected):
                self.stats.errors.append((str(path), f"session {session.label}: {session.reason}"))
                continue
            if session.id in batch:  # store the earlier copy: this one is new only if that fails
                await self.flush(path, batch, owner)
                batch = {}
            batch[session.id] = session
            if len(batch) == BATCH_SIZE:
                await self.flush(path, batch, owner)
                batch = {}
        await self.flush(path, batch, owner)

    async def flush(
        self, path: Path, batch: dict[str, WorktreeSession], owner: store.Owner
    ) -> None:
        """Insert a batch in one transaction, or one session per transaction if it fails."""
        if not batch:
            return
        sessions = list(batch.values())
        try:
            new = await self.insert(sessions, owner)
        except InvalidInput:
            for session in sessions:
                try:
                    new = await self.insert([session], owner)
                except InvalidInput as exc:
                    self.stats.errors.append((str(path), f"session {session.id}: {exc}"))
                else:
                    await self.count(path, [session], new, owner)
        else:
            await self.count(path, sessions, new, owner)

    async def insert(self, batch: list[WorktreeSession], owner: store.Owner) -> frozenset[str]:
        """Store the batch's new sessions in one transaction; returns their ids."""
        return await self.database.run(
            lambda uow: store.insert_new(uow, batch, owner), write=True, direct=True
        )

    async def count(
        self, path: Path, batch: list[WorktreeSession], new: frozenset[str], owner: store.Owner
    ) -> None:
        """Add a stored batch to the totals, replacing the stored sessions that differ from
        their copy in the file when updating; what is neither new nor replaced is skipped."""
        earlier = [session for session in batch if session.id not in new]
        changed = await self.changed(earlier) if self.update and earlier else []
        for session in changed:
            try:
                await self.database.run(
                    partial(store.replace, session=session, owner=owner), write=True
                )
            except StateError as exc:
                self.stats.errors.append((str(path), f"session {session.id}: {exc}"))
            else:
                self.stats.updated += 1
        self.stats.imported += len(new)
        self.stats.skipped += len(earlier) - len(changed)

    async def changed(self, batch: list[WorktreeSession]) -> list[WorktreeSession]:
        """The stored sessions of the batch whose copy there differs (one read for all)."""
        ids = [session.id for session in batch]
        stored = await self.database.run(lambda uow: store.stored(uow, ids), write=False)
        return [
            session
            for session in batch
            if session.id in stored
            and legacy.normalized(stored[session.id]) != legacy.normalized(session)
        ]


async def import_json(
    database: AsyncDatabase,
    path: Path,
    *,
    workspace: str | None = None,
    update: bool = False,
    progress: Progress | None = None,
) -> ImportStats:
    """Import a legacy file, or every `*.json` file directly inside a directory."""
    paths = legacy.legacy_files(path)
    run = _Run(database, workspace, update)
    if progress is not None:
        progress(0, len(paths))
    for done, file in enumerate(paths, start=1):
        await run.import_file(file)
        if progress is not None:
            progress(done, len(paths))
    return run.stats
