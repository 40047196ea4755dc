"""LangGraph checkpoints and pending writes, stored per thread (a session of kind `langgraph`).

Values arrive already serialized (the saver's serializer owns the encoding), so this module
needs no LangGraph: it keeps rows, the thread's session, and the strict-parent rule.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from itertools import groupby, islice
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from statekeeper import dialects
from statekeeper.errors import SessionNotFound, VersionConflict
from statekeeper.executor import UnitOfWork, prepared
from statekeeper.queries import EVENTS, SESSIONS
from statekeeper.queries import graph as q
from statekeeper.services import events, sessions
from statekeeper.values import JsonText, check_id, utcnow

__all__ = [
    "KIND",
    "Write",
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

CHECKPOINTS = q.CHECKPOINTS
WRITES = q.WRITES
_KEY = (CHECKPOINTS.c.session_id, CHECKPOINTS.c.checkpoint_ns, CHECKPOINTS.c.checkpoint_id)
_CHUNK = 300
"""Values per IN list, far below SQLite's limit of 32766 parameters."""

Key = tuple[str, str, str]
"""A checkpoint: (thread id, namespace, checkpoint id)."""


def _insert(dialect: str, table: sa.Table) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT."""
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


@cache
def _upsert_checkpoint(dialect: str) -> sa.Insert:
    return dialects.upsert(
        dialect,
        CHECKPOINTS,
        tuple(column.name for column in _KEY),
        ("parent_checkpoint_id", "type", "checkpoint", "metadata"),
    )


@cache
def _insert_writes(dialect: str, *, replace: bool) -> sa.Insert:
    if not replace:
        return q.insert_writes(dialect)
    return dialects.upsert(
        dialect,
        WRITES,
        tuple(column.name for column in WRITES.primary_key),
        ("channel", "type", "value", "task_path"),
    )


@cache
def _copy(dialect: str) -> tuple[sa.Insert, ...]:
    """Copy a thread's checkpoints, then its writes, to another thread, keeping what that
    one already holds (params: source, target)."""
    statements = []
    for table in (CHECKPOINTS, WRITES):
        columns = [column for column in table.c if column.name != "session_id"]
        copied = sa.select(sa.bindparam("target", type_=sa.String()), *columns).where(
            table.c.session_id == sa.bindparam("source")
        )
        statement = _insert(dialect, table).from_select(
            ["session_id", *[c.name for c in columns]], copied
        )
        statements.append(prepared(statement.on_conflict_do_nothing()))
    return tuple(statements)


@cache
def _join_on_postgresql(session_keys: tuple[str, ...], event_keys: tuple[str, ...]) -> sa.Insert:
    """Create a thread's session if it is missing, with its creation event, in one statement
    whose answer nobody waits for: on PostgreSQL's pipeline a put then takes one round trip.
    The columns are those of `sessions.new_row` and `events.row`, as `_join_params` names them.

    ON CONFLICT DO NOTHING returns only the row it inserted, so the event follows only a
    creation, and a concurrent creator's row is neither duplicated nor locked.
    """
    created = (
        postgresql.insert(SESSIONS)
        .values({key: sa.bindparam(f"s_{key}", type_=SESSIONS.c[key].type) for key in session_keys})
        .on_conflict_do_nothing(index_elements=[SESSIONS.c.id])
        .returning(SESSIONS.c.id)
        .cte("created")
    )
    values = [
        created.c.id if key == "session_id" else sa.bindparam(f"e_{key}", type_=EVENTS.c[key].type)
        for key in event_keys
    ]
    return prepared(sa.insert(EVENTS).from_select(list(event_keys), sa.select(*values)))


def _join(thread_id: str, metadata: dict[str, Any]) -> tuple[sa.Insert, dict[str, Any]]:
    """`_join_on_postgresql` with its parameters: a new thread's session and event columns."""
    now = utcnow()
    session = sessions.new_row(
        thread_id,
        kind=KIND,
        subject=None,
        task=None,
        workspace_id=None,
        model=None,
        metadata=metadata,
        now=now,
    )
    event = events.row(**sessions.creation_event(thread_id, KIND, None, now))
    statement = _join_on_postgresql(tuple(session), tuple(event))
    params = {f"s_{key}": value for key, value in session.items()}
    params.update((f"e_{key}", value) for key, value in event.items() if key != "session_id")
    return statement, params


