"""Phase checkpoints and workflow context: what a killed run resumes from."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from statekeeper.dialects import upsert
from statekeeper.enums import SessionStatus
from statekeeper.errors import SessionCompleted, SessionNotFound
from statekeeper.executor import UnitOfWork
from statekeeper.queries import CONTEXT
from statekeeper.queries import phases as q
from statekeeper.queries import sessions as sessions_q
from statekeeper.schemas import PhaseCompletion, WorkflowContext
from statekeeper.services import events
from statekeeper.services import sessions as sessions_service
from statekeeper.values import money, utcnow

__all__ = [
    "completed_phases",
    "get_phase",
    "is_completed",
    "load_context",
    "resume",
    "save_context",
    "save_phase",
    "write_context",
]


def save_phase(
    uow: UnitOfWork,
    session_id: str,
    phase_id: str,
    *,
    output: Any,
    duration_ms: int,
    cost_usd: Decimal,
    tokens_in: int,
    tokens_out: int,
    context: Any,
) -> None:
    """Record a completed phase (replacing an earlier save of it) and re-total the session.

    Totals move by exact Decimal deltas under the session lock: never a floating-point SUM.
    """
    sent = sessions_service.send_lock(uow, session_id)
    previous = uow.execute(q.PREVIOUS, {"sid": session_id, "pid": phase_id})
    session = sessions_service.locked(uow, session_id, sent)
    earlier = previous.first()
    cost = session.cost_usd - (earlier.cost_usd if earlier else 0) + cost_usd
    money(cost, "cost_usd")  # the session total must fit too
    now = utcnow()
    values = {
        "completed_at": now,
        "duration_ms": duration_ms,
        "output": output,
        "cost_usd": cost_usd,
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
    }
    if earlier is None:
        uow.execute(q.INSERT, {"session_id": session_id, "phase_id": phase_id, **values})
    else:
        uow.execute(q.REPLACE, {"key": earlier.id, **values})
    uow.execute(
        sessions_q.SET_TOTALS,
        {
            "sid": session_id,
            "now": now,
            "cost": cost,
            "tin": session.tokens_in - (earlier.tokens_in if earlier else 0) + tokens_in,
            "tout": session.tokens_out - (earlier.tokens_out if earlier else 0) + tokens_out,
        },
    )
    if context is not None:
        write_context(uow, session_id, context, now)
    events.append(
        uow,
        session_id=session_id,
        event_type="phase.completed",
        content=f"phase {phase_id} completed",
        now=now,
        metadata={
            "phase_id": phase_id,
            "duration_ms": duration_ms,
            "cost_usd": str(cost_usd),
            "tokens_in": tokens_in,
            "tokens_out": tokens_out,
            "replaced": earlier is not None,
        },
    )


def get_phase(uow: UnitOfWork, session_id: str, phase_id: str) -> PhaseCompletion | None:
    """One completed phase, or None."""
    row = uow.execute(q.PHASE_OF, {"sid": session_id, "pid": phase_id}).first()
    return None if row is None else PhaseCompletion.model_validate(row)


def completed_phases(uow: UnitOfWork, session_id: str) -> list[PhaseCompletion]:
    """A session's completed phases, in the order first completed."""
    rows = uow.execute(q.PHASES_OF, {"sid": session_id})
    return [PhaseCompletion.model_validate(row) for row in rows]


def is_completed(uow: UnitOfWork, session_id: str, phase_id: str) -> bool:
    """Whether the phase has been completed."""
    return bool(uow.scalar(q.EXISTS, {"sid": session_id, "pid": phase_id}))


def save_context(uow: UnitOfWork, session_id: str, data: Any) -> None:
    """Replace the session's workflow context."""
    sessions_service.lock(uow, session_id)
    now = utcnow()
    write_context(uow, session_id, data, now)
    uow.execute(sessions_q.SET, {"sid": session_id, "updated_at": now})


def write_context(uow: UnitOfWork, session_id: str, data: Any, now: datetime) -> None:
    """Insert or replace the context row, bumping its version, in one statement."""
    statement = upsert(
        uow.dialect.name, CONTEXT, ("session_id",), ("data", "updated_at"), increment="version"
    )
    uow.execute(
        statement, {"session_id": session_id, "data": data, "version": 1, "updated_at": now}
    )


def _context_of(uow: UnitOfWork, session_id: str) -> Any:
    """The CONTEXT_OF row. In a `transaction()` block the caller may write back what it
    read, so the session is first locked as by a write: on PostgreSQL two blocks
    incrementing a counter would otherwise both read the old value, and one increment be
    lost. The lock comes first, in a statement of its own, so that the read starts after it
    is granted and sees the other block's commit (SQLite's BEGIN IMMEDIATE already
    serializes whole blocks)."""
    if uow.in_block:
        uow.execute(sessions_q.LOCK, {"sid": session_id})
    return uow.execute(q.CONTEXT_OF, {"sid": session_id}).first()


def load_context(uow: UnitOfWork, session_id: str) -> WorkflowContext | None:
    """The saved context with the last completed phase and cost so far; None if never saved."""
    row = _context_of(uow, session_id)
    if row is None or row.data is None:
        return None
    return WorkflowContext(
        data=row.data, last_completed_phase=row.last_phase, accumulated_cost=row.cost_usd
    )


def resume(uow: UnitOfWork, session_id: str) -> WorkflowContext | None:
    """What to resume from: None only when neither context nor any phase was saved."""
    row = _context_of(uow, session_id)
    if row is None:
        raise SessionNotFound(session_id)
    if row.status == SessionStatus.COMPLETED:
        raise SessionCompleted(session_id)
    if row.data is None and row.last_phase is None:
        return None
    return WorkflowContext(
        data=row.data or {}, last_completed_phase=row.last_phase, accumulated_cost=row.cost_usd
    )
