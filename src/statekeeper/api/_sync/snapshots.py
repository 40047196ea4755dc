# Generated from the _async/ twin by scripts/gen_sync.py: edit that one, then run it.
"""Snapshots (recovery points) of sessions and agents: create, list, restore, retention."""

from __future__ import annotations

from datetime import datetime, timedelta

from statekeeper.api.base import ManagerBase, future_time, optional_text, positive
from statekeeper.errors import InvalidInput
from statekeeper.schemas import Snapshot, SnapshotPruneReport
from statekeeper.services import snapshots
from statekeeper.values import check_id

__all__ = ["SnapshotsAPI"]


class SnapshotsAPI(ManagerBase):
    """Recovery points: a session's context, phases and cost, or an agent's state and status."""

    def create_snapshot(
        self,
        *,
        session_id: str | None = None,
        agent_id: str | None = None,
        description: str | None = None,
        expires_at: datetime | timedelta | None = None,
    ) -> str:
        """Snapshot a session or an agent (exactly one); return the snapshot's id.

        `expires_at` is an aware datetime or a duration from now. Beyond the manager's
        `max_snapshots` per owner, the owner's oldest snapshots are deleted.
        """
        if (session_id is None) == (agent_id is None):
            raise InvalidInput("session_id", "give exactly one of session_id and agent_id")
        sid = None if session_id is None else check_id(session_id, "session_id")
        aid = None if agent_id is None else check_id(agent_id, "agent_id")
        text = optional_text(description, "description")
        expiry = future_time(expires_at, "expires_at")
        store = self._store
        return self._db.run(
            lambda uow: snapshots.create(
                uow,
                store.namespace,
                session_id=sid,
                agent_id=aid,
                description=text,
                expires_at=expiry,
                threshold=store.compress_threshold,
                keep=store.max_snapshots,
            ),
            write=True,
            direct=True,
        )

    def get_snapshot(self, snapshot_id: str) -> Snapshot | None:
        """The snapshot with its payload, or None (unknown, or another namespace's)."""
        namespace = self._store.namespace
        return self._db.run(
            lambda uow: snapshots.get(uow, namespace, snapshot_id), write=False, direct=True
        )

    def list_snapshots(
        self, *, session_id: str | None = None, agent_id: str | None = None
    ) -> list[Snapshot]:
        """Snapshots newest first (payloads left out), of one session or agent when given."""
        namespace = self._store.namespace
        return self._db.run(
            lambda uow: snapshots.listing(uow, namespace, session_id, agent_id),
            write=False,
            direct=True,
        )

    def restore_snapshot(self, snapshot_id: str) -> Snapshot:
        """Put back what the snapshot holds and log it; return the snapshot restored.

        A session gets back its context, completed phases and cost (a completed session is
        final: SessionCompleted); an agent its state and status, as a new version.
        Raises SnapshotNotFound for an unknown or expired snapshot.
        """
        snapshot_id = check_id(snapshot_id, "snapshot_id")
        store = self._store
        return self._db.run(
            lambda uow: snapshots.restore(
                uow, store.namespace, snapshot_id, store.compress_threshold
            ),
            write=True,
            direct=True,
        )

    def delete_expired_snapshots(self) -> int:
        """Delete the snapshots past their expiry; return how many."""
        namespace = self._store.namespace
        return self._db.run(lambda uow: snapshots.delete_expired(uow, namespace), write=True)

    def prune_snapshots(
        self, *, keep: int | None = None, dry_run: bool = False
    ) -> SnapshotPruneReport:
        """Retention to run on a schedule: delete expired snapshots and each owner's oldest
        beyond `keep` (default: the manager's `max_snapshots`). `dry_run` deletes nothing and
        reports what would go."""
        limit = self._store.max_snapshots if keep is None else positive(keep, "keep")
        namespace = self._store.namespace
        return self._db.run(
            lambda uow: snapshots.prune(uow, namespace, keep=limit, dry_run=bool(dry_run)),
            write=not dry_run,
        )
