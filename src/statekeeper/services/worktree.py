"""Worktree sessions: agent instances, chat history, and the legacy object as a whole."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from pydantic import TypeAdapter

from statekeeper.enums import ChatRole, SessionStatus
from statekeeper.errors import InvalidInput, InvalidTransition
from statekeeper.executor import UnitOfWork
from statekeeper.queries import events as events_q
from statekeeper.queries import sessions as sessions_q
from statekeeper.queries import worktree as q
from statekeeper.schemas import ChatMessage, WorktreeInstance, WorktreeSession
from statekeeper.schemas.base import STORABLE
from statekeeper.services import events
from statekeeper.services import sessions as sessions_service
from statekeeper.values import ZERO, utcnow

__all__ = [
    "INSTANCE_FIELDS",
    "add_chat_message",
    "add_instance",
    "chat_history",
    "get",
    "get_many",
    "insert_many",
    "instances",
    "list_in_workspace",
    "save",
    "update_instance",
]

INSTANCE_FIELDS = frozenset(WorktreeInstance.model_fields) - {"instance_id"}
"""Instance fields that `add_instance` and `update_instance` accept by keyword."""


def add_instance(uow: UnitOfWork, session_id: str, number: int, values: dict[str, Any]) -> None:
    """Add an instance; its number must be new in the session."""
    sessions_service.touch(uow, session_id, utcnow())
    if uow.scalar(q.INSTANCE_EXISTS, {"sid": session_id, "number": number}):
        raise InvalidInput("instance_number", f"session {session_id!r} already has {number}")
    uow.execute(q.INSTANCE_INSERT, {"session_id": session_id, "instance_number": number, **values})


def update_instance(uow: UnitOfWork, session_id: str, number: int, values: dict[str, Any]) -> None:
    """Change fields of an existing instance."""
    sessions_service.touch(uow, session_id, utcnow())
    if not uow.scalar(q.INSTANCE_EXISTS, {"sid": session_id, "number": number}):
        raise InvalidInput("instance_number", f"session {session_id!r} has no instance {number}")
    if values:
        uow.execute(q.UPDATE_INSTANCE, {"sid": session_id, "number": number, **values})


def instances(uow: UnitOfWork, session_id: str) -> list[WorktreeInstance]:
    """A session's instances by number."""
    rows = uow.execute(q.INSTANCES_OF, {"sids": [session_id]})
    return _INSTANCES.validate_python([_instance(row) for row in rows], context=STORABLE)


def add_chat_message(
    uow: UnitOfWork, session_id: str, role: ChatRole, content: str, instance_number: int | None
) -> str:
    """Append a message after every earlier one of the session; returns its id.

    The session row is locked first (by the update that marks it changed), so `seq`,
    assigned at insert, follows commit order.
    """
    now = utcnow()
    sessions_service.touch(uow, session_id, now)
    message_id = str(uuid.uuid4())
    uow.execute(
        q.CHAT_INSERT,
        {
            "id": message_id,
            "session_id": session_id,
            "role": role.value,
            "content": content,
            "created_at": now,
            "instance_number": instance_number,
        },
    )
    return message_id


def chat_history(
    uow: UnitOfWork, session_id: str, limit: int | None, after: str | None
) -> list[ChatMessage]:
    """Messages in insertion order: the first `limit` of them after message `after`."""
    params: dict[str, Any] = {"sids": [session_id]}
    if after is not None:
        params["after_seq"] = uow.scalar(q.SEQ_OF, {"sid": session_id, "mid": after})
        if params["after_seq"] is None:
            raise InvalidInput("after", f"no message {after!r} in session {session_id!r}")
    if limit is not None:
        params["limit"] = limit
    statement = q.chat_of(after=after is not None, limit=limit is not None)
    rows = uow.execute(statement, params)
    return _MESSAGES.validate_python([_message(row) for row in rows], context=STORABLE)


def get(uow: UnitOfWork, session_id: str) -> WorktreeSession | None:
    """The whole legacy object, or None."""
    row = uow.execute(sessions_q.BY_ID, {"sid": session_id}).first()
    return None if row is None else _assemble(uow, [row])[0]


def get_many(uow: UnitOfWork, session_ids: Collection[str]) -> list[WorktreeSession]:
    """The stored ones among these sessions, whole, in three queries however many."""
    return _assemble(uow, list(uow.execute(sessions_q.by_ids(session_ids))))


def list_in_workspace(
    uow: UnitOfWork, workspace_id: str, kind: str | None, status: str | None
) -> list[WorktreeSession]:
    """A workspace's sessions, newest first, each whole: three queries, however many."""
    return _assemble(uow, list(uow.execute(q.sessions_in(workspace_id, kind=kind, status=status))))


def save(uow: UnitOfWork, session: WorktreeSession, workspace_id: str | None) -> None:
    """Insert the session, or replace it whole: its fields, instances and chat.

    The status rules hold here too: a completed session stays completed. A stored duration
    that still rounds down to the object's whole seconds keeps its milliseconds.
    """
    locked = uow.execute(sessions_q.LOCK, {"sid": session.id}).first()
    if locked is None:
        insert_many(uow, [session], workspace_id, event_type="session.created")
        return
    if locked.status == SessionStatus.COMPLETED and session.status != SessionStatus.COMPLETED:
        raise InvalidTransition(session.id, locked.status, session.status.value)
    values = _session_values(session)
    if session.total_duration is not None:
        values["duration_ms"] = sessions_q.kept_duration(session.total_duration)
    if workspace_id is not None:
        values["workspace_id"] = workspace_id
    uow.changed_workspace(locked.workspace_id)
    uow.changed_workspace(workspace_id)
    uow.execute(sessions_q.update(session.id, **values))
    uow.execute(q.DELETE_INSTANCES, {"sid": session.id})
    uow.execute(q.DELETE_CHAT, {"sid": session.id})
    _insert_children(uow, [session])
    if locked.status != session.status:
        events.append(
            uow,
            session_id=session.id,
            event_type="session.status_changed",
            content=f"{locked.status} -> {session.status.value}",
            now=utcnow(),
            metadata={"from": locked.status, "to": session.status.value, "error_message": None},
        )


