"""The SQLAlchemy internals the direct path reads (sa_internals.py): each still there and
still meaning what it did, checked against SQLAlchemy's own execution of the same statement.

A SQLAlchemy release that renames or changes one of them fails here, loudly, rather than
as wrong values on the direct path.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.sql.compiler import SQLCompiler

from statekeeper import StateManager, sa_internals
from statekeeper.queries import SESSIONS
from statekeeper.queries import phases as qp
from statekeeper.queries import sessions as qs
from statekeeper.queries import worktree as qw


def _compiled(sm: StateManager, statement: Any, keys: list[str] | None = None) -> SQLCompiler:
    compiled = statement.compile(dialect=sm.engine.dialect, column_keys=keys)
    assert isinstance(compiled, SQLCompiler)
    return compiled


@pytest.fixture
def sm(tmp_path: Path) -> Any:
    with StateManager(tmp_path / "internals.db") as manager:
        yield manager


def test_every_listed_private_attribute_exists(sm: StateManager) -> None:
    compiled = _compiled(sm, qs.BY_ID)
    for owner, names in sa_internals.PRIVATE_ATTRIBUTES.items():
        assert isinstance(compiled, owner)
        for name in names:
            assert hasattr(compiled, name), f"SQLAlchemy no longer has {owner.__name__}.{name}"


@pytest.mark.parametrize(
    "statement",
    [qs.BY_ID, qs.LOCK, qp.CONTEXT_OF, qp.EXISTS, qs.COUNT, qs.TOUCH],
    ids=["by_id", "lock", "context_of", "exists", "count", "touch_returning"],
)
def test_result_columns_are_the_cursors_columns(sm: StateManager, statement: Any) -> None:
    sid = sm.create_session("columns")
    params = {"sid": sid, "pid": "p", "now": sm.get_session(sid).created_at}  # type: ignore[union-attr]
    with sm.engine.begin() as connection:
        result = connection.execute(statement, params)
        expected = list(result.keys())
        types = [type(value) for value in result.one()]
    columns = sa_internals.result_columns(_compiled(sm, statement, sorted(params)))
    assert [name for name, _type in columns] == expected
    assert len(columns) == len(types)


def test_positional_names_follow_the_placeholders(sm: StateManager) -> None:
    compiled = _compiled(sm, qw.INSTANCE_EXISTS)
    names = sa_internals.positional_names(compiled)
    assert names is not None
    assert list(names) == ["sid", "number"]
    assert compiled.string.count("?") == len(names)


def test_python_side_values_are_seen(sm: StateManager) -> None:
    """An INSERT leaving out a column with a Python default needs SQLAlchemy to compute it."""
    insert = sa.insert(SESSIONS)
    everything = sorted(c.key for c in SESSIONS.columns if c.key != "pk")
    assert not sa_internals.uses_python_side_values(_compiled(sm, insert, everything))
    assert sa_internals.uses_python_side_values(_compiled(sm, insert, ["id", "subject"]))
    assert not sa_internals.uses_python_side_values(_compiled(sm, qs.BY_ID))


def test_await_runs_a_coroutine_inside_run_sync(tmp_path: Path) -> None:
    """The async manager's PostgreSQL path awaits psycopg from sync code in run_sync."""
    from sqlalchemy.ext.asyncio import create_async_engine

    async def scenario() -> Any:
        engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'await.db'}")
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(
                    lambda _sync: sa_internals.await_(asyncio.sleep(0, result="awaited"))
                )
        finally:
            await engine.dispose()

    assert asyncio.run(scenario()) == "awaited"
