"""What the importer does inside one transaction: take an UnitOfWork, never commit."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from statekeeper.executor import UnitOfWork
from statekeeper.queries import worktree as q
from statekeeper.schemas import WorktreeSession
from statekeeper.services import worktree

__all__ = ["BATCH_SIZE", "EVENT_TYPE", "Owner", "Progress", "insert_new", "stored"]

BATCH_SIZE = 500
"""Sessions per transaction: large enough to be fast, small enough to keep memory flat."""

Progress = Callable[[int, int], None]
"""Called with (files done, files in all), first with 0 done."""

EVENT_TYPE = "session.imported"
"""The event each imported session gets in the audit log."""

Owner = Callable[[UnitOfWork], str | None]
"""Gives the workspace id that a file's sessions belong to, recording the workspace."""


def insert_new(
    uow: UnitOfWork, sessions: Sequence[WorktreeSession], owner: Owner
) -> frozenset[str]:
    """Insert the sessions whose id is not stored yet; returns their ids.

    Stored ones are left as they are, except that one stored without a workspace gets the
    file's: importing again with `workspace=` places sessions an earlier import could not.
    """
    existing = dict(uow.execute(q.EXISTING_IDS, {"sids": [s.id for s in sessions]}).all())
    new = [s for s in sessions if s.id not in existing]
    homeless = [sid for sid, workspace_id in existing.items() if workspace_id is None]
    workspace_id = owner(uow) if new or homeless else None
    if new:
        worktree.insert_many(uow, new, workspace_id, event_type=EVENT_TYPE)
    if homeless and workspace_id is not None:
        uow.execute(q.ADOPT, {"sids": homeless, "owner": workspace_id})
        uow.changed_workspace(workspace_id)
    return frozenset(s.id for s in new)


def replace(uow: UnitOfWork, session: WorktreeSession, owner: Owner) -> None:
    """Replace a stored session by its legacy copy: fields, instances and chat."""
    worktree.save(uow, session, owner(uow))


def stored(uow: UnitOfWork, session_ids: Sequence[str]) -> dict[str, WorktreeSession]:
    """The stored sessions among these ids, whole, by id."""
    return {session.id: session for session in worktree.get_many(uow, session_ids)}
