"""Query plans: every hot query uses an index and sorts nothing, so calls stay flat at scale.

The exact SQL and parameters SQLAlchemy sends are captured and EXPLAINed as they are. On
PostgreSQL sequential scans are disabled for the check: tables this small would not need
an index, and what matters is that one exists that fits the query. The store is fresh and
never analyzed, so the planner weighs indexes by their shape alone: statistics left by
other tests would make its choice depend on which tests ran before.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from statekeeper import StateManager
from statekeeper.dialects import event_search_statement, search_statement
from statekeeper.queries import EVENTS
from statekeeper.queries import agents as qa
from statekeeper.queries import events as qe
from statekeeper.queries import graph as qg
from statekeeper.queries import phases as qp
from statekeeper.queries import sessions as qs
from statekeeper.queries import snapshots as qsn
from statekeeper.queries import tasks as qt
from statekeeper.queries import worktree as qw
from tests.conftest import ENGINES, PgDatabases

NOW = datetime.now(UTC)
AFTER = {"after_created": NOW, "after_id": "x"}

# name: (statement, parameters, the index the plan must name: ours, or a unique
# constraint's, which SQLite calls sqlite_autoindex_<table>_<n>)
CASES: dict[str, tuple[Any, dict[str, Any], str]] = {
    "get_session": (qs.BY_ID, {"sid": "x"}, "uq_sessions_id|sqlite_autoindex_sessions"),
    "lock_session": (qs.LOCK, {"sid": "x"}, "uq_sessions_id|sqlite_autoindex_sessions"),
    "history": (
        qs.history(status=False, kind=False, workspace=False, after=False),
        {"limit": 50},
        "ix_sessions_created_at_id",
    ),
    "history_next_page": (
        qs.history(status=False, kind=False, workspace=False, after=True),
        {"limit": 50, **AFTER},
        "ix_sessions_created_at_id",
    ),
    "history_by_status": (
        qs.history(status=True, kind=False, workspace=False, after=True),
        {"limit": 50, "status": "running", **AFTER},
        "ix_sessions_status_created_at",
    ),
    "history_by_kind": (
        qs.history(status=False, kind=True, workspace=False, after=False),
        {"limit": 50, "kind": "workflow"},
        "ix_sessions_kind_created_at",
    ),
    "history_by_workspace": (
        qs.history(status=False, kind=False, workspace=True, after=False),
        {"limit": 50, "workspace_id": "w"},
        "ix_sessions_workspace_id_created_at",
    ),
    "load_context": (qp.CONTEXT_OF, {"sid": "x"}, "ix_phase_completions_session_id_id"),
    "phases": (qp.PHASES_OF, {"sid": "x"}, "ix_phase_completions_session_id_id"),
    "previous_phase": (
        qp.PREVIOUS,
        {"sid": "x", "pid": "p"},
        "uq_phase_completions_session_id_phase_id|sqlite_autoindex_phase_completions"
        "|ix_phase_completions_session_id_id",
    ),
    "chat_page": (
        qw.chat_of(after=True, limit=True),
        {"sids": ["x"], "after_seq": 1, "limit": 100},
        "ix_chat_messages_session_id_seq",
    ),
    "instances": (
        qw.INSTANCES_OF,
        {"sids": ["x"]},
        "uq_instances_session_id_instance_number|sqlite_autoindex_instances",
    ),
    "events": (
        qe.page("session", after=False, limited=False),
        {"key": "x"},
        "ix_events_session_id_seq",
    ),
    "events_by_type_page": (
        qe.page("type", after=True, limited=True),
        {"key": "x", "seq": 0, "limit": 10},
        "ix_events_event_type_seq",
    ),
    "lock_agent": (
        qa.LOCK,
        {"ns": "default", "aid": "a"},
        "pk_agents|sqlite_autoindex_agents|ix_agents_namespace_status_agent_id",
    ),
    "agents": (
        qa.listing(status=False, include_deleted=False),
        {"ns": "default"},
        "pk_agents|sqlite_autoindex_agents",
    ),
    "agents_by_status": (
        qa.listing(status=True, include_deleted=False),
        {"ns": "default", "status": "idle"},
        "ix_agents_namespace_status_agent_id",
    ),
    "agent_history": (
        qa.HISTORY,
        {"ns": "default", "aid": "a", "limit": 50},
        "ix_state_transitions_namespace_agent_id_id",
    ),
    "snapshots_of_agent": (
        qsn.listing(session=False, agent=True),
        {"ns": "default", "aid": "a"},
        "ix_snapshots_namespace_agent_id_pk",
    ),
    "snapshots_of_session": (
        qsn.listing(session=True, agent=False),
        {"ns": "default", "sid": "x"},
        "ix_snapshots_session_id_pk",
    ),
    "snapshot": (
        qsn.BY_ID,
        {"snap": "x", "ns": "default"},
        "uq_snapshots_id|sqlite_autoindex_snapshots",
    ),
    "rotate_agent_snapshots": (
        qsn.rotate(agent=True),
        {"ns": "default", "aid": "a", "keep": 10},
        "ix_snapshots_namespace_agent_id_pk",
    ),
    "rotate_session_snapshots": (
        qsn.rotate(agent=False),
        {"sid": "x", "keep": 10},
        "ix_snapshots_session_id_pk",
    ),
    "task": (qt.BY_ID, {"tid": "x"}, "pk_tasks|sqlite_autoindex_tasks"),
    "tasks": (
        qt.listing(status=False, assigned_to=False),
        {},
        "ix_tasks_created_at_id",
    ),
    "tasks_by_status": (
        qt.listing(status=True, assigned_to=False),
        {"status": "pending"},
        "ix_tasks_status_created_at",
    ),
    "tasks_by_assignee": (
        qt.listing(status=False, assigned_to=True),
        {"who": "a"},
        "ix_tasks_assigned_to_created_at",
    ),
    "cleanup": (qs.cleanup(NOW), {}, "ix_sessions_status_completed_at"),
    "graph_newest_id": (
        qg.NEWEST_ID,
        {"sid": "t", "ns": ""},
        "pk_graph_checkpoints|sqlite_autoindex_graph_checkpoints",
    ),
    "graph_newest_with_writes": (
        qg.NEWEST_WITH_WRITES,
        {"sid": "t", "ns": ""},
        "pk_graph_checkpoints|sqlite_autoindex_graph_checkpoints",
    ),
    "graph_checkpoint_with_writes": (
        qg.WITH_WRITES,
        {"sid": "t", "ns": "", "cid": "c"},
        "pk_graph_checkpoints|sqlite_autoindex_graph_checkpoints",
    ),
    "graph_list_of_thread": (
        qg.listing(thread=True, namespace=True, checkpoint=False, before=True, limit=True),
        {"sid": "t", "ns": "", "before": "c", "limit": 10},
        "pk_graph_checkpoints|sqlite_autoindex_graph_checkpoints",
    ),
    "graph_writes_of": (
        qg.WRITES_OF,
        {"sid": "t", "ns": "", "ids": ["a", "b", "c"]},
        "pk_graph_writes|sqlite_autoindex_graph_writes",
    ),
    "graph_delete_writes_of": (
        qg.DELETE_WRITES_OF,
        {"sid": "t", "ns": "", "ids": ["a", "b"]},
        "pk_graph_writes|sqlite_autoindex_graph_writes",
    ),
    "graph_delete_checkpoints_of": (
        qg.DELETE_CHECKPOINTS_OF,
        {"sid": "t", "ns": "", "ids": ["a", "b"]},
        "pk_graph_checkpoints|sqlite_autoindex_graph_checkpoints",
    ),
    "session_refresh": (
        qs.REFRESH,
        {"sid": "t", "now": NOW, "stale": NOW},
        "uq_sessions_id|sqlite_autoindex_sessions",
    ),
}


@pytest.fixture(scope="module", params=ENGINES)
def sm(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StateManager]:
    """A migrated store of this module's own, which no other test writes to."""
    if request.param == "sqlite":
        url: Any = Path(tmp_path_factory.mktemp("plans")) / "state.db"
    else:
        databases: PgDatabases = request.getfixturevalue("pg_databases")
        url = databases.create()
    with StateManager(url) as manager:
        yield manager


