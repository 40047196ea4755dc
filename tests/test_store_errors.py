"""What a user sees when the store is the wrong file, missing, damaged or unreachable, and
when a value breaks a constraint: a StateError naming the file or server and what to do."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from statekeeper import (
    AsyncStateManager,
    InvalidInput,
    MigrationError,
    StateManager,
    StorageError,
)
from statekeeper.cli import app
from statekeeper.config import ENV_URL, create_engine, resolve_url
from statekeeper.translate import translate_error


def _open_both(url: Any) -> list[Exception]:
    """What opening `url` raises from each manager (an async one fails on its first call)."""

    async def first_call() -> None:
        async with AsyncStateManager(url) as manager:
            await manager.get_total_sessions()

    def open_sync() -> None:
        StateManager(url).close()

    def open_async() -> None:
        asyncio.run(first_call())

    raised: list[Exception] = []
    for attempt in (open_sync, open_async):
        with pytest.raises(StorageError) as info:
            attempt()
        raised.append(info.value)
    return raised


def test_a_file_that_is_not_a_database_is_named(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("just some notes\n")
    for error in _open_both(path):
        assert str(error).startswith(f"{path}: not a statekeeper store")
        assert "check the path" in str(error)
    assert path.read_text() == "just some notes\n"  # left exactly as it was


def test_a_damaged_store_is_named_with_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with StateManager(path) as sm:
        for n in range(200):
            sm.create_session(task="t" * 2000 + str(n))
    size = path.stat().st_size
    with path.open("r+b") as handle:  # the pages of the sessions table, overwritten
        handle.seek(size // 2)
        handle.write(b"\xff" * (size // 4))
    with pytest.raises(StorageError) as info, StateManager(path) as sm:
        sm.search_sessions("t" * 2000)
    message = str(info.value)
    assert message.startswith(f"{path}: the store is damaged")
    assert "statekeeper db restore" in message and ".recover" in message


def test_a_missing_directory_is_an_error_not_a_new_store(tmp_path: Path) -> None:
    path = tmp_path / "typo" / "dir" / "state.db"
    for error in _open_both(path):
        assert str(error).startswith(f"{path}: cannot create the store there")
        assert f"{path.parent} does not exist" in str(error)
    assert not (tmp_path / "typo").exists()


def test_a_file_where_a_directory_should_be(tmp_path: Path) -> None:
    for error in _open_both("/dev/null/x.db"):
        assert "/dev/null is not a directory" in str(error)


def test_the_default_location_is_still_created(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(ENV_URL, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "fresh" / "data"))
    result = CliRunner().invoke(app, ["sessions", "list", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []
    assert (tmp_path / "fresh" / "data" / "statekeeper" / "state.db").exists()


READ_COMMANDS = [
    ["sessions", "list"],
    ["sessions", "show", "x"],
    ["sessions", "search", "word"],
    ["stats"],
    ["agents", "list"],
    ["snapshots", "list"],
    ["events", "list", "--type", "session.created"],
    ["events", "search", "word"],
]


@pytest.mark.parametrize("command", READ_COMMANDS, ids=" ".join)
def test_read_commands_refuse_a_store_that_does_not_exist(
    command: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "state.db"
    result = CliRunner().invoke(app, ["--url", str(missing), *command])
    assert result.exit_code == 1
    assert f"no store at {missing}" in result.stderr
    monkeypatch.setenv(ENV_URL, str(missing))
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 1 and f"no store at {missing}" in result.stderr
    assert not missing.exists()


def test_import_commands_still_create_the_store(tmp_path: Path) -> None:
    source = tmp_path / "source.db"
    with StateManager(source) as sm:
        sid = sm.create_session(task="moved")
        sm.export_session(sid, tmp_path / "session.json")
    target = tmp_path / "new.db"
    result = CliRunner().invoke(
        app, ["--url", str(target), "sessions", "import", str(tmp_path / "session.json")]
    )
    assert result.exit_code == 0, result.output
    with StateManager(target) as sm:
        session = sm.get_session(sid)
        assert session is not None and session.task == "moved"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql://postgres:s3cret@127.0.0.1:5432/statekeeper_no_such_db",
            "database 'statekeeper_no_such_db': database \"statekeeper_no_such_db\" does not "
            "exist; create it (createdb -h 127.0.0.1 -p 5432 -U postgres statekeeper_no_such_db)",
        ),
        (
            "postgresql://postgres:s3cret@127.0.0.1:1/db",
            "127.0.0.1:1, database 'db': Connection refused; check that PostgreSQL is running",
        ),
    ],
    ids=["missing database", "nothing listening"],
)
def test_a_connection_failure_says_where_and_what_to_check(
    url: str, expected: str, pg_admin: sa.Engine
) -> None:
    for error in _open_both(url):
        message = str(error)
        assert message.startswith("cannot connect to PostgreSQL at 127.0.0.1:")
        assert expected in message
        assert "s3cret" not in message and "OperationalError" not in message


def test_an_unreachable_copy_target_is_not_a_migration_error(tmp_path: Path) -> None:
    with StateManager(tmp_path / "source.db") as sm:
        sm.create_session()
        with pytest.raises(StorageError) as info:
            sm.copy_to("postgresql://postgres:s3cret@127.0.0.1:1/target")
    assert not isinstance(info.value, MigrationError)
    assert str(info.value).startswith("cannot connect to PostgreSQL at 127.0.0.1:1, database")
    assert "s3cret" not in str(info.value)


SESSION_ROW = (
    "INSERT INTO sessions (id, kind, status, created_at, updated_at, cost_usd, tokens_in, "
    "tokens_out, metadata) "
    "VALUES (:id, :kind, :status, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 0, 0, 0, '{}')"
)


def _violation(url: str, statement: str, params: dict[str, Any]) -> InvalidInput:
    """The InvalidInput a statement breaking a constraint becomes, on a real store."""
    engine = create_engine(resolve_url(url))
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    SESSION_ROW.replace(":id", "'s1'")
                    .replace(":kind", "'w'")
                    .replace(":status", "'running'")
                )
            )
        with pytest.raises(sa.exc.IntegrityError) as info, engine.begin() as connection:
            connection.execute(sa.text(statement), params)
    finally:
        engine.dispose()
    error = translate_error(info.value, engine.url)
    assert isinstance(error, InvalidInput)
    return error


@pytest.mark.parametrize(
    ("statement", "params", "field", "says"),
    [
        (SESSION_ROW, {"id": "s1", "kind": "w", "status": "running"}, "id", "already exists"),
        (SESSION_ROW, {"id": "s2", "kind": None, "status": "running"}, "kind", "is required"),
        (SESSION_ROW, {"id": "s3", "kind": "w", "status": "bogus"}, "status", "the check"),
        (
            "INSERT INTO phase_completions (session_id, phase_id, completed_at, duration_ms, "
            "output, cost_usd, tokens_in, tokens_out) "
            "VALUES (:sid, 'p', CURRENT_TIMESTAMP, 0, 'null', 0, 0, 0)",
            {"sid": "nobody"},
            "session_id",
            "does not exist",
        ),
    ],
    ids=["unique", "not null", "check", "foreign key"],
)
def test_integrity_errors_name_their_field(
    store_url: str, statement: str, params: dict[str, Any], field: str, says: str
) -> None:
    error = _violation(store_url, statement, params)
    if field == "session_id" and resolve_url(store_url).get_backend_name() == "sqlite":
        field = "value"  # SQLite names neither the column nor the constraint of a foreign key
    assert error.field == field, str(error)
    assert says in str(error)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda sm: sm.cleanup_old_sessions(100_000_000), "days"),
        (lambda sm: sm.get_cost_trends(1_000_000), "days"),
        (lambda sm: sm.get_cost_trends(0), "days"),
        (lambda sm: sm.purge_deleted(10**9), "older_than_days"),
    ],
    ids=["cleanup", "trends", "trends zero", "purge"],
)
def test_day_counts_out_of_range_are_invalid_input(sm: StateManager, call: Any, field: str) -> None:
    sid = sm.create_session()
    with pytest.raises(InvalidInput) as info:
        call(sm)
    assert info.value.field == field
    assert sm.get_session(sid) is not None
    assert len(sm.get_cost_trends(36_500)) == 36_500  # the largest span still works


@pytest.mark.parametrize(
    "command", [["stats", "--days", "1000000"], ["sessions", "cleanup", "--days", "100000000"]]
)
def test_cli_day_counts_out_of_range_are_one_line(command: list[str], tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    StateManager(path).close()
    result = CliRunner().invoke(app, ["--url", str(path), *command])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"error: invalid days: at most 36500 days (a century), got {command[-1]}"
    ]
    assert os.path.exists(path)
