"""Keeping a store healthy: vacuum, optimize, checkpoint, integrity checks, copies.

These take connections and never commit or open engines: stores.py does that.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from statekeeper.dialects import MAINTENANCE, reset_sequence
from statekeeper.enums import SessionStatus
from statekeeper.errors import InvalidInput, SchemaOutOfDate
from statekeeper.migrate import current_revision, head_revision, revisions
from statekeeper.models import Base, MigrationRow, SessionRow
from statekeeper.queries import PHASES, SESSIONS
from statekeeper.queries import sessions as sessions_q
from statekeeper.services.transfer import copy_rows
from statekeeper.values import ZERO

__all__ = [
    "backup_problems",
    "clear_rows",
    "fill_empty_store",
    "integrity_problems",
    "occupied_tables",
    "require_head",
    "run_maintenance",
    "snapshot",
    "vacuum_into",
]

_BATCH = 1_000


def run_maintenance(connection: sa.Connection, operation: str) -> None:
    """Run `vacuum`, `optimize` or `checkpoint` on a fresh connection, outside any transaction."""
    connection = connection.execution_options(isolation_level="AUTOCOMMIT")
    for statement in MAINTENANCE[connection.dialect.name][operation]:
        connection.exec_driver_sql(statement).close()


def integrity_problems(connection: sa.Connection) -> list[str]:
    """Everything wrong with the store: engine-level checks, then statekeeper's invariants."""
    problems: list[str] = []
    if connection.dialect.name == "sqlite":
        result = [row[0] for row in connection.exec_driver_sql("PRAGMA integrity_check")]
        if result != ["ok"]:
            problems.extend(f"sqlite: {line}" for line in result)
        for row in connection.exec_driver_sql("PRAGMA foreign_key_check"):
            problems.append(f"foreign key: {row[0]} row {row[1]} references missing {row[2]}")
    revision = current_revision(connection)
    if revision != head_revision():
        problems.append(f"schema at revision {revision}, expected {head_revision()}")
    problems.extend(_totals_problems(connection))
    if revision == head_revision() and _tallies(connection) != _recount(connection):
        problems.append("session tallies differ from the sessions: statistics are off")
    terminal = SessionRow.status.in_([SessionStatus.COMPLETED.value, SessionStatus.FAILED.value])
    unstamped = connection.execute(
        sa.select(SessionRow.id).where(
            sa.or_(
                sa.and_(terminal, SessionRow.completed_at.is_(None)),
                sa.and_(~terminal, SessionRow.completed_at.is_not(None)),
            )
        )
    )
    problems.extend(f"session {sid}: completed_at disagrees with status" for (sid,) in unstamped)
    return problems


def _totals_problems(connection: sa.Connection) -> list[str]:
    """Sessions whose cost or tokens differ from the exact sums over their phases.

    Both tables are streamed in session order and merged here with Decimal arithmetic:
    a SQL SUM over SQLite's REAL storage could itself misround, and nothing is held in
    memory but one session's sums. Foreign keys guarantee every phase has its session.
    """
    streaming = connection.execution_options(yield_per=_BATCH)
    sessions = streaming.execute(
        sa.select(
            SESSIONS.c.id, SESSIONS.c.cost_usd, SESSIONS.c.tokens_in, SESSIONS.c.tokens_out
        ).order_by(SESSIONS.c.id)
    )
    phases = iter(
        streaming.execute(
            sa.select(
                PHASES.c.session_id, PHASES.c.cost_usd, PHASES.c.tokens_in, PHASES.c.tokens_out
            ).order_by(PHASES.c.session_id)
        )
    )
    problems = []
    phase = next(phases, None)
    for session in sessions:
        # Both streams follow the database's own order of ids, so equality is all the merge
        # needs (a Python `<` could disagree with a PostgreSQL collation).
        cost, tokens_in, tokens_out = ZERO, 0, 0
        while phase is not None and phase.session_id == session.id:
            cost += phase.cost_usd
            tokens_in += phase.tokens_in
            tokens_out += phase.tokens_out
            phase = next(phases, None)
        stored = (session.cost_usd, session.tokens_in, session.tokens_out)
        if (cost, tokens_in, tokens_out) != stored:
            problems.append(f"session {session.id}: totals differ from its phases")
    return problems


def _tallies(connection: sa.Connection) -> tuple[int, ...]:
    """What the triggers' tally says (revision 0008)."""
    return tuple(int(value) for value in connection.execute(sessions_q.TALLIES).one()[:-1])


