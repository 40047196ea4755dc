"""The StateError hierarchy: every error statekeeper raises derives from StateError."""

from __future__ import annotations

__all__ = [
    "AgentNotFound",
    "ImportFailed",
    "InvalidInput",
    "InvalidTransition",
    "MigrationError",
    "ReadOnlyError",
    "SchemaOutOfDate",
    "SessionCompleted",
    "SessionNotFound",
    "SnapshotNotFound",
    "StateError",
    "StorageBusy",
    "StorageError",
    "VersionConflict",
]


class StateError(Exception):
    """Base class of every error raised by statekeeper."""


class SessionNotFound(StateError):
    """An operation that changes a session named one that does not exist."""

    def __init__(self, session_id: str) -> None:
        super().__init__(f"session not found: {session_id!r}")
        self.session_id = session_id


class AgentNotFound(StateError):
    """An operation that changes an agent named one this namespace does not hold.

    `deleted` is True when the agent exists but is soft-deleted (restore_agent brings it back).
    """

    def __init__(self, agent_id: str, namespace: str, *, deleted: bool = False) -> None:
        where = f"agent {agent_id!r} in namespace {namespace!r}"
        super().__init__(
            f"{where} is deleted (restore_agent brings it back)"
            if deleted
            else f"{where} not found"
        )
        self.agent_id = agent_id
        self.namespace = namespace
        self.deleted = deleted


class SnapshotNotFound(StateError):
    """No snapshot with that id is visible here (unknown, expired, or another namespace's)."""

    def __init__(self, snapshot_id: str, reason: str = "not found") -> None:
        super().__init__(f"snapshot {snapshot_id!r}: {reason}")
        self.snapshot_id = snapshot_id


class SessionCompleted(StateError):
    """The session is completed, which is final: it cannot be resumed or changed."""

    def __init__(self, session_id: str) -> None:
        super().__init__(f"session {session_id!r} is completed and cannot be changed")
        self.session_id = session_id


class InvalidTransition(StateError):
    """A status change that the status rules forbid."""

    def __init__(self, session_id: str, current: str, requested: str) -> None:
        super().__init__(f"session {session_id!r} cannot move from {current!r} to {requested!r}")
        self.session_id = session_id
        self.current = current
        self.requested = requested


class InvalidInput(StateError):
    """A bad value; `field` names the argument or attribute that was rejected."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"invalid {field}: {message}")
        self.field = field
        self.message = message


class VersionConflict(StateError):
    """An optimistic-concurrency check failed: the stored version moved on."""

    def __init__(self, what: str, expected: int | None, actual: int | None) -> None:
        if expected is None:
            message = what
        elif actual is None:
            message = f"{what}: expected version {expected}, but it does not exist"
        else:
            message = f"{what}: expected version {expected}, found {actual}"
        super().__init__(message)
        self.expected = expected
        self.actual = actual


class SchemaOutOfDate(StateError):
    """The database schema is not at the revision this statekeeper expects."""


class MigrationError(StateError):
    """A schema migration failed; the database was left at its previous revision."""


class StorageError(StateError):
    """The database failed for a reason other than bad input (unreachable, full, corrupt)."""


class StorageBusy(StorageError):
    """The database stayed locked or kept failing transiently after every retry."""


class ImportFailed(StateError):
    """A file could not be imported; nothing from it was written."""


class ReadOnlyError(StateError):
    """A write through a read-only ORM session (`sm.session()`); nothing was written."""
