"""Sessions: creation, status rules, history paging, deletion and retention."""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from pydantic import TypeAdapter

from statekeeper.enums import SessionStatus
from statekeeper.errors import (
    InvalidInput,
    InvalidTransition,
    SessionCompleted,
    SessionNotFound,
)
from statekeeper.executor import Result, UnitOfWork
from statekeeper.queries import sessions as q
from statekeeper.schemas import Session, SessionSummary
from statekeeper.services import events, workspaces
from statekeeper.translate import violation
from statekeeper.values import ZERO, check_id, check_text, parse_choice, utcnow

__all__ = [
    "REFRESH_AFTER",
    "Refreshes",
    "calculate_duration",
    "cleanup",
    "count",
    "create",
    "create_bare",
    "delete",
    "get",
    "history",
    "insert_joining",
    "lock",
    "parse_status",
    "refresh",
    "save_markdown",
    "touch",
    "update_status",
]


def parse_status(value: SessionStatus | str, field: str = "status") -> SessionStatus:
    """A SessionStatus from its enum or string value."""
    return parse_choice(SessionStatus, value, field)


def lock(
    uow: UnitOfWork, session_id: str, *, allow_completed: bool = False, changes: bool = True
) -> Any:
    """Lock a session for a write; return status, created_at and totals; check it may change.

    `changes=False`: the write leaves the session itself as it was (an event about it).
    """
    sent = send_lock(uow, session_id)
    return locked(uow, session_id, sent, allow_completed=allow_completed, changes=changes)


def send_lock(uow: UnitOfWork, session_id: str) -> Result:
    """Ask for the session's lock without waiting: a read sent next, before `locked` looks
    at the answer, shares its round trip on PostgreSQL and still runs after the lock."""
    check_id(session_id, "session_id")
    return uow.execute(q.LOCK, {"sid": session_id})


def locked(
    uow: UnitOfWork,
    session_id: str,
    sent: Result,
    *,
    allow_completed: bool = False,
    changes: bool = True,
) -> Any:
    """The row `send_lock` locked, checked as `lock` checks it."""
    row = sent.first()
    if row is None:
        raise SessionNotFound(session_id)
    if not allow_completed and row.status == SessionStatus.COMPLETED:
        raise SessionCompleted(session_id)
    if changes:
        uow.changed_workspace(row.workspace_id)
    return row


def touch(uow: UnitOfWork, session_id: str, now: datetime) -> None:
    """Mark a session changed, locking it, in one statement; any status may change this way."""
    check_id(session_id, "session_id")
    row = uow.execute(q.TOUCH, {"sid": session_id, "now": now}).first()
    if row is None:
        raise SessionNotFound(session_id)
    uow.changed_workspace(row.workspace_id)


REFRESH_AFTER = timedelta(seconds=1)
"""How far a session's `updated_at` may trail the rows appended with `refresh` (SQLite)."""


class Refreshes:
    """When a writer last had each session marked changed by `refresh`, so it can skip even
    that statement within REFRESH_AFTER; past `remembered` sessions it forgets them all."""

    def __init__(self, remembered: int = 10_000) -> None:
        self._at: dict[str, float] = {}
        self._remembered = remembered

    def due(self, session_id: str) -> float | None:
        """time.monotonic() now if a refresh is due (give it to `done` once the write
        committed), else None."""
        now = time.monotonic()
        last = self._at.get(session_id)
        if last is not None and now - last < REFRESH_AFTER.total_seconds():
            return None
        return now

    def done(self, session_id: str, started: float | None) -> None:
        """Remember a committed write that refreshed the session (`started` from `due`)."""
        if started is None:
            return
        if len(self._at) >= self._remembered and session_id not in self._at:
            self._at.clear()
        self._at[session_id] = started


