"""Agents: versioned saves with optimistic concurrency, status changes, soft delete, purge.

Every write locks the agent's row first (FOR UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE
serializes writers), so a version check and the write it guards are one atomic step.
Each status change records a transition and an event in the same transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from statekeeper import compression
from statekeeper.dialects import insert_new
from statekeeper.enums import AgentStatus
from statekeeper.errors import AgentNotFound, VersionConflict
from statekeeper.executor import UnitOfWork
from statekeeper.queries import AGENTS
from statekeeper.queries import agents as q
from statekeeper.schemas import AgentState, StateTransition
from statekeeper.services import events
from statekeeper.values import JsonText, load_json, utcnow

__all__ = [
    "delete",
    "history",
    "listing",
    "load",
    "lock",
    "purge",
    "record_transition",
    "restore",
    "save",
    "set_state",
    "to_state",
    "update_status",
]


def to_state(row: Any) -> AgentState:
    """An agents row as the API returns it, its state decompressed."""
    return AgentState(
        agent_id=row.agent_id,
        name=row.name,
        status=row.status,
        metadata=row.metadata,
        state_data=compression.unpack(
            row.state_data, row.state_data_zstd, f"state of agent {row.agent_id!r}"
        ),
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        namespace=row.namespace,
        deleted_at=row.deleted_at,
    )


def lock(uow: UnitOfWork, namespace: str, agent_id: str, *, with_state: bool = False) -> Any:
    """Lock a live agent for a write and return what a write checks (and its stored state,
    `with_state`); raise if there is none."""
    statement = q.LOCK_WITH_STATE if with_state else q.LOCK
    row = uow.execute(statement, {"ns": namespace, "aid": agent_id}).first()
    if row is None:
        raise AgentNotFound(agent_id, namespace)
    if row.deleted_at is not None:
        raise AgentNotFound(agent_id, namespace, deleted=True)
    return row


def save(
    uow: UnitOfWork,
    namespace: str,
    *,
    agent_id: str,
    name: str,
    status: AgentStatus,
    metadata: JsonText,
    state: JsonText,
    threshold: int | None,
    expected_version: int | None,
) -> AgentState:
    """Create the agent at version 1 or save over it at version + 1; return what is stored.

    `expected_version` (0: the agent must not exist yet) must equal the stored version.
    """
    now = utcnow()
    key = {"ns": namespace, "aid": agent_id}
    stored, blob = compression.pack(state, threshold)
    what = f"agent {agent_id!r} in namespace {namespace!r}"
    current = uow.execute(q.LOCK, key).first()
    if current is None:
        if expected_version not in (None, 0):
            raise VersionConflict(what, expected_version, None)
        values = {
            "namespace": namespace,
            "agent_id": agent_id,
            "name": name,
            "status": status.value,
            "metadata": metadata,
            "state_data": stored,
            "state_data_zstd": blob,
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
        if uow.execute(insert_new(uow.dialect.name, AGENTS), values).first() is not None:
            _transition(uow, namespace, agent_id, None, status.value, "created", now)
            return _saved(namespace, agent_id, name, status, metadata, state, 1, now, now)
        current = uow.execute(q.LOCK, key).first()  # created concurrently: save over it
    if current.deleted_at is not None:
        raise AgentNotFound(agent_id, namespace, deleted=True)
    if expected_version is not None and current.version != expected_version:
        raise VersionConflict(what, expected_version, current.version)
    version = current.version + 1
    changes: dict[str, Any] = {
        **key,
        "metadata": metadata,
        "state_data": stored,
        "state_data_zstd": blob,
        "version": version,
        "updated_at": now,
    }
    # Unchanged columns are left out: SQLite then leaves the status index alone.
    if current.name != name:
        changes["name"] = name
    if current.status != status.value:
        changes["status"] = status.value
    uow.execute(q.UPDATE, changes)
    if current.status != status.value:
        _transition(uow, namespace, agent_id, current.status, status.value, None, now)
    return _saved(
        namespace, agent_id, name, status, metadata, state, version, current.created_at, now
    )


def _saved(
    namespace: str,
    agent_id: str,
    name: str,
    status: AgentStatus,
    metadata: JsonText,
    state: JsonText,
    version: int,
    created_at: datetime,
    updated_at: datetime,
) -> AgentState:
    return AgentState(
        agent_id=agent_id,
        name=name,
        status=status,
        metadata=load_json(metadata),
        state_data=load_json(state),
        version=version,
        created_at=created_at,
        updated_at=updated_at,
        namespace=namespace,
    )


def load(uow: UnitOfWork, namespace: str, agent_id: str) -> AgentState | None:
    """The live agent, or None (unknown or soft-deleted)."""
    row = uow.execute(q.BY_ID, {"ns": namespace, "aid": agent_id}).first()
    return None if row is None or row.deleted_at is not None else to_state(row)


def listing(
    uow: UnitOfWork, namespace: str, status: AgentStatus | None, include_deleted: bool
) -> list[AgentState]:
    """The namespace's agents by id."""
    statement = q.listing(status=status is not None, include_deleted=include_deleted)
    params = {"ns": namespace, "status": None if status is None else status.value}
    return [to_state(row) for row in uow.execute(statement, params)]


