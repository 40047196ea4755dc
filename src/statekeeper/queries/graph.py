"""Statements over LangGraph checkpoints and their pending writes (services/graph.py).

Every lookup names the thread and namespace, so the primary keys (session_id,
checkpoint_ns, checkpoint_id) serve it on both engines; several checkpoints of one thread
and namespace are one `checkpoint_id IN (...)`, never a row-value IN, which SQLite scans.
"""

from __future__ import annotations

from functools import cache, lru_cache

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from statekeeper.executor import prepared
from statekeeper.models import Base
from statekeeper.queries import SESSIONS, AnySelect

__all__ = [
    "CHECKPOINTS",
    "DELETE_CHECKPOINTS_OF",
    "DELETE_THREADS",
    "DELETE_WRITES_OF",
    "HAS_ANY",
    "KEYS_OF_RUNS",
    "NEWEST_ID",
    "NEWEST_WITH_WRITES",
    "PRUNE",
    "SESSION_KIND",
    "TOUCH",
    "WITH_WRITES",
    "WRITES",
    "WRITES_OF",
    "insert_writes",
    "listing",
]

CHECKPOINTS = Base.metadata.tables["graph_checkpoints"]
WRITES = Base.metadata.tables["graph_writes"]

_SID: sa.BindParameter[str] = sa.bindparam("sid")
_NS: sa.BindParameter[str] = sa.bindparam("ns")
_IDS: sa.BindParameter[list[str]] = sa.bindparam("ids", expanding=True)


def _of(table: sa.FromClause) -> sa.ColumnElement[bool]:
    """The rows of one thread and namespace (params: sid, ns)."""
    return sa.and_(table.c.session_id == _SID, table.c.checkpoint_ns == _NS)


TOUCH = prepared(
    sa.update(SESSIONS).where(SESSIONS.c.id == _SID).values(updated_at=sa.bindparam("now"))
)
"""Lock a thread's session by marking it changed, reading nothing back (params: sid, now)."""

SESSION_KIND = prepared(sa.select(SESSIONS.c.kind).where(SESSIONS.c.id == _SID))
"""The kind of a session, if it exists (params: sid)."""

NEWEST_ID = prepared(sa.select(sa.func.max(CHECKPOINTS.c.checkpoint_id)).where(_of(CHECKPOINTS)))
"""The newest checkpoint id of a thread and namespace (params: sid, ns)."""


def _with_writes(chosen: sa.ColumnElement[bool]) -> AnySelect:
    """One checkpoint of a thread and namespace with its writes, a row per write (or one row
    of NULL write columns): one statement, so one snapshot and one round trip."""
    joined = CHECKPOINTS.outerjoin(
        WRITES,
        sa.and_(
            WRITES.c.session_id == CHECKPOINTS.c.session_id,
            WRITES.c.checkpoint_ns == CHECKPOINTS.c.checkpoint_ns,
            WRITES.c.checkpoint_id == CHECKPOINTS.c.checkpoint_id,
        ),
    )
    columns = [c for c in CHECKPOINTS.c if c.name != "created_at"]
    written = [c.label(f"write_{c.name}") for c in WRITES.c if c.name not in _KEY_COLUMNS]
    statement = sa.select(*columns, *written).select_from(joined)
    return prepared(statement.where(_of(CHECKPOINTS), chosen))


_KEY_COLUMNS = ("session_id", "checkpoint_ns", "checkpoint_id")
_NEWEST = CHECKPOINTS.alias("newest")

NEWEST_WITH_WRITES = _with_writes(
    CHECKPOINTS.c.checkpoint_id
    == sa.select(sa.func.max(_NEWEST.c.checkpoint_id)).where(_of(_NEWEST)).scalar_subquery()
)
"""The newest checkpoint of a thread and namespace with its writes (params: sid, ns)."""

WITH_WRITES = _with_writes(CHECKPOINTS.c.checkpoint_id == sa.bindparam("cid"))
"""One checkpoint with its writes (params: sid, ns, cid)."""

WRITES_OF = prepared(sa.select(WRITES).where(_of(WRITES), WRITES.c.checkpoint_id.in_(_IDS)))
"""The writes of some checkpoints of one thread and namespace (params: sid, ns, ids)."""

