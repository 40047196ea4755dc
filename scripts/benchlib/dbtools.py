"""Around the runs: throwaway PostgreSQL databases, sizes on disk, and what a store holds."""

from __future__ import annotations

import json
import os
import sqlite3
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from benchlib.workload import AGENT_STATUS, MAX_SNAPSHOTS, Plan

__all__ = ["Postgres", "import_digest", "ops_problems", "pg_size", "sqlite_size"]

_CENT_FRACTION = Decimal(1).scaleb(-8)
_GROUPS = {
    "sessions": "workflow",
    "phase_completions": "workflow",
    "workflow_context": "workflow",
    "events": "workflow",
    "checkpoints": "workflow",
    "writes": "workflow",
    "chat_messages": "chat",
    "agent_sessions": "chat",
    "agent_messages": "chat",
    "agents": "agents",
    "state_transitions": "agents",
    "snapshots": "agents",
}
_FTS_OWNERS = {"search_task": "sessions", "search_chat": "chat_messages"}


class Postgres:
    """Creates and drops this run's throwaway databases on one server."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.url = make_url(url).set(drivername="postgresql")
        self.admin = psycopg.connect(self.conninfo(), autocommit=True, connect_timeout=5)
        self.created: list[str] = []

    def conninfo(self, database: str | None = None) -> str:
        """A libpq URL for `database` (default: the one in the URL given)."""
        url = self.url if database is None else self.url.set(database=database)
        return url.render_as_string(hide_password=False)

    def version(self) -> str:
        row = self.admin.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else "?"

    def create(self, tag: str) -> str:
        """A new empty database; returns its URL."""
        name = f"skbench_{os.getpid()}_{tag}"
        self.admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        self.admin.execute(f"CREATE DATABASE {name}")
        self.created.append(name)
        return self.conninfo(name)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        if name in self.created:
            self.admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            self.created.remove(name)

    def close(self) -> None:
        """Drop whatever is left of this run's databases."""
        for name in list(self.created):
            self.admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        self.created.clear()
        self.admin.close()


def _table_of(name: str, owner: str) -> str:
    for prefix, table in _FTS_OWNERS.items():
        if owner.startswith(prefix):
            return table
    return owner


def sqlite_size(path: Path) -> dict[str, Any]:
    """Bytes on disk after folding the WAL in, in all and by group of tables (with indexes)."""
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        owners = dict(connection.execute("SELECT name, tbl_name FROM sqlite_master").fetchall())
        types = dict(connection.execute("SELECT name, type FROM sqlite_master").fetchall())
        tables: dict[str, int] = defaultdict(int)
        kinds: dict[str, int] = defaultdict(int)
        for name, size in connection.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"):
            tables[_table_of(name, owners.get(name, name))] += int(size)
            kinds[_kind(name, types.get(name, "table"))] += int(size)
    finally:
        connection.close()
    total = sum(
        Path(f"{path}{suffix}").stat().st_size
        for suffix in ("", "-wal", "-shm")
        if Path(f"{path}{suffix}").exists()
    )
    groups: dict[str, int] = defaultdict(int)
    for table, size in tables.items():
        groups[_GROUPS.get(table, "other")] += size
    return {"bytes": total, "groups": dict(groups), "tables": dict(tables), "kinds": dict(kinds)}


def _kind(name: str, type_: str) -> str:
    """What a b-tree holds: the rows themselves, a unique constraint's index (which any
    correct schema needs), a secondary index, or full-text search."""
    if name.startswith("search_"):
        return "full_text"
    if name.startswith("sqlite_autoindex_"):
        return "unique"
    return "indexes" if type_ == "index" else "rows"


def pg_size(conninfo: str) -> dict[str, Any]:
    """The database's size, and its tables' (with indexes and TOAST) by group."""
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as connection:
        row = connection.execute("SELECT pg_database_size(current_database())").fetchone()
        total = int(row[0]) if row else 0
        rows = connection.execute(
            "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind = 'r'"
        ).fetchall()
    tables = {str(name): int(size) for name, size in rows}
    groups: dict[str, int] = defaultdict(int)
    for table, size in tables.items():
        groups[_GROUPS.get(table, "other")] += size
    return {"bytes": total, "groups": dict(groups), "tables": tables}


def _connect(engine: str, target: str) -> Any:
    if engine == "sqlite":
        return sqlite3.connect(target)
    import psycopg

    return psycopg.connect(target)


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(_CENT_FRACTION)


def _json(value: Any) -> Any:
    """A JSON column's value: SQLite gives its text, psycopg the decoded jsonb."""
    return json.loads(value) if isinstance(value, str) else value


