"""LangGraph checkpoints and pending writes, stored per thread (a session of kind `langgraph`).

Values arrive already serialized (the saver's serializer owns the encoding), so this module
needs no LangGraph: it keeps rows, the thread's session, and the strict-parent rule.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from itertools import islice
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from statekeeper.errors import InvalidInput, SessionNotFound, VersionConflict
from statekeeper.executor import UnitOfWork
from statekeeper.models import Base
from statekeeper.queries import SESSIONS
from statekeeper.services import sessions
from statekeeper.values import JsonText, check_id, utcnow

__all__ = [
    "KIND",
    "copy_thread",
    "delete_for_runs",
    "delete_thread",
    "get",
    "listing",
    "prune",
    "put",
    "put_writes",
]

KIND = "langgraph"
"""The kind of the sessions that threads create."""

CHECKPOINTS = Base.metadata.tables["graph_checkpoints"]
WRITES = Base.metadata.tables["graph_writes"]
_KEY = (CHECKPOINTS.c.session_id, CHECKPOINTS.c.checkpoint_ns, CHECKPOINTS.c.checkpoint_id)
_WRITE_KEY = (WRITES.c.session_id, WRITES.c.checkpoint_ns, WRITES.c.checkpoint_id)
_CHUNK = 300
"""Keys per IN list: three parameters each, far below SQLite's limit of 32766."""

Key = tuple[str, str, str]
"""A checkpoint: (thread id, namespace, checkpoint id)."""