DELETE_WRITES_OF = prepared(sa.delete(WRITES).where(_of(WRITES), WRITES.c.checkpoint_id.in_(_IDS)))
"""Delete the writes of some checkpoints of one thread and namespace (params: sid, ns, ids)."""

DELETE_CHECKPOINTS_OF = prepared(
    sa.delete(CHECKPOINTS).where(_of(CHECKPOINTS), CHECKPOINTS.c.checkpoint_id.in_(_IDS))
)
"""Delete some checkpoints of one thread and namespace (params: sid, ns, ids)."""


_THREADS: sa.BindParameter[list[str]] = sa.bindparam("sids", expanding=True)

DELETE_THREADS = tuple(
    prepared(sa.delete(table).where(table.c.session_id.in_(_THREADS)))
    for table in (WRITES, CHECKPOINTS)
)
"""Delete every write, then every checkpoint, of some threads (params: sids)."""

KEYS_OF_RUNS = prepared(
    sa.select(
        CHECKPOINTS.c.session_id, CHECKPOINTS.c.checkpoint_ns, CHECKPOINTS.c.checkpoint_id
    ).where(
        CHECKPOINTS.c["metadata"]["run_id"].as_string().in_(sa.bindparam("runs", expanding=True))
    )
)
"""The keys of the checkpoints whose metadata names one of some runs (params: runs)."""

HAS_ANY = prepared(sa.select(sa.literal(1)).where(CHECKPOINTS.c.session_id == _SID).limit(1))
"""1 if a thread has a checkpoint (params: sid)."""


def _prune(table: sa.Table) -> sa.Delete:
    newest = CHECKPOINTS.alias("newest")
    latest = (
        sa.select(sa.func.max(newest.c.checkpoint_id))
        .where(
            newest.c.session_id == table.c.session_id,
            newest.c.checkpoint_ns == table.c.checkpoint_ns,
        )
        .correlate(table)
        .scalar_subquery()
    )
    # Writes of no stored checkpoint (LangGraph sends some early) go too.
    kept = sa.func.coalesce(latest, "")
    return prepared(
        sa.delete(table).where(table.c.session_id.in_(_THREADS), table.c.checkpoint_id != kept)
    )


PRUNE = (_prune(WRITES), _prune(CHECKPOINTS))
"""Delete the writes, then the checkpoints, of some threads but each namespace's newest
checkpoint and its writes (params: sids)."""


@cache
def insert_writes(dialect: str) -> sa.Insert:
    """INSERT writes, a write already stored kept (params: the rows' columns; executemany)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    keys = [column.name for column in WRITES.primary_key]
    return prepared(insert(WRITES).on_conflict_do_nothing(index_elements=keys))


@lru_cache(maxsize=256)
def listing(
    *,
    thread: bool,
    namespace: bool,
    checkpoint: bool,
    before: bool,
    limit: bool,
    metadata: tuple[str, ...] = (),
) -> AnySelect:
    """Checkpoints newest first; each flag adds its criterion (params: sid, ns, cid, before,
    limit, and m0, m1, ... for the string values of the `metadata` keys, in that order).

    Bounded: metadata keys come from callers, and each set of them is a statement.
    """
    statement = sa.select(CHECKPOINTS).order_by(CHECKPOINTS.c.checkpoint_id.desc())
    if thread:
        statement = statement.where(CHECKPOINTS.c.session_id == _SID)
    if namespace:
        statement = statement.where(CHECKPOINTS.c.checkpoint_ns == _NS)
    if checkpoint:
        statement = statement.where(CHECKPOINTS.c.checkpoint_id == sa.bindparam("cid"))
    if before:
        statement = statement.where(CHECKPOINTS.c.checkpoint_id < sa.bindparam("before"))
    for index, name in enumerate(metadata):
        value = CHECKPOINTS.c["metadata"][name].as_string()
        statement = statement.where(value == sa.bindparam(f"m{index}", type_=sa.String()))
    if limit:
        statement = statement.limit(sa.bindparam("limit"))
    return prepared(statement)
