"""Statements over instances and chat messages, and worktree sessions as a whole."""

from __future__ import annotations

from functools import cache

import sqlalchemy as sa

from statekeeper.executor import prepared
from statekeeper.queries import CHAT, INSTANCES, SESSIONS, AnySelect

__all__ = [
    "ADOPT",
    "CHAT_INSERT",
    "DELETE_CHAT",
    "DELETE_INSTANCES",
    "EXISTING_IDS",
    "INSTANCES_OF",
    "INSTANCE_EXISTS",
    "INSTANCE_INSERT",
    "SEQ_OF",
    "UPDATE_INSTANCE",
    "chat_of",
    "sessions_in",
]

_SID: sa.BindParameter[str] = sa.bindparam("sid")
_NUMBER: sa.BindParameter[int] = sa.bindparam("number")
_SIDS: sa.BindParameter[list[str]] = sa.bindparam("sids", expanding=True)
_THIS_INSTANCE = sa.and_(INSTANCES.c.session_id == _SID, INSTANCES.c.instance_number == _NUMBER)

INSTANCE_EXISTS = prepared(sa.select(sa.exists().where(_THIS_INSTANCE)))
"""Whether a session has an instance with this number (params: sid, number)."""

INSTANCE_INSERT = prepared(sa.insert(INSTANCES))
"""New instances (params: their columns)."""

UPDATE_INSTANCE = prepared(sa.update(INSTANCES).where(_THIS_INSTANCE))
"""Change fields of one instance (params: sid, number, and the columns to set)."""

INSTANCES_OF = prepared(
    sa.select(INSTANCES)
    .where(INSTANCES.c.session_id.in_(_SIDS))
    .order_by(INSTANCES.c.session_id, INSTANCES.c.instance_number)
)
"""The instances of some sessions, by session then number (param: sids, a list)."""

DELETE_INSTANCES = prepared(sa.delete(INSTANCES).where(INSTANCES.c.session_id == _SID))
"""Every instance of a session, before a whole-object save rewrites them (param: sid)."""

CHAT_INSERT = prepared(sa.insert(CHAT).inline())
"""New chat messages (params: their columns); inline: no RETURNING of the new `seq`."""

SEQ_OF = prepared(
    sa.select(CHAT.c.seq).where(CHAT.c.session_id == _SID, CHAT.c.id == sa.bindparam("mid"))
)
"""Where a message stands in its session's chat (params: sid, mid)."""

DELETE_CHAT = prepared(sa.delete(CHAT).where(CHAT.c.session_id == _SID))
"""Every chat message of a session, before a whole-object save rewrites them (param: sid)."""

EXISTING_IDS = prepared(
    sa.select(SESSIONS.c.id, SESSIONS.c.workspace_id).where(SESSIONS.c.id.in_(_SIDS))
)
"""Which of these session ids are stored, with their workspace (param: sids, a list)."""

ADOPT = prepared(
    sa.update(SESSIONS)
    .where(SESSIONS.c.id.in_(_SIDS), SESSIONS.c.workspace_id.is_(None))
    .values(workspace_id=sa.bindparam("owner"))
)
"""Give sessions that have no workspace this one (params: sids, a list; owner)."""


@cache
def chat_of(*, after: bool, limit: bool) -> AnySelect:
    """Chat of some sessions in insertion order (params: sids; after_seq, limit when asked)."""
    query = sa.select(CHAT).where(CHAT.c.session_id.in_(_SIDS))
    if after:
        query = query.where(CHAT.c.seq > sa.bindparam("after_seq"))
    query = query.order_by(CHAT.c.session_id, CHAT.c.seq)
    return prepared(query.limit(sa.bindparam("limit")) if limit else query)


def sessions_in(
    workspace_id: str, *, kind: str | None = None, status: str | None = None
) -> AnySelect:
    """A workspace's sessions, newest first."""
    query = sa.select(SESSIONS).where(SESSIONS.c.workspace_id == workspace_id)
    if kind is not None:
        query = query.where(SESSIONS.c.kind == kind)
    if status is not None:
        query = query.where(SESSIONS.c.status == status)
    return query.order_by(SESSIONS.c.created_at.desc(), SESSIONS.c.id.desc())
