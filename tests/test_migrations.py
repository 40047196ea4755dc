"""The Alembic chain: one head, no drift from the models, reversible, and atomic."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from statekeeper import MigrationError, StateManager
from statekeeper.config import create_engine, resolve_url
from statekeeper.migrate import (
    SCRIPT_LOCATION,
    alembic_config,
    current_revision,
    downgrade,
    head_revision,
    include_object,
    revisions,
    upgrade,
)
from statekeeper.models import Base

REPO = Path(__file__).resolve().parents[1]
OUR_TABLES = {t.name for t in Base.metadata.sorted_tables}


def _drift(engine: sa.Engine) -> list[object]:
    with engine.connect() as connection:
        options = {"compare_type": True, "include_object": include_object}
        context = MigrationContext.configure(connection, opts=options)
        return list(compare_metadata(context, Base.metadata))


def _tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


@pytest.fixture
def engine(empty_url: str):
    engine = create_engine(resolve_url(empty_url))
    yield engine
    engine.dispose()


def migrate_engine(engine: sa.Engine, step: Callable[..., None], *target: str) -> None:
    """Run an upgrade or downgrade on a connection of the engine."""
    with engine.connect() as connection:
        step(connection, *target)


def test_the_chain_has_one_head_and_no_gaps() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    assert len(script.get_heads()) == 1
    chain = revisions()
    assert chain[0].down_revision is None
    for earlier, later in pairwise(chain):
        assert later.down_revision == earlier.revision
    assert chain[-1].revision == head_revision()
    assert (REPO / "alembic").resolve() == SCRIPT_LOCATION


def test_upgrade_leaves_nothing_to_autogenerate(engine: sa.Engine) -> None:
    migrate_engine(engine, upgrade)
    assert _tables(engine) >= OUR_TABLES
    assert _drift(engine) == []


def test_check_constraints_carry_the_models_names(engine: sa.Engine) -> None:
    """Autogenerate ignores CHECK names, so a doubled prefix would go unnoticed without this."""
    migrate_engine(engine, upgrade)
    inspector = sa.inspect(engine)
    for table in Base.metadata.sorted_tables:
        expected = {c.name for c in table.constraints if isinstance(c, sa.CheckConstraint)}
        found = {c["name"] for c in inspector.get_check_constraints(table.name)}
        assert found == expected, table.name


def test_downgrade_to_base_and_up_again_with_data(empty_url: str, engine: sa.Engine) -> None:
    with StateManager(empty_url) as sm:
        sid = sm.create_session("kept?", workspace="/tmp")
        sm.save_phase_completion(sid, "p1", {"x": 1}, 5, "0.5", context={"c": 1})
        sm.record_event("note", "n", session_id=sid)
    migrate_engine(engine, downgrade, "base")
    assert _tables(engine) & OUR_TABLES == set()
    with engine.connect() as connection:
        assert current_revision(connection) is None
    migrate_engine(engine, upgrade)
    assert _drift(engine) == []
    with StateManager(empty_url, auto_migrate=False) as sm:
        assert sm.get_total_sessions() == 0
        sid = sm.create_session("again")
        sm.save_phase_completion(sid, "p1", {}, 1, "1")
        assert sm.integrity_check().ok
    for info in reversed(revisions()):
        migrate_engine(engine, downgrade, info.down_revision or "base")
    migrate_engine(engine, upgrade)
    assert _drift(engine) == []


def test_alembic_from_the_repo_root_reaches_the_same_schema(empty_url: str) -> None:
    alembic = Path(sys.executable).with_name("alembic")
    result = subprocess.run(
        [str(alembic), "-x", f"url={empty_url}", "upgrade", "head"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    check = subprocess.run(
        [str(alembic), "-x", f"url={empty_url}", "check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    with StateManager(empty_url, auto_migrate=False) as sm:
        assert [r.revision for r in sm.get_migration_history()] == [r.revision for r in revisions()]


def test_alembic_takes_the_url_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "env.db"
    result = subprocess.run(
        [str(Path(sys.executable).with_name("alembic")), "upgrade", "head"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "STATEKEEPER_URL": str(path)},
    )
    assert result.returncode == 0, result.stderr
    with StateManager(path, auto_migrate=False) as sm:
        assert sm.get_total_sessions() == 0


def test_a_minimal_ini_naming_the_packaged_scripts_works(tmp_path: Path) -> None:
    """What a user of the installed package writes: no logging sections, no path to a repo."""
    ini = tmp_path / "alembic.ini"
    ini.write_text("[alembic]\nscript_location = statekeeper:migrations\n")
    path = tmp_path / "minimal.db"
    alembic = str(Path(sys.executable).with_name("alembic"))
    result = subprocess.run(
        [alembic, "-c", str(ini), "-x", f"url={path}", "upgrade", "head"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    with StateManager(path, auto_migrate=False) as sm:
        assert sm.schema_status().at_head


def test_a_failed_migration_changes_nothing(engine: sa.Engine, empty_url: str) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE chat_messages (squatter INTEGER)")
    with pytest.raises(MigrationError, match="nothing changed"):
        StateManager(empty_url)
    assert _tables(engine) == {"chat_messages"}
