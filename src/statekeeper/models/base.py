"""The declarative Base, its naming convention, and the column types shared by all tables."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Dialect, Integer, MetaData, Numeric, inspect
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from statekeeper.values import MONEY_PLACES, MONEY_PRECISION, ZERO

__all__ = [
    "Base",
    "BigIntPK",
    "JsonOrNull",
    "JsonValue",
    "Money",
    "UTCDateTime",
    "check_in",
    "new_id",
    "zero",
]

# Named constraints: SQLite batch migrations can only alter what has a name.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(AsyncAttrs, DeclarativeBase):
    """Root of every statekeeper model; its metadata is what Alembic compares against.

    AsyncAttrs lets an AsyncSession load a relationship with `await row.awaitable_attrs.x`.
    """

    metadata = MetaData(naming_convention=NAMING_CONVENTION)

    def __repr__(self) -> str:
        """The class and its identity, e.g. `SessionRow('3f2a...')`; never loads anything."""
        identity = inspect(self).identity
        keys = "pending" if identity is None else ", ".join(map(repr, identity))
        return f"{type(self).__name__}({keys})"


def new_id() -> str:
    """A new random UUID as text: the default id of sessions, messages and events."""
    return str(uuid.uuid4())


def zero() -> Decimal:
    """No money yet: the default of every cost column."""
    return ZERO


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC at the API on both engines.

    PostgreSQL stores timestamptz; SQLite stores naive UTC ISO text, which sorts correctly.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime reached the database layer")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        """On SQLite, write the UTC text in one C call, as SQLAlchemy's storage format spells
        it (`YYYY-MM-DD HH:MM:SS.ffffff`), instead of a %-format of seven fields."""
        general = super().bind_processor(dialect)
        if dialect.name != "sqlite" or general is None:
            return general

        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            if value.tzinfo is None:
                raise ValueError("naive datetime reached the database layer")
            return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")

        return process

    def result_processor(
        self, dialect: Dialect, coltype: Any
    ) -> Callable[[Any], datetime | None] | None:
        """On SQLite, parse the stored text as UTC in one C call (7x faster than a regex)."""
        general = super().result_processor(dialect, coltype)
        if dialect.name != "sqlite" or general is None:
            return general

        def process(value: Any) -> datetime | None:
            if value is None:
                return None
            try:
                return datetime.fromisoformat(value + "+00:00")
            except (TypeError, ValueError):
                pass  # not the naive text SQLAlchemy writes: written by another tool
            try:
                parsed = datetime.fromisoformat(value)
            except (TypeError, ValueError):
                return general(value)
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)

        return process


Money = Numeric(MONEY_PRECISION, MONEY_PLACES, asdecimal=True)
"""Exact USD amounts: NUMERIC(15, 8), read back as a Decimal with 8 places."""

JsonValue = JSON().with_variant(JSONB(), "postgresql")
"""Any JSON value; JSONB on PostgreSQL so notebooks can query into it."""

JsonOrNull = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
"""A JSON value, or SQL NULL for Python None: NULL where a compressed copy holds the value
(a JSON `null` is bound as the text "null" and stays one)."""

BigIntPK = BigInteger().with_variant(Integer(), "sqlite")
"""A 64-bit surrogate key; INTEGER on SQLite so it aliases the rowid and autoincrements."""


def check_in(column: str, values: tuple[str, ...]) -> str:
    """A CHECK expression restricting a column to fixed literals (ours, never user input)."""
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"
