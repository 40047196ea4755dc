"""The UnitOfWork services run statements on: SQLAlchemy, with a direct path for hot statements.

SQLAlchemy spends about 35 µs per statement in its execution context and event dispatch,
five times what SQLite itself needs for a keyed SELECT. Statements marked with
`prepared()` (the prebuilt ones of `queries/`) are therefore compiled once and sent straight
to the driver's cursor on SQLite, their values still converted by SQLAlchemy's own bind and
result processors (UTC timestamps, exact money, JSON). Everything else goes through the
SQLAlchemy Connection. Both paths share that Connection's transaction, so BEGIN IMMEDIATE,
savepoints, retries and error translation are the same for either. A unit of work the
caller marks `direct` runs with no Connection at all, on a driver connection of its own
(`db.Database`); a statement or ORM session only SQLAlchemy can serve sends it back to
run on SQLAlchemy (NeedsConnection).

On PostgreSQL, and under aiosqlite, every statement takes the SQLAlchemy path: the round
trip to the server or to aiosqlite's thread dominates there, and typed result processing
is SQLAlchemy's to get right. The SQLAlchemy internals this needs are in sa_internals.py.
"""

from __future__ import annotations

import keyword
import re
from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import UpdateBase

from statekeeper import sa_internals

__all__ = [
    "DriverErrors",
    "NeedsConnection",
    "PlanCache",
    "Reconnect",
    "Result",
    "UnitOfWork",
    "prepared",
]

PREPARED_OPTION = "statekeeper_prepared"
_NAMED_BIND = re.compile(r"%\((\w+)\)s|__\[POSTCOMPILE_(\w+)\]")
"""A named placeholder, or an IN list SQLAlchemy expands per execution."""
MAX_PLANS = 512
"""Statements one engine caches plans for; queries/ prepares a few dozen, built once."""

S = TypeVar("S", bound=sa.Executable)

Processor = Callable[[Any], Any]


def prepared(statement: S) -> S:
    """Mark a statement that is built once and run often for the direct driver path."""
    return statement.execution_options(**{PREPARED_OPTION: True})


class Result(Protocol):
    """What services read from an executed statement, on either path."""

    def first(self) -> Any: ...

    def one(self) -> Any: ...

    def all(self) -> Sequence[Any]: ...

    def scalar(self) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...

    @property
    def rowcount(self) -> int: ...


class _Rows:
    """The fetched, converted rows of a statement run on the direct path."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def one(self) -> Any:
        if len(self._rows) != 1:
            raise sa.exc.NoResultFound(f"expected one row, got {len(self._rows)}")
        return self._rows[0]

    def all(self) -> Sequence[Any]:
        return self._rows

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)


@dataclass(slots=True)
class _Plan:
    """One statement compiled for the direct path: its SQL, parameter order and converters.

    `positional` plans (SQLite's qmark style) take a tuple; named ones (psycopg's pyformat)
    a mapping, which psycopg reads by name.
    """

    sql: str
    binds: tuple[tuple[str, Processor | None, bool], ...]  # name, converter, expanding
    defaults: Mapping[str, Any]  # values the statement itself carries
    row: type[tuple[Any, ...]] | None
    columns: tuple[sa.types.TypeEngine[Any], ...]
    expands: bool  # an IN list makes the SQL depend on the parameters
    positional: bool
    results: tuple[tuple[int, Processor], ...] | None = None
    """Converters by column: known once the driver has described the columns."""
    expanded_sql: dict[tuple[int, ...], str] = field(default_factory=dict)

    def parameters(self, params: Mapping[str, Any]) -> tuple[str, Any]:
        """The SQL and values for one execution: a tuple, or by name (an IN list's items
        named name_1, name_2... as SQLAlchemy names them)."""
        defaults = self.defaults
        named = not self.positional
        keys: list[str] = []
        values: list[Any] = []
        sizes: list[int] = []
        for name, convert, expanding in self.binds:
            value = params[name] if name in params else defaults[name]
            if expanding:
                items = [convert(v) if convert else v for v in value]
                sizes.append(len(items))
                values.extend(items)
                if named:
                    keys.extend(f"{name}_{i}" for i in range(1, len(items) + 1))
            else:
                values.append(value if convert is None else convert(value))
                if named:
                    keys.append(name)
        sql = self._expand(tuple(sizes)) if self.expands else self.sql
        return sql, dict(zip(keys, values, strict=True)) if named else tuple(values)

    def _expand(self, sizes: tuple[int, ...]) -> str:
        """The SQL with each expanding IN list given its number of placeholders."""
        sql = self.expanded_sql.get(sizes)
        if sql is None:
            sql = self.sql
            expanding = (name for name, _, is_expanding in self.binds if is_expanding)
            for name, size in zip(expanding, sizes, strict=True):
                if self.positional:
                    marks = ", ".join("?" * size)
                else:
                    marks = ", ".join(f"%({name}_{i})s" for i in range(1, size + 1))
                sql = sql.replace(f"__[POSTCOMPILE_{name}]", marks, 1)
            self.expanded_sql[sizes] = sql
        return sql

    def convert(self, raw: list[Any], dialect: Dialect, description: Any) -> list[Any]:
        """Driver rows as named rows of Python values, like SQLAlchemy's Row."""
        make = self.row._make  # type: ignore[union-attr]
        results = self.results
        if results is None:
            # PostgreSQL's converters depend on the column's type as the server sends it.
            codes = [column[1] for column in description]
            processors = (
                _result_processor(type_, dialect, code)
                for type_, code in zip(self.columns, codes, strict=True)
            )
            results = self.results = tuple((i, p) for i, p in enumerate(processors) if p)
        if not results:
            return [make(values) for values in raw]
        rows = []
        for values in raw:
            converted = list(values)
            for index, process in results:
                converted[index] = process(converted[index])
            rows.append(make(converted))
        return rows