def _agent_problems(connection: Any, plan: Plan) -> list[str]:
    """Each agent at its last save's version and state, its creation its only transition,
    and the newest MAX_SNAPSHOTS of its snapshots kept, the newest holding that state."""
    problems = []
    last = plan.last_agent_save
    rows = connection.execute(
        "SELECT agent_id, status, version, state_data, state_data_zstd FROM agents"
    ).fetchall()
    if len(rows) != len(last):
        problems.append(f"agents: {len(rows)} rows, not {len(last)}")
    for agent_id, status, version, data, blob in rows:
        save = last.get(agent_id)
        wanted = None if save is None else save.expected_version + 1
        if version != wanted or status != AGENT_STATUS or blob is not None:
            problems.append(f"agent {agent_id}: version {version} or status {status} wrong")
            break
        if save is None or _json(data) != save.state_data:
            problems.append(f"agent {agent_id}: state is not its last save's")
            break
    transitions = connection.execute(
        "SELECT count(*) FROM state_transitions WHERE state_before IS NULL"
    ).fetchone()[0]
    if transitions != len(last) or _count_of(connection, "state_transitions") != len(last):
        problems.append(f"state_transitions: not one creation per agent ({transitions})")
    kept: dict[str, list[Any]] = defaultdict(list)
    for agent_id, payload, size in connection.execute(
        "SELECT agent_id, payload, size_bytes FROM snapshots ORDER BY pk DESC"
    ):
        kept[agent_id].append((_json(payload), size))
    for agent_id, taken in plan.snapshot_counts.items():
        if len(kept[agent_id]) != min(taken, MAX_SNAPSHOTS):
            problems.append(f"agent {agent_id}: {len(kept[agent_id])} snapshots kept")
            break
        save = last[agent_id]
        wanted_payload = {
            "status": AGENT_STATUS,
            "state_data": save.state_data,
            "version": save.expected_version + 1,
        }
        text = json.dumps(wanted_payload, ensure_ascii=False, separators=(",", ":"))
        if kept[agent_id][0] != (wanted_payload, len(text.encode())):
            problems.append(f"agent {agent_id}: newest snapshot's payload or size wrong")
            break
    if sum(len(rows) for rows in kept.values()) != _count_of(connection, "snapshots"):
        problems.append("snapshots: some belong to no agent of the plan")
    return problems


def _count_of(connection: Any, table: str) -> int:
    """Rows in `table` (one of ours: never user input)."""
    return int(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def ops_problems(engine: str, target: str, plan: Plan) -> list[str]:
    """What a statekeeper-schema store should hold after the ops run, and does not."""
    problems = []
    connection = _connect(engine, target)
    try:

        def count(table: str) -> int:
            return int(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

        n = plan.n
        wanted = {
            "sessions": n,
            "phase_completions": n,
            "workflow_context": len(plan.last_phase),
            "chat_messages": n,
            # a session and a phase each; an agent's creation; a snapshot
            "events": 2 * n + len(plan.agents) + len(plan.snapshot_targets),
        }
        for table, rows in wanted.items():
            if count(table) != rows:
                problems.append(f"{table}: {count(table)} rows, not {rows}")
        tokens = plan.expected_tokens()
        for sid, cost, tokens_in, tokens_out in connection.execute(
            "SELECT id, cost_usd, tokens_in, tokens_out FROM sessions"
        ):
            expected = plan.expected_cost.get(sid, Decimal(0)).quantize(_CENT_FRACTION)
            if _decimal(cost) != expected or [tokens_in, tokens_out] != tokens.get(sid, [0, 0]):
                problems.append(f"session {sid}: totals {cost} {tokens_in} {tokens_out} wrong")
                break
        for sid, version, data in connection.execute(
            "SELECT session_id, version, data FROM workflow_context"
        ):
            value = json.loads(data) if isinstance(data, str) else data
            if version != plan.phase_counts[sid] or value != plan.last_phase[sid].context:
                problems.append(f"workflow_context of {sid}: version {version} or data wrong")
                break
        problems += _agent_problems(connection, plan)
    finally:
        connection.close()
    return problems


def import_digest(engine: str, target: str) -> dict[str, Any]:
    """Row counts after a legacy import, and a few rows to compare between implementations."""
    connection = _connect(engine, target)
    try:
        digest: dict[str, Any] = {
            table: int(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
            for table in ("sessions", "instances", "chat_messages", "events")
        }
        samples = (
            "SELECT id, kind, task, status, created_at, updated_at, completed_at, duration_ms, "
            "model, winner_instance, files_changed FROM sessions ORDER BY id LIMIT 3",
            "SELECT session_id, instance_number, branch, status, output, start_time, end_time "
            "FROM instances ORDER BY session_id, instance_number LIMIT 4",
            "SELECT id, session_id, role, content, created_at, instance_number "
            "FROM chat_messages ORDER BY id LIMIT 4",
        )
        digest["sample"] = [
            [repr(tuple(row)) for row in connection.execute(sample).fetchall()]
            for sample in samples
        ]
    finally:
        connection.close()
    return digest