def _plan(
    sm: StateManager,
    statement: Any,
    params: dict[str, Any],
    disabled: tuple[str, ...] = ("enable_seqscan", "enable_bitmapscan", "enable_sort"),
) -> str:
    sent: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, sql: str, parameters: Any, *args: Any) -> None:
        sent.append((sql, parameters))

    postgres = sm.engine.dialect.name == "postgresql"
    with sm.engine.connect() as connection:
        event.listen(connection, "before_cursor_execute", capture)
        with connection.begin():
            connection.execute(statement, params)
            event.remove(connection, "before_cursor_execute", capture)
            if postgres:
                # Only an index that fits (order included) is left for the planner to use.
                for setting in disabled:
                    connection.exec_driver_sql(f"SET LOCAL {setting} = off")
            sql, parameters = sent[-1]
            prefix = "EXPLAIN " if postgres else "EXPLAIN QUERY PLAN "
            rows = connection.exec_driver_sql(prefix + sql, parameters).all()
            connection.rollback()
    return "\n".join(str(row[-1]) for row in rows)


@pytest.mark.parametrize("name", sorted(CASES))
def test_hot_queries_use_an_index_and_sort_nothing(sm: StateManager, name: str) -> None:
    statement, params, index = CASES[name]
    plan = _plan(sm, statement, params)
    assert any(name in plan for name in index.split("|")), plan
    assert "TEMP B-TREE" not in plan, plan  # SQLite sorting rows itself
    assert "Seq Scan" not in plan, plan
    if "ORDER BY" in str(statement) and sm.engine.dialect.name == "postgresql":
        assert "Sort" not in plan.replace("Sort Key", ""), plan


