"""OpenAI Agents SDK session items as chat messages, in `seq` order: plain ones as role and
text, others verbatim in `chat_messages.item` with their text in `content` for search."""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from statekeeper.enums import ChatRole
from statekeeper.errors import InvalidInput, SessionNotFound
from statekeeper.executor import UnitOfWork, prepared
from statekeeper.queries import CHAT
from statekeeper.queries import worktree as q
from statekeeper.services import sessions as sessions_service
from statekeeper.values import dump_json, utcnow

__all__ = ["KIND", "add", "clear", "items", "pop", "rows_of"]

KIND = "openai-agents"
"""The kind of a session the SDK adapter creates on its first item."""

_ROLES = {
    "user": ChatRole.USER,
    "assistant": ChatRole.ASSISTANT,
    "system": ChatRole.SYSTEM,
    "developer": ChatRole.SYSTEM,
}
_PLAIN_ROLES = frozenset({"user", "assistant", "system"})
_TEXT_KEYS = frozenset(
    {
        "arguments",
        "code",
        "command",
        "commands",
        "content",
        "diff",
        "error",
        "input",
        "logs",
        "name",
        "output",
        "queries",
        "query",
        "reason",
        "refusal",
        "stderr",
        "stdout",
        "text",
    }
)
"""Keys whose strings are words a person would search for; ids, statuses, base64 images,
encrypted reasoning and the like are left out of the searchable text."""

_SID: sa.BindParameter[str] = sa.bindparam("sid")
_COLUMNS = (CHAT.c.seq, CHAT.c.role, CHAT.c.content, CHAT.c.item)
_ALL = prepared(sa.select(*_COLUMNS).where(CHAT.c.session_id == _SID).order_by(CHAT.c.seq))
_LATEST = prepared(
    sa.select(*_COLUMNS)
    .where(CHAT.c.session_id == _SID)
    .order_by(CHAT.c.seq.desc())
    .limit(sa.bindparam("limit"))
)
_DELETE_ONE = prepared(sa.delete(CHAT).where(CHAT.c.seq == sa.bindparam("at")))


def rows_of(items: object) -> list[dict[str, Any]]:
    """The chat columns of each item, checked before anything is written."""
    if not isinstance(items, list):
        raise InvalidInput("items", f"expected a list, got {type(items).__name__}")
    return [_row(item, f"items[{i}]") for i, item in enumerate(items)]


def _row(item: object, field: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise InvalidInput(field, f"expected a dict, got {type(item).__name__}")
    text = dump_json(item, field)
    if json.loads(text) != item:
        raise InvalidInput(field, "would not come back as it is (tuples, non-string keys)")
    role, content = item.get("role"), item.get("content")
    if item.keys() == {"role", "content"} and role in _PLAIN_ROLES and isinstance(content, str):
        return {"role": role, "content": content}
    kind = item.get("type")
    if isinstance(role, str) and role in _ROLES:
        mapped = _ROLES[role]
    elif isinstance(kind, str) and kind.endswith(("_output", "_response")):
        mapped = ChatRole.USER  # what the application hands back to the model
    else:
        mapped = ChatRole.ASSISTANT  # what the model produced: calls, reasoning
    return {"role": mapped.value, "content": "\n".join(_words(item, None)), "item": text}


def _words(value: object, key: str | None) -> Iterator[str]:
    """The strings under text keys, in order; list elements count as their list's key."""
    if isinstance(value, str):
        if key in _TEXT_KEYS and value:
            yield value
    elif isinstance(value, dict):
        for name, child in value.items():
            yield from _words(child, name)
    elif isinstance(value, list):
        for child in value:
            yield from _words(child, key)


def add(
    uow: UnitOfWork, session_id: str, rows: list[dict[str, Any]], *, refresh: bool = True
) -> None:
    """Append the rows in order; the session is created (kind `KIND`) if it does not exist.

    `refresh` (SQLite): also mark the session changed if it last was over
    sessions.REFRESH_AFTER ago; a caller that had it marked within that time passes False.
    """
    now = utcnow()
    # Plain rows leave `item` out, so it stays SQL NULL: a JSON column binds None as 'null'.
    batches = [
        [
            {
                "id": str(uuid.uuid4()),
                "session_id": session_id,
                "created_at": now,
                "instance_number": None,
                **row,
            }
            for row in run
        ]
        for _, run in itertools.groupby(rows, key=lambda row: "item" in row)
    ]
    if not batches:
        return
    if uow.dialect.name == "postgresql":
        # Lock the session row first (touch's UPDATE): concurrent writers of one session
        # take turns, so `seq` follows commit order (SQLite: BEGIN IMMEDIATE does that).
        try:
            sessions_service.touch(uow, session_id, now)
        except SessionNotFound:
            sessions_service.create_bare(uow, session_id, KIND)
        for batch in batches:
            uow.execute(q.CHAT_INSERT, batch)
        return
    first, *rest = batches
    sessions_service.insert_joining(uow, q.CHAT_INSERT, first, session_id, kind=KIND)
    for batch in rest:
        uow.execute(q.CHAT_INSERT, batch)
    if refresh:
        sessions_service.refresh(uow, session_id, now)


def items(uow: UnitOfWork, session_id: str, limit: int | None) -> list[Any]:
    """The session's items in order, or its latest `limit` ones."""
    if limit is None:
        return [_item(row) for row in uow.execute(_ALL, {"sid": session_id})]
    latest = uow.execute(_LATEST, {"sid": session_id, "limit": limit}).all()
    return [_item(row) for row in reversed(latest)]


def pop(uow: UnitOfWork, session_id: str, *, refresh: bool = True) -> Any:
    """Remove and return the newest item, or None when there is none; `refresh` as `add`'s."""
    on_server = uow.dialect.name == "postgresql"
    if on_server:
        try:
            sessions_service.touch(uow, session_id, utcnow())  # writers of it take turns
        except SessionNotFound:
            return None
    newest = uow.execute(_LATEST, {"sid": session_id, "limit": 1}).first()
    if newest is None:
        return None
    uow.execute(_DELETE_ONE, {"at": newest.seq})
    if refresh and not on_server:
        sessions_service.refresh(uow, session_id, utcnow())
    return _item(newest)


def clear(uow: UnitOfWork, session_id: str) -> None:
    """Delete every chat message of the session; the session and its events stay."""
    try:
        sessions_service.touch(uow, session_id, utcnow())
    except SessionNotFound:
        return
    uow.execute(q.DELETE_CHAT, {"sid": session_id})


def _item(row: Any) -> Any:
    return row.item if row.item is not None else {"role": row.role, "content": row.content}
