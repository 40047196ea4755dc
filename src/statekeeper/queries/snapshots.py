"""Statements over snapshots: listing, rotation per owner, expiry."""

from __future__ import annotations

from functools import cache

import sqlalchemy as sa

from statekeeper.executor import prepared
from statekeeper.queries import SNAPSHOTS

__all__ = ["BY_ID", "DELETE_IDS", "EXPIRED", "INSERT", "OVER_LIMIT", "listing", "rotate"]

_S = SNAPSHOTS.c
_NS: sa.BindParameter[str] = sa.bindparam("ns")
_VISIBLE = sa.or_(_S.session_id.is_not(None), _S.namespace == _NS)
"""Session snapshots, and agent snapshots of this manager's namespace (param: ns)."""

INSERT = prepared(sa.insert(SNAPSHOTS))
"""One snapshot (params: its columns)."""

BY_ID = prepared(sa.select(SNAPSHOTS).where(_S.id == sa.bindparam("snap"), _VISIBLE))
"""One visible snapshot with its payload (params: snap, ns)."""

_SUMMARY = (
    _S.id,
    _S.session_id,
    _S.agent_id,
    _S.namespace,
    _S.description,
    _S.created_at,
    _S.expires_at,
    _S.size_bytes,
    _S.payload_zstd.is_not(None).label("compressed"),
)


@cache
def listing(*, session: bool, agent: bool) -> sa.Select[tuple[object, ...]]:
    """Visible snapshots newest first, optionally of one session or agent (params: ns, sid, aid)."""
    statement = sa.select(*_SUMMARY)
    if agent:
        statement = statement.where(_S.namespace == _NS, _S.agent_id == sa.bindparam("aid"))
    if session:
        statement = statement.where(_S.session_id == sa.bindparam("sid"))
    if not (agent or session):
        statement = statement.where(_VISIBLE)
    return prepared(statement.order_by(_S.pk.desc()))


@cache
def rotate(*, agent: bool) -> sa.Delete:
    """Delete an owner's snapshots beyond the newest `keep` (params: keep, and sid or ns+aid)."""
    if agent:
        owner = sa.and_(_S.namespace == _NS, _S.agent_id == sa.bindparam("aid"))
    else:
        owner = _S.session_id == sa.bindparam("sid")
    beyond = (
        sa.select(_S.pk).where(owner).order_by(_S.pk.desc()).offset(sa.bindparam("keep"))
    ).scalar_subquery()
    return prepared(sa.delete(SNAPSHOTS).where(_S.pk.in_(beyond)))


EXPIRED = prepared(
    sa.select(_S.id).where(_S.expires_at <= sa.bindparam("now"), _VISIBLE).order_by(_S.pk)
)
"""Visible snapshots past their expiry, oldest first (params: now, ns)."""

_RANKED = (
    sa.select(
        _S.id,
        _S.pk,
        sa.func.row_number()
        .over(partition_by=(_S.session_id, _S.namespace, _S.agent_id), order_by=_S.pk.desc())
        .label("newer"),
    )
    .where(_VISIBLE, sa.or_(_S.expires_at.is_(None), _S.expires_at > sa.bindparam("now")))
    .subquery()
)
OVER_LIMIT = prepared(
    sa.select(_RANKED.c.id).where(_RANKED.c.newer > sa.bindparam("keep")).order_by(_RANKED.c.pk)
)
"""Unexpired visible snapshots beyond the newest `keep` of their owner (params: now, ns, keep)."""

DELETE_IDS = prepared(sa.delete(SNAPSHOTS).where(_S.id.in_(sa.bindparam("ids", expanding=True))))
"""Delete snapshots by id (param: ids)."""