def _join_on_server(
    uow: UnitOfWork, thread_id: str, metadata: dict[str, Any], *, lock: bool
) -> None:
    """PostgreSQL: make sure the thread's session exists, creating it if new; `lock` also
    locks it, so checkpoint writers of one thread queue there (pending writes need none).

    Two statements that wait for nothing do all of it (the touch does not read back the
    thread's workspace for the legacy mirror: threads have none).
    """
    uow.execute(*_join(thread_id, metadata))
    if lock:
        uow.execute(q.TOUCH, {"sid": thread_id, "now": utcnow()})


def _newest(uow: UnitOfWork, thread_id: str, namespace: str) -> str | None:
    newest: str | None = uow.scalar(q.NEWEST_ID, {"sid": thread_id, "ns": namespace})
    return newest


def put(
    uow: UnitOfWork,
    key: Key,
    *,
    parent_id: str | None,
    typed: tuple[str, bytes],
    metadata: JsonText,
    strict: bool,
    refresh: bool = True,
) -> None:
    """Store one checkpoint, creating the thread's session on its first.

    `strict`: the parent must be the namespace's newest checkpoint (None: there is none yet),
    else VersionConflict and nothing is written. `refresh` (SQLite): also mark the session
    changed if it last was over sessions.REFRESH_AFTER ago; a caller that had it marked
    within that time passes False and saves the statement.
    """
    thread_id, namespace, checkpoint_id = key
    check_id(thread_id, "thread_id")
    on_server = uow.dialect.name == "postgresql"
    if on_server:
        _join_on_server(uow, thread_id, {}, lock=True)
    if strict:
        newest = _newest(uow, thread_id, namespace)
        if newest != parent_id:
            raise VersionConflict(
                f"thread {thread_id!r} (namespace {namespace!r}) moved on: its newest checkpoint "
                f"is {newest!r}, this one was made from {parent_id!r}",
                None,
                None,
            )
    now = utcnow()
    row = {
        "session_id": thread_id,
        "checkpoint_ns": namespace,
        "checkpoint_id": checkpoint_id,
        "parent_checkpoint_id": parent_id,
        "type": typed[0],
        "checkpoint": typed[1],
        "metadata": metadata,
        "created_at": now,
    }
    statement = _upsert_checkpoint(uow.dialect.name)
    if on_server:
        uow.execute(statement, row)
    else:
        sessions.insert_joining(uow, statement, row, thread_id, kind=KIND)
        if refresh:
            sessions.refresh(uow, thread_id, now)


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
    statement = _insert_writes(uow.dialect.name, replace=replace)
    # LangGraph may send a step's writes before that step's checkpoint, even its first.
    if uow.dialect.name == "postgresql":
        _join_on_server(uow, thread_id, {}, lock=False)
        uow.execute(statement, rows)
    else:
        sessions.insert_joining(uow, statement, rows, thread_id, kind=KIND)


def _by_thread(keys: Sequence[Key]) -> Iterator[tuple[str, str, list[str]]]:
    """The checkpoint ids of the keys by thread and namespace, at most _CHUNK at a time."""
    for (thread_id, namespace), group in groupby(sorted(set(keys)), key=lambda k: k[:2]):
        ids = [key[2] for key in group]
        for start in range(0, len(ids), _CHUNK):
            yield thread_id, namespace, ids[start : start + _CHUNK]


class Write(NamedTuple):
    """A pending write, its value as the saver's serializer made it."""

    task_id: str
    idx: int
    channel: str
    type: str | None
    value: bytes | None
    task_path: str


def _writes_of(uow: UnitOfWork, keys: Sequence[Key]) -> dict[Key, list[Write]]:
    """The stored writes of each checkpoint, unordered: one keyed query per thread and
    namespace (a row-value IN over several keys is a full scan on SQLite)."""
    found: dict[Key, list[Write]] = {key: [] for key in keys}
    for thread_id, namespace, ids in _by_thread(keys):
        params = {"sid": thread_id, "ns": namespace, "ids": ids}
        for row in uow.execute(q.WRITES_OF, params):
            found[(row.session_id, row.checkpoint_ns, row.checkpoint_id)].append(
                Write(row.task_id, row.idx, row.channel, row.type, row.value, row.task_path)
            )
    return found


