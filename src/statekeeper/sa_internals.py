"""The only SQLAlchemy internals statekeeper reads, each behind one small function.

The direct driver path (executor.py) needs a compiled statement's result columns and
positional bind order, which SQLAlchemy has no public accessor for; the async manager's
PostgreSQL path (pipeline.py) awaits psycopg's coroutines from inside `run_sync` with
`await_`, as SQLAlchemy's own async adapters do. Everything private is
read here and nowhere else; tests/test_sa_internals.py checks each of these against
SQLAlchemy's own execution path, so a release that changes one fails loudly there, and
pyproject.toml caps SQLAlchemy below the next minor release.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import TypeEngine
from sqlalchemy.util.concurrency import await_

__all__ = [
    "PRIVATE_ATTRIBUTES",
    "await_",
    "positional_names",
    "result_columns",
    "uses_python_side_values",
]

PRIVATE_ATTRIBUTES: dict[type[Any], tuple[str, ...]] = {
    SQLCompiler: (
        "_result_columns",
        "positiontup",
        "insert_prefetch",
        "update_prefetch",
        "literal_execute_params",
    ),
}
"""Every attribute read below that SQLAlchemy does not document as public."""


def result_columns(compiled: SQLCompiler) -> list[tuple[str, TypeEngine[Any]]]:
    """Name and type of each column a compiled statement returns, in cursor order."""
    return [(column.keyname, column.type) for column in compiled._result_columns]


def positional_names(compiled: SQLCompiler) -> Sequence[str] | None:
    """Bind parameter names in the order of the SQL's `?` placeholders (None if not positional)."""
    return compiled.positiontup


def uses_python_side_values(compiled: SQLCompiler) -> bool:
    """Whether executing needs values SQLAlchemy computes per execution (defaults, literals)."""
    return bool(
        compiled.insert_prefetch or compiled.update_prefetch or compiled.literal_execute_params
    )