def _field_name(key: str) -> bool:
    """Whether a result column can be a named row's attribute."""
    return key.isidentifier() and not keyword.iskeyword(key) and not key.startswith("_")


def _named_row(keys: list[str]) -> type[tuple[Any, ...]]:
    """A row class with attribute access by column name, as SQLAlchemy's Row has."""
    make: Callable[[str, list[str]], type[tuple[Any, ...]]] = namedtuple
    return make("Row", keys)


class PlanCache:
    """Compiled plans of one engine, by statement identity (and written columns for DML)."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        # aiosqlite's cursor is a thread hop per call: the direct path would gain nothing there.
        self.direct = dialect.driver in ("pysqlite", "psycopg")
        self._plans: dict[int, tuple[sa.Executable, dict[frozenset[str], _Plan | None]]] = {}

    def plan(self, statement: sa.Executable, params: Mapping[str, Any]) -> _Plan | None:
        """The plan for this statement and parameter names, or None for the SQLAlchemy path."""
        entry = self._plans.get(id(statement))
        if entry is None:
            if len(self._plans) >= MAX_PLANS:
                return None  # a statement built per call was marked prepared: never cache it
            entry = self._plans[id(statement)] = (statement, {})
        # What an INSERT or UPDATE writes depends on the parameter names given.
        keys = frozenset(params) if isinstance(statement, UpdateBase) else frozenset()
        by_keys = entry[1]
        if keys not in by_keys:
            by_keys[keys] = self._compile(statement, keys)
        return by_keys[keys]

    def _compile(self, statement: sa.Executable, keys: frozenset[str]) -> _Plan | None:
        compiled = statement.compile(  # type: ignore[attr-defined]
            dialect=self.dialect, column_keys=sorted(keys)
        )
        if not isinstance(compiled, SQLCompiler):
            return None
        positional = self.dialect.positional
        names = (
            sa_internals.positional_names(compiled)
            if positional
            else list(dict.fromkeys(a or b for a, b in _NAMED_BIND.findall(compiled.string)))
        )
        if names is None or sa_internals.uses_python_side_values(compiled):
            return None  # Python-side defaults or literal rendering: SQLAlchemy's job
        binds = compiled.binds
        columns = sa_internals.result_columns(compiled)
        keys_out = [name for name, _type in columns]
        row: type[tuple[Any, ...]] | None = None
        if keys_out:
            if len(set(keys_out)) != len(keys_out) or not all(map(_field_name, keys_out)):
                return None
            row = _named_row(keys_out)
        types = tuple(type_ for _name, type_ in columns)
        results = None
        if positional:  # SQLite's converters do not depend on the column as stored
            processors = (_result_processor(type_, self.dialect, None) for type_ in types)
            results = tuple((i, p) for i, p in enumerate(processors) if p is not None)
        return _Plan(
            sql=compiled.string,
            binds=tuple(
                (
                    name,
                    binds[name].type.dialect_impl(self.dialect).bind_processor(self.dialect),
                    binds[name].expanding,
                )
                for name in names
            ),
            defaults={
                name: bind.effective_value for name, bind in binds.items() if not bind.required
            },
            row=row,
            columns=types,
            expands=any(binds[name].expanding for name in names),
            positional=positional,
            results=results,
        )


def _result_processor(
    type_: sa.types.TypeEngine[Any], dialect: Dialect, coltype: Any
) -> Processor | None:
    """SQLAlchemy's own conversion of a stored value of this type, through its public API."""
    return type_.dialect_impl(dialect).result_processor(dialect, coltype)