def _insert(dialect: str, table: sa.Table) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT."""
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


@cache
def _upsert_checkpoint(dialect: str) -> sa.Insert:
    statement = _insert(dialect, CHECKPOINTS)
    replaced = ("parent_checkpoint_id", "type", "checkpoint", "metadata")
    return statement.on_conflict_do_update(  # type: ignore[no-any-return]
        index_elements=list(_KEY), set_={name: statement.excluded[name] for name in replaced}
    )


@cache
def _insert_writes(dialect: str, *, replace: bool) -> sa.Insert:
    statement = _insert(dialect, WRITES)
    keys = [column.name for column in WRITES.primary_key]
    if not replace:
        return statement.on_conflict_do_nothing(index_elements=keys)  # type: ignore[no-any-return]
    replaced = ("channel", "type", "value", "task_path")
    return statement.on_conflict_do_update(  # type: ignore[no-any-return]
        index_elements=keys, set_={name: statement.excluded[name] for name in replaced}
    )


def _join_thread(
    uow: UnitOfWork, thread_id: str, metadata: dict[str, Any], *, lock: bool = True
) -> None:
    """Make sure the thread's session exists, creating it if new; `lock` also locks it, so
    checkpoint writers of one thread queue there (pending writes need no lock).

    A concurrent first write may create it meanwhile: the savepoint undoes our attempt.
    """
    if lock:
        try:
            sessions.touch(uow, thread_id, utcnow())
            return
        except SessionNotFound:
            pass
    elif uow.scalar(sa.select(SESSIONS.c.id).where(SESSIONS.c.id == thread_id)) is not None:
        return
    assert uow.connection is not None, "graph writes never run on the driver-only path"
    try:
        with uow.connection.begin_nested():
            sessions.create(
                uow,
                session_id=thread_id,
                kind=KIND,
                subject=None,
                task=None,
                workspace=None,
                model=None,
                metadata=metadata,
            )
    except InvalidInput:
        if lock:
            sessions.touch(uow, thread_id, utcnow())


def _newest(uow: UnitOfWork, thread_id: str, namespace: str) -> str | None:
    newest: str | None = uow.scalar(
        sa.select(sa.func.max(CHECKPOINTS.c.checkpoint_id)).where(
            CHECKPOINTS.c.session_id == thread_id, CHECKPOINTS.c.checkpoint_ns == namespace
        )
    )
    return newest


def put(
    uow: UnitOfWork,
    key: Key,
    *,
    parent_id: str | None,
    typed: tuple[str, bytes],
    metadata: JsonText,
    strict: bool,
) -> None:
    """Store one checkpoint, creating the thread's session on its first.

    `strict`: the parent must be the namespace's newest checkpoint (None: there is none yet),
    else VersionConflict and nothing is written.
    """
    thread_id, namespace, checkpoint_id = key
    check_id(thread_id, "thread_id")
    _join_thread(uow, thread_id, {})
    if strict:
        newest = _newest(uow, thread_id, namespace)
        if newest != parent_id:
            raise VersionConflict(
                f"thread {thread_id!r} (namespace {namespace!r}) moved on: its newest checkpoint "
                f"is {newest!r}, this one was made from {parent_id!r}",
                None,
                None,
            )
    uow.execute(
        _upsert_checkpoint(uow.dialect.name),
        {
            "session_id": thread_id,
            "checkpoint_ns": namespace,
            "checkpoint_id": checkpoint_id,
            "parent_checkpoint_id": parent_id,
            "type": typed[0],
            "checkpoint": typed[1],
            "metadata": metadata,
            "created_at": utcnow(),
        },
    )


def put_writes(
    uow: UnitOfWork,
    key: Key,
    *,
    task_id: str,
    task_path: str,
    writes: Sequence[tuple[int, str, tuple[str, bytes]]],
    replace: bool,
) -> None:
    """Store a task's writes (idx, channel, typed value) against a checkpoint.

    `replace` overwrites writes of the same index (LangGraph's special channels); otherwise a
    write already stored is kept, so a retried task does not duplicate its writes.
    """
    if not writes:
        return
    thread_id, namespace, checkpoint_id = key
    check_id(thread_id, "thread_id")
    # LangGraph may send a step's writes before that step's checkpoint is committed.
    _join_thread(uow, thread_id, {}, lock=False)
    rows = [
        {
            "session_id": thread_id,
            "checkpoint_ns": namespace,
            "checkpoint_id": checkpoint_id,
            "task_id": task_id,
            "idx": idx,
            "channel": channel,
            "type": typed[0],
            "value": typed[1],
            "task_path": task_path,
        }
        for idx, channel, typed in writes
    ]
    uow.execute(_insert_writes(uow.dialect.name, replace=replace), rows)


def _writes_of(uow: UnitOfWork, keys: Sequence[Key]) -> dict[Key, list[Any]]:
    """The stored writes of each checkpoint, unordered."""
    found: dict[Key, list[Any]] = {key: [] for key in keys}
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        statement = sa.select(WRITES).where(sa.tuple_(*_WRITE_KEY).in_(chunk))
        for row in uow.execute(statement):
            found[(row.session_id, row.checkpoint_ns, row.checkpoint_id)].append(row)
    return found


def get(uow: UnitOfWork, key: tuple[str, str, str | None]) -> tuple[Any, list[Any]] | None:
    """A checkpoint row (the newest of the namespace without an id) and its writes."""
    thread_id, namespace, checkpoint_id = key
    statement = sa.select(CHECKPOINTS).where(
        CHECKPOINTS.c.session_id == thread_id, CHECKPOINTS.c.checkpoint_ns == namespace
    )
    if checkpoint_id is None:
        statement = statement.order_by(CHECKPOINTS.c.checkpoint_id.desc()).limit(1)
    else:
        statement = statement.where(CHECKPOINTS.c.checkpoint_id == checkpoint_id)
    row = uow.execute(statement).first()
    if row is None:
        return None
    found = (row.session_id, row.checkpoint_ns, row.checkpoint_id)
    return row, _writes_of(uow, [found])[found]


def _matches(metadata: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    return all(metadata.get(name) == value for name, value in wanted.items())


def listing(
    uow: UnitOfWork,
    *,
    thread_id: str | None,
    namespace: str | None,
    checkpoint_id: str | None,
    before: str | None,
    metadata: Mapping[str, Any] | None,
    limit: int | None,
) -> list[tuple[Any, list[Any]]]:
    """Checkpoints newest first, each with its writes; None leaves a criterion out.

    `metadata` keys must all equal the stored ones. String values narrow the query in SQL;
    the comparison that decides is the Python one, the same on both engines.
    """
    statement = sa.select(CHECKPOINTS).order_by(CHECKPOINTS.c.checkpoint_id.desc())
    if thread_id is not None:
        statement = statement.where(CHECKPOINTS.c.session_id == thread_id)
    if namespace is not None:
        statement = statement.where(CHECKPOINTS.c.checkpoint_ns == namespace)
    if checkpoint_id is not None:
        statement = statement.where(CHECKPOINTS.c.checkpoint_id == checkpoint_id)
    if before is not None:
        statement = statement.where(CHECKPOINTS.c.checkpoint_id < before)
    wanted = dict(metadata or {})
    for name, value in wanted.items():
        if isinstance(value, str) and name.isidentifier():
            statement = statement.where(CHECKPOINTS.c["metadata"][name].as_string() == value)
    if limit is not None and not wanted:
        statement = statement.limit(limit)
    rows: Iterator[Any] = (row for row in uow.execute(statement) if _matches(row.metadata, wanted))
    chosen = list(rows if limit is None else islice(rows, limit))
    writes = _writes_of(
        uow, [(row.session_id, row.checkpoint_ns, row.checkpoint_id) for row in chosen]
    )
    return [(row, writes[(row.session_id, row.checkpoint_ns, row.checkpoint_id)]) for row in chosen]


def _delete_checkpoints(uow: UnitOfWork, condition: sa.ColumnElement[bool]) -> None:
    """Delete the checkpoints meeting `condition` (on CHECKPOINTS) and their writes."""
    doomed = sa.select(*_KEY).where(condition)
    uow.execute(sa.delete(WRITES).where(sa.tuple_(*_WRITE_KEY).in_(doomed)))
    uow.execute(sa.delete(CHECKPOINTS).where(condition))


def _delete_threads(uow: UnitOfWork, thread_ids: Sequence[str]) -> None:
    """Delete every checkpoint and write of these threads, their sessions kept."""
    for table in (WRITES, CHECKPOINTS):
        uow.execute(sa.delete(table).where(table.c.session_id.in_(thread_ids)))


def delete_thread(uow: UnitOfWork, thread_id: str) -> None:
    """Forget a thread: its session goes (by cascade, all of it) if the saver made it;
    a session of another kind only loses its checkpoints and writes."""
    kind = uow.scalar(sa.select(SESSIONS.c.kind).where(SESSIONS.c.id == thread_id))
    if kind == KIND:
        sessions.delete(uow, thread_id)
    elif kind is not None:
        _delete_threads(uow, [thread_id])


def delete_for_runs(uow: UnitOfWork, run_ids: Sequence[str]) -> None:
    """Delete the checkpoints whose metadata names one of these runs, with their writes."""
    run_id = CHECKPOINTS.c["metadata"]["run_id"].as_string()
    for start in range(0, len(run_ids), _CHUNK):
        _delete_checkpoints(uow, run_id.in_(run_ids[start : start + _CHUNK]))


def copy_thread(uow: UnitOfWork, source: str, target: str) -> None:
    """Copy every checkpoint and write of `source` to `target` (created if new); checkpoints
    `target` already holds stay as they are."""
    has_any = uow.scalar(
        sa.select(sa.literal(1)).where(CHECKPOINTS.c.session_id == source).limit(1)
    )
    if has_any is None:
        return
    check_id(target, "target_thread_id")
    _join_thread(uow, target, {"copied_from": source})
    name = uow.dialect.name
    for table in (CHECKPOINTS, WRITES):
        columns = [column for column in table.c if column.name != "session_id"]
        copied = sa.select(sa.literal(target, sa.String()), *columns).where(
            table.c.session_id == source
        )
        statement = _insert(name, table).from_select(
            ["session_id", *[c.name for c in columns]], copied
        )
        uow.execute(statement.on_conflict_do_nothing())


def prune(uow: UnitOfWork, thread_ids: Sequence[str], *, keep_latest: bool) -> None:
    """Delete the threads' checkpoints and writes but, with `keep_latest`, each namespace's
    newest checkpoint and its writes."""
    for start in range(0, len(thread_ids), _CHUNK):
        chunk = list(thread_ids[start : start + _CHUNK])
        if not keep_latest:
            _delete_threads(uow, chunk)
            continue
        for table in (WRITES, CHECKPOINTS):
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
            uow.execute(
                sa.delete(table).where(table.c.session_id.in_(chunk), table.c.checkpoint_id != kept)
            )
