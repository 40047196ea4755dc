"""Snapshots (recovery points) of sessions and agents: create with rotation, restore, expiry.

A session snapshot holds its context, completed phases and totals; an agent snapshot its
state and status. Creating and restoring each append an event in the same transaction.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from statekeeper import compression
from statekeeper.errors import SnapshotNotFound
from statekeeper.executor import UnitOfWork
from statekeeper.queries import phases as phases_q
from statekeeper.queries import sessions as sessions_q
from statekeeper.queries import snapshots as q
from statekeeper.schemas import Snapshot, SnapshotPruneReport
from statekeeper.services import agents, events, phases
from statekeeper.services import sessions as sessions_service
from statekeeper.values import dump_json, utcnow

__all__ = ["create", "delete_expired", "get", "listing", "prune", "restore"]


def create(
    uow: UnitOfWork,
    namespace: str,
    *,
    session_id: str | None,
    agent_id: str | None,
    description: str | None,
    expires_at: datetime | None,
    threshold: int | None,
    keep: int | None,
) -> str:
    """Take a snapshot of one owner, then prune that owner's oldest beyond `keep`."""
    now = utcnow()
    if session_id is not None:
        payload = _session_payload(uow, session_id)
        owner = {"session_id": session_id, "namespace": None, "agent_id": None}
        rotation = {"sid": session_id}
    else:
        assert agent_id is not None
        current = agents.lock(uow, namespace, agent_id, with_state=True)
        payload = {
            "status": current.status,
            "state_data": compression.unpack(current.state_data, current.state_data_zstd),
            "version": current.version,
        }
        owner = {"session_id": None, "namespace": namespace, "agent_id": agent_id}
        rotation = {"ns": namespace, "aid": agent_id}
    text = dump_json(payload, "payload")
    stored, blob = compression.pack(text, threshold)
    snapshot_id = str(uuid.uuid4())
    uow.execute(
        q.INSERT,
        {
            "id": snapshot_id,
            **owner,
            "description": description,
            "payload": stored,
            "payload_zstd": blob,
            "size_bytes": len(text.encode()),
            "created_at": now,
            "expires_at": expires_at,
        },
    )
    if keep is not None:
        uow.execute(q.rotate(agent=agent_id is not None), {**rotation, "keep": keep})
    _event(uow, "snapshot.created", snapshot_id, owner, now, description=description)
    return snapshot_id


def _session_payload(uow: UnitOfWork, session_id: str) -> dict[str, Any]:
    """What a session snapshot holds; the session locked so its phases and totals agree."""
    session = sessions_service.lock(uow, session_id, allow_completed=True, changes=False)
    context = uow.execute(phases_q.CONTEXT_DATA, {"sid": session_id}).first()
    return {
        "context": None if context is None else context.data,
        "phases": [
            {
                "phase_id": row.phase_id,
                "completed_at": row.completed_at.isoformat(),
                "duration_ms": row.duration_ms,
                "output": row.output,
                "cost_usd": format(row.cost_usd, "f"),
                "tokens_in": row.tokens_in,
                "tokens_out": row.tokens_out,
            }
            for row in uow.execute(phases_q.PHASES_OF, {"sid": session_id})
        ],
        "cost_usd": format(session.cost_usd, "f"),
        "tokens_in": session.tokens_in,
        "tokens_out": session.tokens_out,
    }


def restore(uow: UnitOfWork, namespace: str, snapshot_id: str, threshold: int | None) -> Snapshot:
    """Put the snapshot's content back on its owner; no snapshot is taken by doing so."""
    row = uow.execute(q.BY_ID, {"snap": snapshot_id, "ns": namespace}).first()
    if row is None:
        raise SnapshotNotFound(snapshot_id)
    now = utcnow()
    if row.expires_at is not None and row.expires_at <= now:
        raise SnapshotNotFound(snapshot_id, f"expired at {row.expires_at.isoformat()}")
    payload = compression.unpack(row.payload, row.payload_zstd, f"snapshot {snapshot_id!r}")
    if row.session_id is not None:
        _restore_session(uow, row.session_id, payload, now)
    else:
        current = agents.lock(uow, namespace, row.agent_id)
        agents.set_state(
            uow,
            namespace,
            row.agent_id,
            current,
            state=dump_json(payload["state_data"], "state_data"),
            status=payload["status"],
            threshold=threshold,
            reason=f"restored from snapshot {snapshot_id}",
        )
    owner = {"session_id": row.session_id, "namespace": row.namespace, "agent_id": row.agent_id}
    _event(uow, "snapshot.restored", snapshot_id, owner, now, description=row.description)
    return _summary(row)