def get(uow: UnitOfWork, key: tuple[str, str, str | None]) -> tuple[Any, list[Write]] | None:
    """A checkpoint row (the newest of the namespace without an id) and its writes."""
    thread_id, namespace, checkpoint_id = key
    if checkpoint_id is None:
        rows = uow.execute(q.NEWEST_WITH_WRITES, {"sid": thread_id, "ns": namespace}).all()
    else:
        params = {"sid": thread_id, "ns": namespace, "cid": checkpoint_id}
        rows = uow.execute(q.WITH_WRITES, params).all()
    if not rows:
        return None
    writes = [
        Write(
            r.write_task_id,
            r.write_idx,
            r.write_channel,
            r.write_type,
            r.write_value,
            r.write_task_path,
        )
        for r in rows
        if r.write_task_id is not None
    ]
    return rows[0], writes


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
    wanted = dict(metadata or {})
    narrowing = [
        (name, value)
        for name, value in wanted.items()
        if isinstance(value, str) and name.isidentifier()
    ]
    params: dict[str, Any] = {
        "sid": thread_id,
        "ns": namespace,
        "cid": checkpoint_id,
        "before": before,
        "limit": limit,
    }
    params.update((f"m{index}", value) for index, (_, value) in enumerate(narrowing))
    statement = q.listing(
        thread=thread_id is not None,
        namespace=namespace is not None,
        checkpoint=checkpoint_id is not None,
        before=before is not None,
        limit=limit is not None and not wanted,
        metadata=tuple(name for name, _ in narrowing),
    )
    rows: Iterator[Any] = (
        row for row in uow.execute(statement, params) if _matches(row.metadata, wanted)
    )
    chosen = list(rows if limit is None else islice(rows, limit))
    writes = _writes_of(
        uow, [(row.session_id, row.checkpoint_ns, row.checkpoint_id) for row in chosen]
    )
    return [(row, writes[(row.session_id, row.checkpoint_ns, row.checkpoint_id)]) for row in chosen]


def _delete_checkpoints(uow: UnitOfWork, doomed: Sequence[Key]) -> None:
    """Delete these checkpoints and their writes, by key per thread and namespace (a
    row-value IN is a full scan on SQLite)."""
    for thread_id, namespace, ids in _by_thread(doomed):
        params = {"sid": thread_id, "ns": namespace, "ids": ids}
        uow.execute(q.DELETE_WRITES_OF, params)
        uow.execute(q.DELETE_CHECKPOINTS_OF, params)


def _delete_threads(uow: UnitOfWork, thread_ids: Sequence[str]) -> None:
    """Delete every checkpoint and write of these threads, their sessions kept."""
    for statement in q.DELETE_THREADS:
        uow.execute(statement, {"sids": list(thread_ids)})


def delete_thread(uow: UnitOfWork, thread_id: str) -> None:
    """Forget a thread: its session goes (by cascade, all of it) if the saver made it;
    a session of another kind only loses its checkpoints and writes."""
    kind = uow.scalar(q.SESSION_KIND, {"sid": thread_id})
    if kind == KIND:
        sessions.delete(uow, thread_id)
    elif kind is not None:
        _delete_threads(uow, [thread_id])


def delete_for_runs(uow: UnitOfWork, run_ids: Sequence[str]) -> None:
    """Delete the checkpoints whose metadata names one of these runs, with their writes."""
    for start in range(0, len(run_ids), _CHUNK):
        runs = list(run_ids[start : start + _CHUNK])
        doomed = [(r[0], r[1], r[2]) for r in uow.execute(q.KEYS_OF_RUNS, {"runs": runs})]
        _delete_checkpoints(uow, doomed)


def copy_thread(uow: UnitOfWork, source: str, target: str) -> None:
    """Copy every checkpoint and write of `source` to `target` (created if new); checkpoints
    `target` already holds stay as they are."""
    has_any = uow.scalar(q.HAS_ANY, {"sid": source})
    if has_any is None:
        return
    check_id(target, "target_thread_id")
    origin = {"copied_from": source}
    if uow.dialect.name == "postgresql":
        _join_on_server(uow, target, origin, lock=True)
    else:
        try:
            sessions.touch(uow, target, utcnow())
        except SessionNotFound:  # SQLite: nobody else writes until this transaction ends
            sessions.create_bare(uow, target, KIND, origin)
    for statement in _copy(uow.dialect.name):
        uow.execute(statement, {"source": source, "target": target})


def prune(uow: UnitOfWork, thread_ids: Sequence[str], *, keep_latest: bool) -> None:
    """Delete the threads' checkpoints and writes but, with `keep_latest`, each namespace's
    newest checkpoint and its writes."""
    for start in range(0, len(thread_ids), _CHUNK):
        chunk = list(thread_ids[start : start + _CHUNK])
        if not keep_latest:
            _delete_threads(uow, chunk)
            continue
        for statement in q.PRUNE:
            uow.execute(statement, {"sids": chunk})