def test_search_reads_the_full_text_indexes(sm: StateManager) -> None:
    sql, params = search_statement(sm.engine.dialect.name, ["login", "auth"], 20)
    plan = _plan(sm, sa.text(sql), params)
    if sm.engine.dialect.name == "sqlite":
        for table in ("search_subject", "search_task", "search_chat", "search_output"):
            assert f"{table} VIRTUAL TABLE INDEX" in plan, plan
    else:
        for index in ("search_subject", "search_task", "search_chat", "search_output"):
            index = f"{index}_fts"
            assert any(name in plan for name in index.split("|")), plan


def test_postgres_full_text_indexes_have_no_pending_list(pg_databases: PgDatabases) -> None:
    """A GIN pending list makes the planner scan every row until VACUUM merges it."""
    query = "SELECT relname, reloptions FROM pg_class WHERE relname LIKE 'search_%_fts'"
    with StateManager(pg_databases.create()) as sm, sm.engine.connect() as connection:
        options: dict[str, list[str]] = dict(connection.execute(sa.text(query)).all())
    assert sorted(options) == [
        "search_chat_fts",
        "search_events_fts",
        "search_output_fts",
        "search_subject_fts",
        "search_task_fts",
    ]
    assert all(opts == ["fastupdate=off"] for opts in options.values()), options


def test_event_search_reads_its_full_text_index(sm: StateManager) -> None:
    sql, params = event_search_statement(
        sm.engine.dialect.name,
        ["deploy", "failed"],
        20,
        columns=[column.name for column in EVENTS.c],
        before=None,
        session_id=None,
        event_type=None,
    )
    # GIN indexes are read by bitmap scans only; on real data the planner weighs this
    # against walking the log newest first.
    plan = _plan(sm, sa.text(sql), params, disabled=("enable_seqscan", "enable_indexscan"))
    if sm.engine.dialect.name == "sqlite":
        assert "VIRTUAL TABLE INDEX" in plan, plan
        assert "TEMP B-TREE" not in plan, plan
    else:
        assert "search_events_fts" in plan, plan