def insert_many(
    uow: UnitOfWork,
    sessions: Sequence[WorktreeSession],
    workspace_id: str | None,
    *,
    event_type: str,
) -> None:
    """Insert new sessions with their instances and chat in a few batched statements."""
    if not sessions:
        return
    uow.changed_workspace(workspace_id)
    now = utcnow()
    uow.execute(
        sessions_q.INSERT,
        [
            {
                "id": s.id,
                "workspace_id": workspace_id,
                "subject": None,
                "cost_usd": ZERO,
                "tokens_in": 0,
                "tokens_out": 0,
                "output_markdown": None,
                "error_message": None,
                "metadata": {},
                **_session_values(s),
            }
            for s in sessions
        ],
    )
    _insert_children(uow, sessions)
    uow.execute(
        events_q.INSERT,
        [
            {
                "id": str(uuid.uuid4()),
                "session_id": s.id,
                "event_type": event_type,
                "actor_type": "system",
                "actor_id": "statekeeper",
                "content": f"{s.type} session stored whole",
                "metadata": {"kind": s.type},
                "created_at": now,
            }
            for s in sessions
        ],
    )


def _insert_children(uow: UnitOfWork, sessions: Iterable[WorktreeSession]) -> None:
    instance_rows = [
        {
            "session_id": s.id,
            "instance_number": i.instance_id,
            **i.model_dump(exclude={"instance_id"}),
        }
        for s in sessions
        for i in s.instances
    ]
    chat_rows = [
        {
            "id": m.id,
            "session_id": s.id,
            "role": m.role.value,
            "content": m.content,
            "created_at": m.timestamp,
            "instance_number": m.instance_id,
        }
        for s in sessions
        for m in s.chat_history
    ]
    if instance_rows:
        uow.execute(q.INSTANCE_INSERT, instance_rows)
    if chat_rows:
        uow.execute(q.CHAT_INSERT, chat_rows)


def _session_values(session: WorktreeSession) -> dict[str, Any]:
    """The sessions-table columns a legacy object sets."""
    return {
        "kind": session.type,
        "task": session.task,
        "status": session.status.value,
        "created_at": session.created_at,
        "updated_at": session.updated_at,
        "completed_at": session.completed_at,
        "duration_ms": None if session.total_duration is None else session.total_duration * 1000,
        "model": session.model,
        "timeout_seconds": session.timeout_seconds,
        "preserve_worktrees": session.preserve_worktrees,
        "winner_instance": session.winner_id,
        "runtime_mix": session.runtime_mix,
        "files_changed": session.total_files_changed,
        "lines_added": session.total_lines_added,
        "lines_deleted": session.total_lines_deleted,
    }


def _assemble(uow: UnitOfWork, rows: list[sa.Row[Any]]) -> list[WorktreeSession]:
    ids = [row.id for row in rows]
    # Fields, not models: each session validates its own children with it, in one call.
    by_session: dict[str, list[dict[str, Any]]] = defaultdict(list)
    chats: dict[str, list[dict[str, Any]]] = defaultdict(list)
    if ids:
        for instance in uow.execute(q.INSTANCES_OF, {"sids": ids}):
            by_session[instance.session_id].append(_instance(instance))
        for message in uow.execute(q.chat_of(after=False, limit=False), {"sids": ids}):
            chats[message.session_id].append(_message(message))
    return [
        WorktreeSession.model_validate(
            {
                "id": row.id,
                "type": row.kind,
                "task": row.task or "",
                "status": row.status,
                "created_at": row.created_at,
                "updated_at": row.updated_at,
                "completed_at": row.completed_at,
                "instances": by_session[row.id],
                "chat_history": chats[row.id],
                "model": row.model,
                "timeout_seconds": row.timeout_seconds,
                "preserve_worktrees": row.preserve_worktrees,
                "winner_id": row.winner_instance,
                "runtime_mix": row.runtime_mix,
                "total_duration": None if row.duration_ms is None else row.duration_ms // 1000,
                "total_files_changed": row.files_changed,
                "total_lines_added": row.lines_added,
                "total_lines_deleted": row.lines_deleted,
            },
            context=STORABLE,
        )
        for row in rows
    ]


_INSTANCES = TypeAdapter(list[WorktreeInstance])
_MESSAGES = TypeAdapter(list[ChatMessage])
"""Lists validated in one call: a third faster than a model_validate per row."""


def _instance(row: Any) -> dict[str, Any]:
    """A stored instance row as the legacy object's fields."""
    values = {name: getattr(row, name) for name in INSTANCE_FIELDS}
    values["instance_id"] = row.instance_number
    return values


def _message(row: Any) -> dict[str, Any]:
    """A stored chat row as the legacy object's fields."""
    return {
        "id": row.id,
        "role": row.role,
        "content": row.content,
        "timestamp": row.created_at,
        "instance_id": row.instance_number,
    }
