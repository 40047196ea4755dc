"""Schema migrations: the packaged Alembic chain, run under a lock so it runs once.

Used by StateManager (auto_migrate), the `statekeeper db` commands and `alembic/env.py`
alike, so all three reach the identical schema the identical way.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError

from statekeeper.config import WRITE_OPTION, driver_sql
from statekeeper.errors import MigrationError, SchemaOutOfDate, StateError, StorageError
from statekeeper.models import MigrationRow
from statekeeper.schemas import MigrationRecord, SchemaStatus
from statekeeper.translate import is_connect_failure, translate_error

__all__ = [
    "SCRIPT_LOCATION",
    "RevisionInfo",
    "applied_revisions",
    "create_missing_schema",
    "current_revision",
    "downgrade",
    "ensure_schema",
    "head_revision",
    "include_object",
    "migration_lock",
    "revisions",
    "status",
    "upgrade",
]

SCRIPT_LOCATION = Path(__file__).resolve().parent / "migrations"
# pg_advisory_xact_lock key: "statekeeper" folded into a signed 64-bit integer.
_PG_LOCK_KEY = int.from_bytes(b"stkeeper", "big") - 2**63


@dataclass(frozen=True)
class RevisionInfo:
    """One revision of the packaged chain."""

    revision: str
    down_revision: str | None
    description: str


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Leave the objects triggers maintain out of autogenerate: full-text search (revisions
    0002, 0005, 0007) and the session tallies (0008).

    They are dialect-specific (FTS5 tables and their shadow tables, GIN expression indexes,
    trigger-kept tables) and have no model; everything else must match the models exactly.
    """
    return not (name or "").startswith(("search_", "tally_"))


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """An Alembic Config for the packaged scripts, optionally bound to an open connection."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.attributes["connection"] = connection
    return config


@cache
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The newest revision this version of statekeeper knows."""
    head = _script().get_current_head()
    if head is None:
        raise MigrationError("the packaged migration chain is empty")
    return head


def revisions() -> list[RevisionInfo]:
    """Every revision of the chain, oldest first."""
    return [
        RevisionInfo(s.revision, _down(s.down_revision), s.doc or "")
        for s in reversed(list(_script().walk_revisions()))
    ]


def _down(value: str | Sequence[str] | None) -> str | None:
    return value if value is None or isinstance(value, str) else ",".join(value)


def current_revision(connection: sa.Connection) -> str | None:
    """The revision the database is at, or None for an empty database."""
    heads = MigrationContext.configure(connection).get_current_heads()
    if len(heads) > 1:
        raise MigrationError(f"database has several heads: {', '.join(heads)}")
    return heads[0] if heads else None


def status(connection: sa.Connection) -> SchemaStatus:
    """The database's revision, the chain's head, and whether they are the same."""
    revision = current_revision(connection)
    head = head_revision()
    return SchemaStatus(revision=revision, head=head, at_head=revision == head)


def applied_revisions(connection: sa.Connection) -> list[MigrationRecord]:
    """When each revision was applied, oldest first ([] before the first migration)."""
    if not sa.inspect(connection).has_table(MigrationRow.__tablename__):
        return []
    table = MigrationRow.__table__
    rows = connection.execute(sa.select(table).order_by(table.c.applied_at, table.c.revision))
    return [MigrationRecord.model_validate(row) for row in rows]


@contextmanager
def migration_lock(connection: sa.Connection) -> Iterator[sa.Connection]:
    """The connection inside a transaction that holds the migration lock, committed after.

    SQLite: BEGIN IMMEDIATE is the lock, and foreign keys are off for the duration (batch
    migrations drop and rebuild tables, which would cascade) and checked before commit.
    PostgreSQL: a transaction-scoped advisory lock; its DDL is transactional too.
    """
    sqlite = connection.dialect.name == "sqlite"
    if connection.in_transaction():
        connection.rollback()  # a schema check may have begun one; the lock needs its own
    if sqlite:
        # Must run outside a transaction, where SQLite ignores it; hence the DBAPI cursor.
        driver_sql(connection, "PRAGMA foreign_keys=OFF")
    try:
        connection.execution_options(**{WRITE_OPTION: True})
        with connection.begin():
            if sqlite:
                yield connection
                problems = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                if problems:
                    raise MigrationError(f"migration broke foreign keys: {problems[:5]}")
            else:
                connection.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY}
                )
                yield connection
    finally:
        connection.execution_options(**{WRITE_OPTION: False})
        if sqlite:
            driver_sql(connection, "PRAGMA foreign_keys=ON")