def _recount(connection: sa.Connection) -> tuple[int, ...]:
    """The same sums counted from the sessions themselves, as the triggers count them."""
    done = SESSIONS.c.status == SessionStatus.COMPLETED.value
    failed = SESSIONS.c.status == SessionStatus.FAILED.value
    units = sa.cast(sa.func.round(SESSIONS.c.cost_usd * 100_000_000), sa.BigInteger)
    timed = sa.and_(done, SESSIONS.c.duration_ms.is_not(None))
    sums = (
        sa.literal(1),
        sa.case((done, 1), else_=0),
        sa.case((failed, 1), else_=0),
        sa.case((done, units), else_=0),
        sa.case((timed, 1), else_=0),
        sa.case((done, sa.func.coalesce(SESSIONS.c.duration_ms, 0)), else_=0),
    )
    row = connection.execute(sa.select(*(sa.func.coalesce(sa.func.sum(x), 0) for x in sums)))
    return tuple(int(value) for value in row.one())


def require_head(connection: sa.Connection, why: str) -> None:
    """Refuse a store below head for a row copy, leaving no transaction open for the copy's
    own snapshot."""
    at_head = current_revision(connection) == head_revision()
    connection.rollback()
    if not at_head:
        raise SchemaOutOfDate(f"{why}: run `statekeeper db upgrade`")


def vacuum_into(connection: sa.Connection, path: Path) -> None:
    """SQLite: write a compact, consistent copy of the database to an empty file."""
    connection = connection.execution_options(isolation_level="AUTOCOMMIT")
    connection.exec_driver_sql("VACUUM INTO ?", (str(path),))


def snapshot(connection: sa.Connection) -> sa.Connection:
    """The connection reading every table from one snapshot (PostgreSQL REPEATABLE READ)."""
    if connection.dialect.name != "postgresql":
        return connection  # SQLite: one read transaction is already one snapshot
    return connection.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)


def _user_tables() -> list[sa.Table]:
    """statekeeper's tables that hold data, parents first (the migration record aside)."""
    return [t for t in Base.metadata.sorted_tables if t is not MigrationRow.__table__]


def occupied_tables(connection: sa.Connection) -> list[str]:
    """The statekeeper tables present in the database that hold at least one row.

    Only tables that exist are asked, so this works at any revision, and on an empty database.
    """
    present = set(sa.inspect(connection).get_table_names())
    return [
        t.name
        for t in _user_tables()
        if t.name in present and connection.execute(sa.select(1).select_from(t).limit(1)).first()
    ]


def clear_rows(connection: sa.Connection) -> None:
    """Delete every statekeeper row (children first), in the caller's transaction."""
    for table in reversed(_user_tables()):
        connection.execute(table.delete())


def backup_problems(connection: sa.Connection) -> list[str]:
    """Why a SQLite file cannot be restored as a store: [] when it can (at any known revision)."""
    checked = [row[0] for row in connection.exec_driver_sql("PRAGMA integrity_check")]
    if checked != ["ok"]:
        return [f"sqlite integrity_check: {line}" for line in checked[:5]]
    dangling = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if dangling:
        return [f"{row[0]} row {row[1]} references a missing {row[2]} row" for row in dangling[:5]]
    revision = current_revision(connection)
    if revision is None:
        return ["it holds no statekeeper schema (no revision): it is not a statekeeper store"]
    if revision not in {info.revision for info in revisions()}:
        return [
            f"it is at revision {revision}, which this statekeeper does not know "
            f"(its newest is {head_revision()}): upgrade statekeeper to restore it"
        ]
    return []


def fill_empty_store(source: sa.Connection, target: sa.Connection) -> int:
    """Copy every row into a store at head that holds none; returns the row count.

    Refuses a target holding rows; never commits (the caller owns both transactions).
    """
    tables = _user_tables()
    occupied = [
        t.name for t in tables if target.execute(sa.select(1).select_from(t).limit(1)).first()
    ]
    if occupied:
        raise InvalidInput("target", f"already holds rows in {', '.join(occupied)}")
    copied = copy_rows(source, target)
    if target.dialect.name == "postgresql":
        # Keys were copied as they are: the sequences must continue after them.
        for table in tables:
            if table.autoincrement_column is not None:
                column = table.autoincrement_column.name
                target.exec_driver_sql(reset_sequence(table.name, column))
    return copied
