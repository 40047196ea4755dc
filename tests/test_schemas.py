"""PostgreSQL schemas: `schema=` puts a whole store, alembic_version included, in one schema,
so several stores share a database without seeing each other."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import URL
from typer.testing import CliRunner

from statekeeper import (
    AgentState,
    AsyncStateManager,
    InvalidInput,
    SchemaOutOfDate,
    StateManager,
    StorageError,
)
from statekeeper.cli import app
from statekeeper.config import ENV_SCHEMA, Settings, create_engine
from statekeeper.migrate import include_object
from statekeeper.models import Base
from tests.conftest import PgDatabases

REPO = Path(__file__).resolve().parents[1]
OUR_TABLES = {table.name for table in Base.metadata.sorted_tables}


@pytest.fixture
def database(pg_databases: PgDatabases) -> URL:
    """An empty PostgreSQL database of the test's own."""
    return pg_databases.create()


@pytest.fixture
def inspect(database: URL) -> Iterator[sa.Inspector]:
    engine = sa.create_engine(database)
    try:
        yield sa.inspect(engine)
    finally:
        engine.dispose()


def _url(database: URL) -> str:
    return database.render_as_string(hide_password=False)


def test_two_schemas_are_two_independent_stores(database: URL, inspect: sa.Inspector) -> None:
    with (
        StateManager(database, schema="tenant_a") as a,
        StateManager(database, schema="tenant_b") as b,
    ):
        mine = a.create_session(task="tenant a's run")
        a.save_phase_completion(mine, "plan", {"ok": True}, 5, "0.25")
        b.save_agent_state(AgentState(agent_id="bot", status="idle", state_data={}))
        assert [s.id for s in a.get_session_history()] == [mine]
        assert b.get_session_history() == [] and b.get_session(mine) is None
        assert a.list_agents() == [] and [x.agent_id for x in b.list_agents()] == ["bot"]
        assert [hit.session_id for hit in a.search_sessions("tenant")] == [mine]
        assert b.search_sessions("tenant") == []
    for schema in ("tenant_a", "tenant_b"):
        assert set(inspect.get_table_names(schema=schema)) >= OUR_TABLES | {"alembic_version"}
    assert inspect.get_table_names(schema="public") == []
    assert inspect.get_view_names(schema="public") == []


def test_the_async_manager_uses_the_same_schema(database: URL, inspect: sa.Inspector) -> None:
    async def run() -> str:
        async with AsyncStateManager(database, schema="tenant_a") as manager:
            return await manager.create_session(task="async")

    sid = asyncio.run(run())
    with StateManager(database, schema="tenant_a") as sm:
        session = sm.get_session(sid)
        assert session is not None and session.task == "async"
    assert inspect.get_table_names(schema="public") == []


def test_cli_schema_option_and_environment(database: URL, monkeypatch: pytest.MonkeyPatch) -> None:
    with StateManager(database, schema="tenant_a") as sm:
        sid = sm.create_session(task="seen by the cli")
    runner = CliRunner()
    listed = runner.invoke(
        app, ["--url", _url(database), "--schema", "tenant_a", "sessions", "list", "--json"]
    )
    assert listed.exit_code == 0, listed.output
    assert [row["id"] for row in json.loads(listed.stdout)] == [sid]
    monkeypatch.setenv(ENV_SCHEMA, "tenant_a")
    shown = runner.invoke(app, ["--url", _url(database), "sessions", "show", sid, "--json"])
    assert shown.exit_code == 0 and json.loads(shown.stdout)["session"]["task"] == "seen by the cli"
    other = runner.invoke(
        app, ["--url", _url(database), "--schema", "tenant_b", "sessions", "list", "--json"]
    )
    assert other.exit_code == 0 and json.loads(other.stdout) == []


def test_alembic_from_the_repo_root_migrates_the_schema(
    database: URL, inspect: sa.Inspector
) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    env.pop(ENV_SCHEMA, None)
    command = [sys.executable, "-m", "alembic", "-x", f"url={_url(database)}"]
    subprocess.run(
        [*command, "-x", "schema=tenant_c", "upgrade", "head"],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
    )
    assert set(inspect.get_table_names(schema="tenant_c")) >= OUR_TABLES | {"alembic_version"}
    with StateManager(database, schema="tenant_c", auto_migrate=False) as sm:
        assert sm.schema_status().at_head


def test_no_drift_and_a_round_trip_inside_a_schema(database: URL) -> None:
    with StateManager(database, schema="tenant_a") as sm:
        sm.create_session()
    engine = create_engine(database, Settings(schema="tenant_a"))
    try:
        with engine.connect() as connection:
            options = {"compare_type": True, "include_object": include_object}
            context = MigrationContext.configure(connection, opts=options)
            assert list(compare_metadata(context, Base.metadata)) == []
    finally:
        engine.dispose()
    with StateManager(database, schema="tenant_a", check_schema=False) as sm:
        assert sm.downgrade_schema("base").revision is None
        assert sm.upgrade_schema().at_head


def test_a_search_path_in_the_url_creates_its_schema(database: URL, inspect: sa.Inspector) -> None:
    url = database.update_query_dict({"options": "-csearch_path=recipe"})
    with StateManager(url) as sm:
        sm.create_session()
    assert set(inspect.get_table_names(schema="recipe")) >= OUR_TABLES
    assert inspect.get_table_names(schema="public") == []


def test_a_missing_schema_without_auto_migrate_is_refused(
    database: URL, inspect: sa.Inspector
) -> None:
    with pytest.raises(SchemaOutOfDate):
        StateManager(database, schema="tenant_a", auto_migrate=False)
    assert "tenant_a" not in inspect.get_schema_names()


def test_a_user_who_may_not_create_the_schema_is_told_what_to_ask_for(
    database: URL, pg_admin: sa.Engine, inspect: sa.Inspector
) -> None:
    role = f"sk_limited_{database.database}"[:63]
    with pg_admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE ROLE "{role}" LOGIN')
    try:
        with pytest.raises(StorageError) as info:
            StateManager(database.set(username=role), schema="tenant_a")
        message = str(info.value)
        assert message.startswith(f"schema 'tenant_a' does not exist and {role} may not create it")
        assert f"CREATE SCHEMA tenant_a AUTHORIZATION {role}" in message
        assert "tenant_a" not in inspect.get_schema_names()
    finally:
        with pg_admin.connect() as connection:
            connection.exec_driver_sql(f'DROP ROLE "{role}"')


@pytest.mark.parametrize("name", ["Tenant", "pg_mine", "1st", "a-b", "x" * 64, ""])
def test_bad_schema_names_are_invalid_input(database: URL, name: str) -> None:
    with pytest.raises(InvalidInput) as info:
        StateManager(database, schema=name)
    assert info.value.field == "schema"


def test_bad_schema_in_the_environment_names_the_variable(
    database: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_SCHEMA, "Bad-Name")
    with pytest.raises(InvalidInput) as info:
        StateManager(database)
    assert info.value.field == ENV_SCHEMA


def test_sqlite_has_no_schemas(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as info:
        StateManager(tmp_path / "state.db", schema="tenant_a")
    assert info.value.field == "schema"
    assert not (tmp_path / "state.db").exists()