def _uniform_rows(params: Any) -> bool:
    """Many parameter sets with the same names: what one executemany can send."""
    if not isinstance(params, list) or not params or not isinstance(params[0], dict):
        return False
    names = params[0].keys()
    return all(isinstance(row, dict) and row.keys() == names for row in params)


class Reconnect(Exception):
    """A connection was lost before its unit of work committed: run it again."""


class NeedsConnection(Exception):
    """A statement only SQLAlchemy can run reached a driver-only unit of work."""


class DriverErrors:
    """Raise driver errors as SQLAlchemy's, so retries and translation treat both alike.

    A class rather than a generator function: a hot call enters three of these, and a
    generator-based context manager costs about 1 µs each to enter and leave.
    """

    __slots__ = ("_dialect", "_params", "_statement")

    def __init__(self, dialect: Dialect, statement: str, params: Any = None) -> None:
        self._dialect = dialect
        self._statement = statement
        self._params = params

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, traceback: object) -> None:
        if isinstance(exc, self._dialect.loaded_dbapi.Error):
            raise _wrapped(self._dialect, exc, self._statement, self._params) from exc


def _wrapped(
    dialect: Dialect, exc: Exception, statement: str, params: Any
) -> sa.exc.StatementError:
    """A driver error as the SQLAlchemy exception it would have been on that path."""
    return sa.exc.DBAPIError.instance(
        statement, params, exc, dialect.loaded_dbapi.Error, dialect=dialect
    )