def refresh(uow: UnitOfWork, session_id: str, now: datetime) -> None:
    """Mark a session changed if it last was over REFRESH_AFTER ago; an up-to-date row is
    left alone, so a stream of appends rewrites it (a WAL page) at most once a second.

    For SQLite, where BEGIN IMMEDIATE already keeps other writers out: on PostgreSQL a
    writer locks the row with `touch` instead.
    """
    params = {"sid": session_id, "now": now, "stale": now - REFRESH_AFTER}
    for row in uow.execute(q.REFRESH, params):
        uow.changed_workspace(row.workspace_id)


def insert_joining(
    uow: UnitOfWork, statement: sa.Insert, params: Any, session_id: str, *, kind: str
) -> None:
    """Insert rows of a session, creating it (of `kind`, with its creation event) only when
    the rows' foreign key finds it missing: a known session costs no lookup first.

    For SQLite, whose BEGIN IMMEDIATE keeps every other writer out, so nobody creates the
    session meanwhile; and for tables whose only foreign key is their session's.
    """
    try:
        with uow.savepoint():
            uow.execute(statement, params)
        return
    except sa.exc.IntegrityError as exc:
        broken = violation(exc)
        if broken is None or broken.kind != "foreign_key":
            raise
    create_bare(uow, session_id, kind)
    uow.execute(statement, params)


def create_bare(
    uow: UnitOfWork, session_id: str, kind: str, metadata: dict[str, Any] | None = None
) -> None:
    """A session that a framework adapter makes for an id it was given: running, of `kind`,
    with no subject, task, workspace or model."""
    create(
        uow,
        session_id=session_id,
        kind=kind,
        subject=None,
        task=None,
        workspace=None,
        model=None,
        metadata={} if metadata is None else metadata,
    )


def create(
    uow: UnitOfWork,
    *,
    session_id: str,
    kind: str,
    subject: str | None,
    task: str | None,
    workspace: str | os.PathLike[str] | None,
    model: str | None,
    metadata: Any,
) -> str:
    """Insert a new running session with zero cost and log its creation.

    A taken id is found by the unique constraint, not by a query first: one round trip less.
    """
    now = utcnow()
    workspace_id = workspaces.touch(uow, workspace, now) if workspace is not None else None

    def taken(exc: sa.exc.IntegrityError) -> None:
        broken = violation(exc)
        if broken is not None and (broken.table, broken.columns) == ("sessions", ("id",)):
            raise InvalidInput("session_id", f"a session {session_id!r} already exists") from None

    uow.explain(taken)
    uow.execute(
        q.INSERT,
        new_row(
            session_id,
            kind=kind,
            subject=subject,
            task=task,
            workspace_id=workspace_id,
            model=model,
            metadata=metadata,
            now=now,
        ),
    )
    uow.changed_workspace(workspace_id)
    events.append(uow, **creation_event(session_id, kind, subject, now))
    return session_id


def new_row(
    session_id: str,
    *,
    kind: str,
    subject: str | None,
    task: str | None,
    workspace_id: str | None,
    model: str | None,
    metadata: Any,
    now: datetime,
) -> dict[str, Any]:
    """A new session's columns: running, with zero cost and tokens."""
    return {
        "id": session_id,
        "workspace_id": workspace_id,
        "kind": kind,
        "subject": subject,
        "task": task,
        "status": SessionStatus.RUNNING.value,
        "created_at": now,
        "updated_at": now,
        "cost_usd": ZERO,
        "tokens_in": 0,
        "tokens_out": 0,
        "model": model,
        "metadata": metadata,
    }


def creation_event(
    session_id: str, kind: str, subject: str | None, now: datetime
) -> dict[str, Any]:
    """The arguments of `events.append` for a session's creation."""
    return {
        "session_id": session_id,
        "event_type": "session.created",
        "content": f"{kind} session created",
        "now": now,
        "metadata": {"kind": kind, "subject": subject},
    }


def get(uow: UnitOfWork, session_id: str) -> Session | None:
    """The whole session, or None."""
    row = uow.execute(q.BY_ID, {"sid": session_id}).first()
    return None if row is None else Session.model_validate(row)


