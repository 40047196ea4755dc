"""Opening a store: URL resolution, SQLite pragmas and file modes, schema checks."""

from __future__ import annotations

import multiprocessing
import os
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa

from statekeeper import InvalidInput, SchemaOutOfDate, StateManager, StorageError
from statekeeper.config import ENV_URL, default_url, resolve_url
from statekeeper.migrate import head_revision, revisions


def test_url_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(ENV_URL, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert resolve_url(None) == default_url()
    assert str(default_url().database).endswith(os.path.join("statekeeper", "state.db"))
    monkeypatch.setenv(ENV_URL, "postgresql://u@h/db")
    assert resolve_url(None).drivername == "postgresql+psycopg"
    assert resolve_url(tmp_path / "a.db").database == str(tmp_path / "a.db")
    assert resolve_url("relative.db").drivername == "sqlite+pysqlite"
    assert resolve_url("sqlite:///x.db").drivername == "sqlite+pysqlite"
    assert resolve_url("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"
    for bad in ("mysql://u@h/db", "", "not a url://"):
        with pytest.raises(InvalidInput) as info:
            resolve_url(bad)
        assert info.value.field == "url"


def test_default_store_lives_in_the_user_data_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(ENV_URL, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    with StateManager() as sm:
        sm.create_session()
    assert (tmp_path / "data" / "statekeeper" / "state.db").exists()
    monkeypatch.setenv(ENV_URL, str(tmp_path / "from-env.db"))
    with StateManager() as sm:
        assert sm.get_total_sessions() == 0
    assert (tmp_path / "from-env.db").exists()


def test_sqlite_pragmas_and_private_files(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with StateManager(path, synchronous="full", busy_timeout_ms=1234) as sm:
        sm.create_session()
        with sm.engine.connect() as connection:
            pragmas = {
                name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "foreign_keys", "synchronous", "busy_timeout")
            }
        assert pragmas == {
            "journal_mode": "wal",
            "foreign_keys": 1,
            "synchronous": 2,
            "busy_timeout": 1234,
        }
        for suffix in ("", "-wal", "-shm"):
            file = path.with_name(path.name + suffix)
            assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
    with StateManager(path) as sm, sm.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1
    with pytest.raises(InvalidInput):
        StateManager(path, synchronous="off")


def test_memory_database_works(tmp_path: Path) -> None:
    with StateManager("sqlite://") as sm:
        sid = sm.create_session()
        assert sm.get_session(sid) is not None


def test_auto_migrate_false_refuses_an_empty_database(empty_url: str) -> None:
    with pytest.raises(SchemaOutOfDate, match="statekeeper db upgrade"):
        StateManager(empty_url, auto_migrate=False)
    with StateManager(empty_url) as sm:
        assert [r.revision for r in sm.get_migration_history()] == [r.revision for r in revisions()]
    with StateManager(empty_url, auto_migrate=False) as sm:
        assert sm.get_total_sessions() == 0


def test_a_newer_schema_is_refused_even_with_auto_migrate(store_url: str) -> None:
    engine = sa.create_engine(resolve_url(store_url))
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("UPDATE alembic_version SET version_num = 'ffff_future'")
        with pytest.raises(SchemaOutOfDate, match="upgrade statekeeper"):
            StateManager(store_url)
    finally:
        with engine.begin() as connection:
            connection.execute(
                sa.text("UPDATE alembic_version SET version_num = :v"), {"v": head_revision()}
            )
        engine.dispose()


def _open_and_write(url: str, n: int) -> None:
    with StateManager(url) as sm:
        sm.create_session(f"opener {n}")


def test_concurrent_first_opens_migrate_once(empty_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_open_and_write, args=(empty_url, n)) for n in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
        assert process.exitcode == 0
    with StateManager(empty_url, auto_migrate=False) as sm:
        assert sm.get_total_sessions() == 4
        assert len(sm.get_migration_history()) == len(revisions())
        assert sm.integrity_check().ok


def test_unreachable_server_is_a_storage_error() -> None:
    with pytest.raises(StorageError) as info:
        StateManager("postgresql://nobody@127.0.0.1:1/none", connect_args={"connect_timeout": 2})
    assert "Traceback" not in str(info.value)


def test_bad_engine_option_is_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as info:
        StateManager(tmp_path / "x.db", no_such_option=1)
    assert info.value.field == "engine_options"


@pytest.mark.parametrize("engine_name", ["postgresql"], indirect=True)
def test_postgres_store_in_its_own_schema(empty_url: str) -> None:
    admin = sa.create_engine(empty_url)
    with admin.begin() as connection:
        connection.exec_driver_sql("CREATE SCHEMA agents")
    url = sa.make_url(empty_url).update_query_dict({"options": "-csearch_path=agents"})
    try:
        with StateManager(url) as sm:
            sid = sm.create_session("scoped")
            assert sm.get_session(sid) is not None
        tables = set(sa.inspect(admin).get_table_names(schema="agents"))
        assert {"sessions", "alembic_version", "phase_completions"} <= tables
        assert sa.inspect(admin).get_table_names(schema="public") == []
        with StateManager(url, auto_migrate=False) as sm:
            assert sm.get_total_sessions() == 1
    finally:
        admin.dispose()


def test_a_missing_driver_says_what_to_install() -> None:
    with pytest.raises(StorageError, match="pg8000 is not installed"):
        StateManager("postgresql+pg8000://u@127.0.0.1/db")