def _run(connection: sa.Connection, direction: str, target: str) -> None:
    try:
        with migration_lock(connection) as connection:
            if direction == "upgrade":
                if target == "head" and current_revision(connection) == head_revision():
                    return
                create_missing_schema(connection)
                command.upgrade(alembic_config(connection), target)
            else:
                command.downgrade(alembic_config(connection), target)
    except StateError:
        raise
    except sa.exc.SQLAlchemyError as exc:
        error = translate_error(exc, connection.engine.url)
        if is_connect_failure(exc):
            raise error from exc  # the store was never reached: nothing to migrate
        raise MigrationError(f"{direction} to {target} failed, nothing changed: {error}") from exc
    except CommandError as exc:
        raise MigrationError(f"{direction} to {target} failed: {exc}") from exc


def create_missing_schema(connection: sa.Connection) -> None:
    """PostgreSQL: create the schema the connection's search_path names first, if missing.

    Tables are created in the first schema of the search_path that exists; when none does
    (`schema=`, or search_path given in the URL), there is nowhere to create them.
    """
    if connection.dialect.name != "postgresql":
        return
    if connection.exec_driver_sql("SELECT current_schema()").scalar() is not None:
        return
    path = str(connection.exec_driver_sql("SHOW search_path").scalar())
    # An unquoted name is folded to lowercase, as PostgreSQL reads the setting.
    names = [n.strip() for n in path.split(",")]
    names = [n[1:-1] if n.startswith('"') else n.lower() for n in names if n]
    wanted = next((name for name in names if name != "$user"), None)
    if wanted is None:
        raise MigrationError(f"the search_path ({path}) names no schema to create tables in")
    quoted = connection.dialect.identifier_preparer.quote_identifier(wanted)
    create = f"CREATE SCHEMA IF NOT EXISTS {quoted}"
    try:
        with connection.begin_nested():
            connection.exec_driver_sql(create)
    except sa.exc.ProgrammingError as exc:
        user = connection.exec_driver_sql("SELECT current_user").scalar()
        raise StorageError(
            f"schema {wanted!r} does not exist and {user} may not create it "
            f"({translate_error(exc, connection.engine.url)}); create it first "
            f"(CREATE SCHEMA {wanted} AUTHORIZATION {user}) or choose another schema"
        ) from exc


def upgrade(connection: sa.Connection, target: str = "head") -> None:
    """Upgrade to `target` in one transaction; concurrent callers wait, then find it done."""
    _run(connection, "upgrade", target)


def downgrade(connection: sa.Connection, target: str) -> None:
    """Downgrade to `target` ("base" empties the database of statekeeper's tables)."""
    _run(connection, "downgrade", target)


def ensure_schema(connection: sa.Connection, *, auto_migrate: bool) -> None:
    """Bring the database to head, or refuse to use it and say how to fix it."""
    head = head_revision()
    try:
        current = current_revision(connection)
        connection.rollback()
    except sa.exc.SQLAlchemyError as exc:
        raise translate_error(exc, connection.engine.url) from exc
    if current == head:
        return
    known = {info.revision for info in revisions()}
    if current is not None and current not in known:
        raise SchemaOutOfDate(
            f"database is at revision {current}, which this statekeeper does not know "
            f"(its newest is {head}): upgrade statekeeper"
        )
    if not auto_migrate:
        raise SchemaOutOfDate(
            f"database is at revision {current or '<empty>'}, expected {head}: run "
            "`statekeeper db upgrade` or open with auto_migrate=True"
        )
    upgrade(connection, "head")
