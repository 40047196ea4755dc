"""Moving data out and in: one session as a JSON document, or a whole store row by row.

Rows are (de)serialized by column type, so every table of a session travels the same way
and a new column is carried without code here changing.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.orm import selectinload

from statekeeper.enums import SessionStatus
from statekeeper.errors import ImportFailed, InvalidInput, SessionNotFound
from statekeeper.executor import UnitOfWork
from statekeeper.models import Base, SessionRow
from statekeeper.models.base import UTCDateTime
from statekeeper.queries import sessions as sessions_q
from statekeeper.schemas.base import describe
from statekeeper.services import events, phases, snapshots, worktree
from statekeeper.services import sessions as sessions_service
from statekeeper.values import as_utc, check_id, check_non_negative_int, money, utcnow

__all__ = ["FORMAT", "FORMAT_VERSION", "copy_rows", "export_session", "import_session"]

FORMAT = "statekeeper.session"
FORMAT_VERSION = 1
# Tables that belong to a session, parents first; surrogate keys are reassigned on import.
# (table, surrogate key reassigned on import, order of rows in a document)
_SESSION_TABLES: tuple[tuple[str, str | None, str | None], ...] = (
    ("sessions", "pk", None),
    ("phase_completions", "id", "id"),
    ("workflow_context", None, None),
    ("instances", "id", "instance_number"),
    ("chat_messages", "seq", "seq"),
    ("events", "seq", "seq"),
    ("snapshots", "pk", "pk"),
)
_BATCH = 1_000


def _table(name: str) -> sa.Table:
    return Base.metadata.tables[name]


def _owner(table: sa.Table) -> sa.Column[Any]:
    """The column naming the session a row belongs to."""
    return table.c.id if table.name == "sessions" else table.c.session_id


def _encode(column: sa.Column[Any], value: Any) -> Any:
    if value is None:
        return None
    if isinstance(column.type, UTCDateTime):
        return value.isoformat()
    if isinstance(column.type, sa.LargeBinary):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, Decimal):
        return str(value)
    return value


def _decode(column: sa.Column[Any], value: Any) -> Any:
    if value is None:
        return None
    if isinstance(column.type, UTCDateTime):
        return datetime.fromisoformat(value)
    if isinstance(column.type, sa.LargeBinary):
        return base64.b64decode(value, validate=True)
    if isinstance(column.type, sa.Numeric):
        return Decimal(value)
    return value


def _dump(rows: Iterable[Base | None]) -> list[dict[str, Any]]:
    """Mapped objects as rows of their table: column name to JSON-ready value."""
    dumped = []
    for row in rows:
        if row is None:
            continue
        mapper = sa.inspect(type(row))
        table = _table(mapper.local_table.description)
        dumped.append(
            {
                column.name: _encode(column, getattr(row, _attribute(mapper, column)))
                for column in table.columns
            }
        )
    return dumped


def _attribute(mapper: sa.orm.Mapper[Any], column: sa.Column[Any]) -> str:
    """The attribute a column is mapped to (`metadata` is `metadata_`)."""
    return mapper.get_property_by_column(column).key


_BELONGINGS = [
    selectinload(relationship)
    for relationship in (
        SessionRow.workspace,
        SessionRow.phases,
        SessionRow.context,
        SessionRow.instances,
        SessionRow.chat_messages,
        SessionRow.events,
        SessionRow.snapshots,
    )
]
"""Everything of a session, one query a relationship (their order is the models')."""


def export_session(uow: UnitOfWork, session_id: str) -> dict[str, Any]:
    """A JSON-ready document of the session and every row that belongs to it.

    Loaded through the ORM session of the unit of work, following the models'
    relationships, so a new child table is exported by adding its relationship here.
    """
    session = uow.session.scalar(
        sa.select(SessionRow).where(SessionRow.id == session_id).options(*_BELONGINGS)
    )
    if session is None:
        raise SessionNotFound(session_id)
    tables = {
        "workspaces": _dump([session.workspace]),
        "sessions": _dump([session]),
        "phase_completions": _dump(session.phases),
        "workflow_context": _dump([session.context]),
        "instances": _dump(session.instances),
        "chat_messages": _dump(session.chat_messages),
        "events": _dump(session.events),
        "snapshots": _dump(session.snapshots),
    }
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "exported_at": utcnow().isoformat(),
        "tables": tables,
    }


def import_session(uow: UnitOfWork, document: Any) -> str:
    """Insert an exported session; the whole document goes in, or nothing does."""
    tables = _check_document(document)
    sessions = tables.get("sessions") or []
    if len(sessions) != 1 or not isinstance(sessions[0], dict):
        raise ImportFailed("the document must hold exactly one session")
    session_id = sessions[0].get("id")
    if not isinstance(session_id, str):
        raise ImportFailed("the session has no string id")
    if uow.execute(sessions_q.BY_ID, {"sid": session_id}).first() is not None:
        raise ImportFailed(f"a session {session_id!r} already exists")
    for row in tables.get("workspaces") or []:
        values = _row_values(_table("workspaces"), row, surrogate=None)
        if not isinstance(values.get("id"), str):
            raise ImportFailed("a workspaces row has no string id")
        workspaces = _table("workspaces")
        known = uow.execute(sa.select(workspaces.c.id).where(workspaces.c.id == values.get("id")))
        if known.first() is None:
            uow.execute(sa.insert(workspaces), values)
    for name, surrogate, _order in _SESSION_TABLES:
        table = _table(name)
        rows = tables.get(name) or []
        if not isinstance(rows, list):
            raise ImportFailed(f"table {name!r} must be a list of rows")
        values_list = [_row_values(table, row, surrogate=surrogate) for row in rows]
        owner_key = _owner(table).name
        for values in values_list:
            if values.get(owner_key) != session_id:
                raise ImportFailed(
                    f"a {name} row belongs to another session: {values.get(owner_key)!r}"
                )
        if values_list:
            uow.execute(sa.insert(table), values_list)
    _check_imported(uow, session_id)
    return session_id