def update_status(
    uow: UnitOfWork, session_id: str, status: SessionStatus, error_message: str | None
) -> None:
    """Move a session; `completed` is final, terminal states stamp completion and duration."""
    current = lock(uow, session_id, allow_completed=True)
    if current.status == SessionStatus.COMPLETED:
        raise InvalidTransition(session_id, current.status, status.value)
    now = utcnow()
    values: dict[str, Any] = {
        "status": status.value,
        "error_message": error_message,
        "updated_at": now,
        "completed_at": None,
        "duration_ms": None,
    }
    if status.is_terminal:
        values["completed_at"] = now
        values["duration_ms"] = _elapsed_ms(current.created_at, now)
    uow.execute(q.SET, {"sid": session_id, **values})
    events.append(
        uow,
        session_id=session_id,
        event_type="session.status_changed",
        content=f"{current.status} -> {status.value}",
        now=now,
        metadata={"from": current.status, "to": status.value, "error_message": error_message},
    )


def save_markdown(uow: UnitOfWork, session_id: str, markdown: str) -> None:
    """Store the final report; allowed in any status, since it is often written last."""
    text = check_text(markdown, "markdown")
    lock(uow, session_id, allow_completed=True)
    uow.execute(q.SET, {"sid": session_id, "output_markdown": text, "updated_at": utcnow()})


_SUMMARIES = TypeAdapter(list[SessionSummary])
"""A page validated in one call: a third faster than a model_validate per row."""


def history(
    uow: UnitOfWork,
    limit: int,
    *,
    status: SessionStatus | None,
    kind: str | None,
    workspace: str | os.PathLike[str] | None,
    before: str | None,
) -> list[SessionSummary]:
    """A page of summaries, newest first, continuing after session `before`."""
    params: dict[str, Any] = {"limit": limit}
    if before is not None:
        cursor = uow.execute(q.CURSOR, {"sid": check_id(before, "before")}).first()
        if cursor is None:
            raise InvalidInput("before", f"no session {before!r} to continue after")
        params["after_created"], params["after_id"] = cursor.created_at, cursor.id
    if status is not None:
        params["status"] = status.value
    if kind is not None:
        params["kind"] = kind
    if workspace is not None:
        params["workspace_id"] = workspaces.workspace_id(workspace)
    statement = q.history(
        status=status is not None,
        kind=kind is not None,
        workspace=workspace is not None,
        after=before is not None,
    )
    return _SUMMARIES.validate_python(uow.execute(statement, params).all(), from_attributes=True)


def calculate_duration(uow: UnitOfWork, session_id: str) -> int:
    """Milliseconds from creation to completion, or to now while the session is open."""
    row = uow.execute(q.TIMING, {"sid": session_id}).first()
    if row is None:
        raise SessionNotFound(session_id)
    return _elapsed_ms(row.created_at, row.completed_at or utcnow())


def count(uow: UnitOfWork) -> tuple[int, int]:
    """How many sessions are stored, and how many tally rows that was summed from."""
    total, parts = uow.execute(q.COUNT).one()
    return int(total), int(parts)


def delete(uow: UnitOfWork, session_id: str) -> None:
    """Delete a session and, by cascade, everything that belongs to it."""
    lock(uow, session_id, allow_completed=True)
    uow.execute(q.DELETE, {"sid": session_id})


def cleanup(uow: UnitOfWork, days: int) -> int:
    """Delete completed and failed sessions that finished more than `days` days ago."""
    deleted = uow.execute(q.cleanup(utcnow() - timedelta(days=days))).all()
    for (workspace_id,) in deleted:
        uow.changed_workspace(workspace_id)
    return len(deleted)


def _elapsed_ms(start: datetime, end: datetime) -> int:
    return max(0, int((end - start) / timedelta(milliseconds=1)))