def update_status(
    uow: UnitOfWork, namespace: str, agent_id: str, status: AgentStatus, reason: str | None
) -> None:
    """Move a live agent to `status` (a new version); the same status changes nothing."""
    current = lock(uow, namespace, agent_id)
    if current.status == status.value:
        return
    now = utcnow()
    uow.execute(
        q.UPDATE,
        {
            "ns": namespace,
            "aid": agent_id,
            "status": status.value,
            "version": current.version + 1,
            "updated_at": now,
        },
    )
    _transition(uow, namespace, agent_id, current.status, status.value, reason, now)


def set_state(
    uow: UnitOfWork,
    namespace: str,
    agent_id: str,
    current: Any,
    *,
    state: JsonText,
    status: str,
    threshold: int | None,
    reason: str,
) -> None:
    """Put back a state and status on a locked agent (a snapshot restore): a new version."""
    stored, blob = compression.pack(state, threshold)
    now = utcnow()
    uow.execute(
        q.UPDATE,
        {
            "ns": namespace,
            "aid": agent_id,
            "status": status,
            "state_data": stored,
            "state_data_zstd": blob,
            "version": current.version + 1,
            "updated_at": now,
        },
    )
    if current.status != status:
        _transition(uow, namespace, agent_id, current.status, status, reason, now)


def delete(uow: UnitOfWork, namespace: str, agent_id: str) -> None:
    """Soft-delete: hidden from loads and lists until restored or purged. Idempotent."""
    _set_deleted(uow, namespace, agent_id, deleted=True)


def restore(uow: UnitOfWork, namespace: str, agent_id: str) -> None:
    """Bring back a soft-deleted agent; a live one is left as it is."""
    _set_deleted(uow, namespace, agent_id, deleted=False)


def _set_deleted(uow: UnitOfWork, namespace: str, agent_id: str, *, deleted: bool) -> None:
    key = {"ns": namespace, "aid": agent_id}
    current = uow.execute(q.LOCK, key).first()
    if current is None:
        raise AgentNotFound(agent_id, namespace)
    if (current.deleted_at is not None) == deleted:
        return
    now = utcnow()
    uow.execute(
        q.UPDATE,
        {
            **key,
            "deleted_at": now if deleted else None,
            "version": current.version + 1,
            "updated_at": now,
        },
    )
    verb = "deleted" if deleted else "restored"
    events.append(
        uow,
        event_type=f"agent.{verb}",
        content=f"agent {agent_id} {verb}",
        now=now,
        actor_type="agent",
        actor_id=agent_id,
        metadata={"namespace": namespace, "agent_id": agent_id},
    )


def purge(uow: UnitOfWork, namespace: str, days: int) -> int:
    """Hard-delete agents soft-deleted more than `days` days ago, with their history."""
    now = utcnow()
    purged = [
        row.agent_id
        for row in uow.execute(q.PURGE, {"ns": namespace, "cutoff": now - timedelta(days=days)})
    ]
    if purged:
        events.append(
            uow,
            event_type="agent.purged",
            content=f"{len(purged)} deleted agents purged",
            now=now,
            metadata={"namespace": namespace, "agent_ids": sorted(purged)},
        )
    return len(purged)


def record_transition(
    uow: UnitOfWork,
    namespace: str,
    agent_id: str,
    before: str | None,
    after: str,
    reason: str | None,
    metadata: JsonText,
) -> None:
    """An explicit transition of a live agent; its status is left as it is."""
    lock(uow, namespace, agent_id)
    _insert_transition(uow, namespace, agent_id, before, after, reason, metadata, utcnow())


def history(uow: UnitOfWork, namespace: str, agent_id: str, limit: int) -> list[StateTransition]:
    """An agent's transitions, newest first."""
    rows = uow.execute(q.HISTORY, {"ns": namespace, "aid": agent_id, "limit": limit})
    return [StateTransition.model_validate(row) for row in rows]


def _transition(
    uow: UnitOfWork,
    namespace: str,
    agent_id: str,
    before: str | None,
    after: str,
    reason: str | None,
    now: datetime,
) -> None:
    """Record a status change made through the API: a transition and an event."""
    _insert_transition(uow, namespace, agent_id, before, after, reason, {}, now)
    events.append(
        uow,
        event_type="agent.created" if before is None else "agent.status_changed",
        content=f"agent {agent_id} created ({after})"
        if before is None
        else f"agent {agent_id}: {before} -> {after}",
        now=now,
        actor_type="agent",
        actor_id=agent_id,
        metadata={"namespace": namespace, "agent_id": agent_id, "from": before, "to": after},
    )


def _insert_transition(
    uow: UnitOfWork,
    namespace: str,
    agent_id: str,
    before: str | None,
    after: str,
    reason: str | None,
    metadata: Any,
    now: datetime,
) -> None:
    uow.execute(
        q.INSERT_TRANSITION,
        {
            "namespace": namespace,
            "agent_id": agent_id,
            "state_before": before,
            "state_after": after,
            "reason": reason,
            "metadata": metadata,
            "created_at": now,
        },
    )