def _check_imported(uow: UnitOfWork, session_id: str) -> None:
    """Read the inserted session back as the API does and check the invariants the services
    keep; raise ImportFailed (and the import rolls back) if it is not a session they
    could have written. Rows go in by column type only: a document edited by hand may
    hold values no DTO accepts, or totals and stamps that disagree."""
    try:
        session = sessions_service.get(uow, session_id)
        done = phases.completed_phases(uow, session_id)
        context = phases.load_context(uow, session_id)
        worktree.instances(uow, session_id)
        worktree.chat_history(uow, session_id, None, None)
        events.page(uow, "session", session_id, limit=None, after=None)
        for summary in snapshots.listing(uow, "", session_id, None):
            snapshot = snapshots.get(uow, "", summary.id)
            assert snapshot is not None
            _check_snapshot_payload(snapshot.id, snapshot.payload)
    except ValidationError as exc:
        field, message = describe(exc)
        raise ImportFailed(f"a value no session can hold: {field}: {message}") from None
    assert session is not None
    if context is not None and not isinstance(context.data, dict):
        raise ImportFailed("a value no session can hold: workflow_context.data is not an object")
    totals = (
        sum((phase.cost_usd for phase in done), Decimal(0)),
        sum(phase.tokens_in for phase in done),
        sum(phase.tokens_out for phase in done),
    )
    if totals != (session.cost_usd, session.tokens_in, session.tokens_out):
        raise ImportFailed("the session's totals differ from the sums over its phases")
    terminal = session.status in (SessionStatus.COMPLETED, SessionStatus.FAILED)
    if terminal != (session.completed_at is not None):
        raise ImportFailed(f"completed_at disagrees with status {session.status.value!r}")


def _check_snapshot_payload(snapshot_id: str, payload: Any) -> None:
    """A session snapshot's payload as restore_snapshot reads it, totals included."""
    try:
        if payload["context"] is not None and not isinstance(payload["context"], dict):
            raise TypeError("context is not an object")
        cost, tokens_in, tokens_out = Decimal(0), 0, 0
        for phase in payload["phases"]:
            check_id(phase["phase_id"], "phase_id")
            as_utc(datetime.fromisoformat(phase["completed_at"]), "completed_at")
            check_non_negative_int(phase["duration_ms"], "duration_ms")
            cost += money(phase["cost_usd"])
            tokens_in += check_non_negative_int(phase["tokens_in"], "tokens_in")
            tokens_out += check_non_negative_int(phase["tokens_out"], "tokens_out")
        totals = (money(payload["cost_usd"]), payload["tokens_in"], payload["tokens_out"])
    except (KeyError, TypeError, ValueError, ArithmeticError, InvalidInput) as exc:
        raise ImportFailed(f"snapshot {snapshot_id!r} cannot be restored: {exc!r}") from None
    if totals != (cost, tokens_in, tokens_out):
        raise ImportFailed(f"snapshot {snapshot_id!r}: totals differ from its phases")


def _check_document(document: Any) -> Mapping[str, Any]:
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ImportFailed(f"not a {FORMAT} document")
    if document.get("version") != FORMAT_VERSION:
        raise ImportFailed(f"unsupported document version {document.get('version')!r}")
    tables = document.get("tables")
    if not isinstance(tables, dict):
        raise ImportFailed("the document has no tables")
    known = {"workspaces"} | {name for name, _, _ in _SESSION_TABLES}
    unknown = set(tables) - known
    if unknown:
        raise ImportFailed(f"unknown tables: {', '.join(sorted(unknown))}")
    for name, rows in tables.items():
        if not isinstance(rows, list | None):
            raise ImportFailed(f"table {name!r} must be a list of rows")
    return tables


def _row_values(table: sa.Table, row: Any, *, surrogate: str | None) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise ImportFailed(f"a {table.name} row is not an object")
    unknown = set(row) - set(table.columns.keys())
    if unknown:
        raise ImportFailed(f"{table.name} has unknown columns: {', '.join(sorted(unknown))}")
    values = {}
    for name, value in row.items():
        if name == surrogate:
            continue
        try:
            values[name] = _decode(table.c[name], value)
        except (ValueError, ArithmeticError, TypeError):
            raise ImportFailed(f"bad value in {table.name}.{name}: {value!r}") from None
    return values


def copy_rows(source: sa.Connection, target: sa.Connection) -> int:
    """Copy every statekeeper row from one store to another, keys kept; returns the count."""
    copied = 0
    for table in Base.metadata.sorted_tables:
        if table.name == "schema_migrations":
            continue
        result = source.execution_options(yield_per=_BATCH).execute(
            sa.select(table).order_by(*table.primary_key.columns)
        )
        for batch in result.partitions():
            target.execute(table.insert(), [dict(row._mapping) for row in batch])
            copied += len(batch)
    return copied