def _restore_session(uow: UnitOfWork, session_id: str, payload: Any, now: datetime) -> None:
    """Replace a session's phases, totals and context with a snapshot's."""
    sessions_service.lock(uow, session_id)
    uow.execute(phases_q.DELETE_PHASES, {"sid": session_id})
    rows = [
        {
            "session_id": session_id,
            "phase_id": phase["phase_id"],
            "completed_at": datetime.fromisoformat(phase["completed_at"]),
            "duration_ms": phase["duration_ms"],
            "output": phase["output"],
            "cost_usd": Decimal(phase["cost_usd"]),
            "tokens_in": phase["tokens_in"],
            "tokens_out": phase["tokens_out"],
        }
        for phase in payload["phases"]
    ]
    if rows:
        uow.execute(phases_q.INSERT, rows)
    uow.execute(
        sessions_q.SET_TOTALS,
        {
            "sid": session_id,
            "now": now,
            "cost": Decimal(payload["cost_usd"]),
            "tin": payload["tokens_in"],
            "tout": payload["tokens_out"],
        },
    )
    if payload["context"] is None:
        uow.execute(phases_q.DELETE_CONTEXT, {"sid": session_id})
    else:
        phases.write_context(uow, session_id, payload["context"], now)


def get(uow: UnitOfWork, namespace: str, snapshot_id: str) -> Snapshot | None:
    """One visible snapshot with its payload decoded, or None."""
    row = uow.execute(q.BY_ID, {"snap": snapshot_id, "ns": namespace}).first()
    if row is None:
        return None
    payload = compression.unpack(row.payload, row.payload_zstd, f"snapshot {snapshot_id!r}")
    return _summary(row).model_copy(update={"payload": payload})


def listing(
    uow: UnitOfWork, namespace: str, session_id: str | None, agent_id: str | None
) -> list[Snapshot]:
    """Visible snapshots, newest first, without their payloads."""
    statement = q.listing(session=session_id is not None, agent=agent_id is not None)
    params = {"ns": namespace, "sid": session_id, "aid": agent_id}
    return [Snapshot.model_validate(row) for row in uow.execute(statement, params)]


def delete_expired(uow: UnitOfWork, namespace: str) -> int:
    """Delete visible snapshots past their expiry; return how many."""
    return prune(uow, namespace, keep=None, dry_run=False).total


def prune(
    uow: UnitOfWork, namespace: str, *, keep: int | None, dry_run: bool
) -> SnapshotPruneReport:
    """Retention: expired snapshots, and those beyond the newest `keep` of each owner."""
    now = utcnow()
    expired = [row.id for row in uow.execute(q.EXPIRED, {"now": now, "ns": namespace})]
    over_limit = []
    if keep is not None:
        params = {"now": now, "ns": namespace, "keep": keep}
        over_limit = [row.id for row in uow.execute(q.OVER_LIMIT, params)]
    doomed = expired + over_limit
    if doomed and not dry_run:
        uow.execute(q.DELETE_IDS, {"ids": doomed})
    return SnapshotPruneReport(dry_run=dry_run, expired=expired, over_limit=over_limit)


def _summary(row: Any) -> Snapshot:
    return Snapshot(
        id=row.id,
        session_id=row.session_id,
        agent_id=row.agent_id,
        namespace=row.namespace,
        description=row.description,
        created_at=row.created_at,
        expires_at=row.expires_at,
        size_bytes=row.size_bytes,
        compressed=row.payload_zstd is not None,
    )


def _event(
    uow: UnitOfWork,
    event_type: str,
    snapshot_id: str,
    owner: dict[str, Any],
    now: datetime,
    *,
    description: str | None,
) -> None:
    """Log a snapshot's creation or restore: on its session, or with its agent as actor."""
    verb = event_type.split(".")[1]
    agent_id = owner["agent_id"]
    subject = f"session {owner['session_id']}" if agent_id is None else f"agent {agent_id}"
    events.append(
        uow,
        event_type=event_type,
        content=f"snapshot {snapshot_id} of {subject} {verb}"
        + (f": {description}" if description else ""),
        now=now,
        session_id=owner["session_id"],
        actor_type="system" if agent_id is None else "agent",
        actor_id="statekeeper" if agent_id is None else agent_id,
        metadata={"snapshot_id": snapshot_id, **owner},
    )