class UnitOfWork:
    """One transaction as services see it: `execute` statements, or use `session`.

    Services take it and never commit: the unit of work is committed by `db`, so calls
    compose into `transaction()` blocks. With a `connection`, statements the direct path
    cannot serve run on it; without one (a driver-only unit of work) they, and asking for
    the ORM session, raise NeedsConnection, and the unit of work reruns on SQLAlchemy.
    """

    __slots__ = (
        "_driver",
        "_explain",
        "_pipeline",
        "_plans",
        "_session",
        "changed",
        "connection",
        "dialect",
        "in_block",
    )

    def __init__(
        self,
        dialect: Dialect,
        plans: PlanCache,
        *,
        connection: Connection | None = None,
        driver: Any = None,
        pipeline: Any = None,
        session: Session | None = None,
        changed: set[str] | None = None,
        in_block: bool = False,
    ) -> None:
        self.connection = connection
        self._pipeline = pipeline
        self._explain: list[Callable[[sa.exc.IntegrityError], None]] = []
        self.dialect = dialect
        self._plans = plans
        self._driver = driver
        self._session = session
        self.changed = set() if changed is None else changed
        """Workspaces whose sessions this unit of work changed (for the legacy mirror)."""
        self.in_block = in_block
        """A call inside a `transaction()` block, which may write back what it reads."""

    @property
    def session(self) -> Session:
        """The ORM session of this transaction, made on first use (hot calls never pay)."""
        if self._session is None:
            if self.connection is None:
                raise NeedsConnection
            self._session = Session(bind=self.connection, expire_on_commit=False)
        return self._session

    def explain(self, handler: Callable[[sa.exc.IntegrityError], None]) -> None:
        """Have `handler` name a constraint failure of this unit of work (it raises a
        StateError, or returns to leave it to the general translation).

        A pipelined write learns of a failed statement only when it syncs, often at its
        COMMIT, so a service cannot catch the error around the statement itself.
        """
        self._explain.append(handler)

    def reject(self, exc: sa.exc.IntegrityError) -> None:
        """Give a constraint failure to the handlers registered with `explain`."""
        for handler in self._explain:
            handler(exc)

    def sync(self) -> None:
        """Wait for every statement sent so far (pipelined ones raise their errors here)."""
        if self._pipeline is not None:
            with DriverErrors(self.dialect, "SYNC"):
                self._pipeline.sync()

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Undo the block's statements alone when it raises, its constraint failures named
        by the `explain` handlers; the transaction goes on."""
        if self._pipeline is not None:
            raise NeedsConnection  # a pipelined write learns of failures too late to undo
        try:
            if self.connection is not None:
                with self.connection.begin_nested():
                    yield
            else:
                yield  # SQLite's driver path: BEGIN IMMEDIATE keeps every other writer out
        except sa.exc.IntegrityError as exc:
            self.reject(exc)
            raise

    def changed_workspace(self, workspace_id: str | None) -> None:
        """Note that a session of this workspace changed (None: a session without one)."""
        if workspace_id is not None:
            self.changed.add(workspace_id)

    def flush(self) -> None:
        """Send what the ORM session holds, before the transaction commits."""
        if self._session is not None:
            self._session.flush()

    def close(self) -> None:
        """Forget the ORM session made for this unit of work (a block's stays open)."""
        if self._session is not None:
            self._session.close()

    def execute(self, statement: sa.Executable, params: Any = None) -> Result:
        """Run one statement with one set of parameters, or a write with many."""
        if self._plans.direct and statement.get_execution_options().get(PREPARED_OPTION):
            if params is None or isinstance(params, dict):
                plan = self._plans.plan(statement, params or {})
                if plan is not None:
                    return self._direct(plan, params or {})
            elif _uniform_rows(params) and isinstance(statement, UpdateBase):
                plan = self._plans.plan(statement, params[0])
                if plan is not None and plan.row is None and not plan.expands:
                    return self._direct_many(plan, params)
        if self.connection is None:
            raise NeedsConnection
        return self.connection.execute(statement, params)

    def scalar(self, statement: sa.Executable, params: Any = None) -> Any:
        """The first column of the first row, or None."""
        return self.execute(statement, params).scalar()

    def _cursor(self) -> Any:
        if self._driver is None:
            self._driver = self.connection.connection.dbapi_connection  # type: ignore[union-attr]
        return self._driver.cursor()

    def _direct_many(self, plan: _Plan, rows: list[dict[str, Any]]) -> Result:
        """A write with many parameter sets: one executemany, as SQLAlchemy would send it."""
        sql = plan.sql
        values = [plan.parameters(row)[1] for row in rows]
        cursor = self._cursor()
        try:
            cursor.executemany(sql, values)
            if self._pipeline is not None:
                return _Pending(self, cursor)
            result = _Rows([], cursor.rowcount)
        except self.dialect.loaded_dbapi.Error as exc:
            raise _wrapped(self.dialect, exc, sql, values) from exc
        cursor.close()
        return result

    def _direct(self, plan: _Plan, params: Mapping[str, Any]) -> Result:
        sql, values = plan.parameters(params)
        cursor = self._cursor()
        try:
            cursor.execute(sql, values)
            if self._pipeline is not None:
                return _Pending(self, cursor, plan)  # its outcome arrives with a later sync
            if plan.row is None:
                result = _Rows([], cursor.rowcount)
            else:
                raw = cursor.fetchall()
                rows = plan.convert(raw, self.dialect, cursor.description)
                result = _Rows(rows, cursor.rowcount)
        except self.dialect.loaded_dbapi.Error as exc:
            raise _wrapped(self.dialect, exc, sql, values) from exc
        cursor.close()
        return result


class _Pending:
    """A pipelined statement: its rows and row count arrive with the next sync, which the
    first look at them makes (so statements nobody reads travel with the COMMIT)."""

    __slots__ = ("_cursor", "_plan", "_rows", "_uow")

    def __init__(self, uow: UnitOfWork, cursor: Any, plan: _Plan | None = None) -> None:
        self._uow = uow
        self._cursor = cursor
        self._plan = plan
        self._rows: _Rows | None = None

    def _fetched(self) -> _Rows:
        if self._rows is None:
            plan, cursor = self._plan, self._cursor
            if plan is None or plan.row is None:
                self._uow.sync()
                self._rows = _Rows([], cursor.rowcount)
            else:
                uow = self._uow
                with DriverErrors(uow.dialect, plan.sql):
                    raw = cursor.fetchall()
                rows = plan.convert(raw, uow.dialect, cursor.description)
                self._rows = _Rows(rows, cursor.rowcount)
        return self._rows

    @property
    def rowcount(self) -> int:
        return self._fetched().rowcount

    def first(self) -> Any:
        return self._fetched().first()

    def one(self) -> Any:
        return self._fetched().one()

    def all(self) -> Sequence[Any]:
        return self._fetched().all()

    def scalar(self) -> Any:
        return self._fetched().scalar()

    def __iter__(self) -> Iterator[Any]:
        return iter(self._fetched())
