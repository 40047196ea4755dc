"""Fixtures: every store test runs on a real SQLite file and a real PostgreSQL database.

SQLite tests copy a template file migrated once per run. PostgreSQL tests share one
throwaway database per run (and per xdist worker), emptied between tests. Without a
reachable server PostgreSQL tests skip locally; under CI=true they fail instead.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from statekeeper import StateManager
from statekeeper.models import Base, MigrationRow
from tests.async_facade import AsyncFacade
from tests.workers import Worker

ENGINES = ("sqlite", "postgresql")
PG_ADMIN_URL = os.environ.get(
    "STATEKEEPER_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[sa.Engine]:
    """An AUTOCOMMIT engine on the server's maintenance database, for CREATE/DROP DATABASE."""
    engine = sa.create_engine(make_url(PG_ADMIN_URL), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    except sa.exc.OperationalError as exc:
        engine.dispose()
        reason = f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc.orig}"
        if _in_ci():
            pytest.fail(f"CI requires PostgreSQL. {reason}")
        pytest.skip(reason)
    yield engine
    engine.dispose()


class PgDatabases:
    """Creates throwaway databases and drops them all at the end of the run."""

    def __init__(self, admin: sa.Engine) -> None:
        self.admin = admin
        self.created: list[str] = []

    def create(self) -> URL:
        name = f"sk_test_{os.getpid()}_{uuid.uuid4().hex[:10]}"
        with self.admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return make_url(PG_ADMIN_URL).set(database=name)

    def drop_all(self) -> None:
        with self.admin.connect() as connection:
            for name in self.created:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_databases(pg_admin: sa.Engine) -> Iterator[PgDatabases]:
    databases = PgDatabases(pg_admin)
    yield databases
    databases.drop_all()


@pytest.fixture(scope="session")
def pg_store(pg_databases: PgDatabases) -> URL:
    """A PostgreSQL database migrated to head once per run."""
    url = pg_databases.create()
    StateManager(url).close()
    return url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per run, copied for each test."""
    path = tmp_path_factory.mktemp("template") / "state.db"
    with StateManager(path) as sm:
        sm.checkpoint()
    return path


def _empty_tables(url: URL) -> None:
    names = ", ".join(
        f'"{t.name}"' for t in Base.metadata.sorted_tables if t is not MigrationRow.__table__
    )
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    finally:
        engine.dispose()


@pytest.fixture(params=ENGINES)
def engine_name(request: pytest.FixtureRequest) -> str:
    """The engine under test: each test using it runs once per engine."""
    return str(request.param)


@pytest.fixture
def store_url(engine_name: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a migrated, empty store on the engine under test."""
    if engine_name == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "state.db"
        shutil.copy2(template, path)
        return str(path)
    url: URL = request.getfixturevalue("pg_store")
    _empty_tables(url)
    return url.render_as_string(hide_password=False)


def _new_database(engine: str, request: pytest.FixtureRequest, path: Path) -> str:
    """The URL of a brand-new, empty database on `engine` (a file at `path` for SQLite)."""
    if engine == "sqlite":
        return str(path)
    databases: PgDatabases = request.getfixturevalue("pg_databases")
    return databases.create().render_as_string(hide_password=False)


@pytest.fixture
def empty_url(engine_name: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a brand-new, empty database (nothing migrated) on the engine under test."""
    return _new_database(engine_name, request, tmp_path / "fresh.db")


@pytest.fixture
def other_engine_url(engine_name: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A brand-new database on the other engine, for copies SQLite <-> PostgreSQL."""
    other = "postgresql" if engine_name == "sqlite" else "sqlite"
    return _new_database(other, request, tmp_path / "other.db")


MANAGERS = ("sync", "async")


@pytest.fixture(params=MANAGERS)
def manager_kind(request: pytest.FixtureRequest) -> str:
    """Which manager the behaviour suite drives: StateManager, or AsyncStateManager."""
    return str(request.param)


@pytest.fixture
def sm(store_url: str, manager_kind: str) -> Iterator[StateManager]:
    """A manager on an empty store, closed after the test: each test using it runs on both
    managers (the async one through AsyncFacade, every call awaited in one task)."""
    if manager_kind == "sync":
        with StateManager(store_url) as manager:
            yield manager
        return
    with AsyncFacade(store_url) as facade:
        yield cast(StateManager, facade)


@pytest.fixture
def open_sm(store_url: str, manager_kind: str) -> Iterator[Callable[..., StateManager]]:
    """Opens managers of the kind under test, with options, on the store; closed after."""
    opened: list[StateManager] = []

    def open_manager(**options: Any) -> StateManager:
        if manager_kind == "sync":
            manager = StateManager(store_url, **options)
        else:
            manager = cast(StateManager, AsyncFacade(store_url, **options))
        opened.append(manager)
        return manager

    yield open_manager
    for manager in opened:
        manager.close()


@pytest.fixture
def sync_sm(store_url: str) -> Iterator[StateManager]:
    """A StateManager on an empty store, for tests of the sync manager's own machinery."""
    with StateManager(store_url) as manager:
        yield manager


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    """Worker processes a test starts; any still alive afterwards is killed."""
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.kill()
