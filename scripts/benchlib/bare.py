"""The bare store: what a user of stdlib sqlite3 alone would write, on a schema of its own.

The floor (stores.FloorStore) runs statekeeper's own statements on statekeeper's schema, so it
prices the library's Python layers only. This store prices the whole design: a minimal schema
(three tables, one secondary index, no full-text index, no events, no triggers) made with
plain DDL, the same pragmas as statekeeper, writes in `BEGIN IMMEDIATE` ... `COMMIT`, reads as
single autocommit statements. Issue 13 measures statekeeper's reads against it ("within 3x of
the bare driver"). It has only the operations that comparison needs; the runner skips the
others, as it does for the peers.
"""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal
from pathlib import Path

from benchlib.floor_sql import PRAGMAS
from benchlib.stores import SYNCHRONOUS, Loaded, Store, sqlite_now
from benchlib.workload import HISTORY_LIMIT, PhaseArgs, Plan, SessionSpec

__all__ = ["BARE_OPS", "BareStore", "bare_problems"]

BARE_OPS = frozenset(
    {
        "create_session",
        "save_phase_completion",
        "load_context",
        "get_session",
        "get_session_history",
    }
)
"""The user-level operations the bare store has: the workload's sessions, phases and context."""

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS sessions ("
    " id TEXT PRIMARY KEY, task TEXT NOT NULL, model TEXT, status TEXT NOT NULL,"
    " created_at TEXT NOT NULL, updated_at TEXT NOT NULL, cost_usd TEXT NOT NULL,"
    " tokens_in INTEGER NOT NULL, tokens_out INTEGER NOT NULL, metadata TEXT NOT NULL)",
    # The history page, newest first, and its keyset continuation.
    "CREATE INDEX IF NOT EXISTS sessions_created ON sessions (created_at, id)",
    "CREATE TABLE IF NOT EXISTS phases ("
    " session_id TEXT NOT NULL REFERENCES sessions (id), phase_id TEXT NOT NULL,"
    " completed_at TEXT NOT NULL, duration_ms INTEGER NOT NULL, output TEXT NOT NULL,"
    " cost_usd TEXT NOT NULL, tokens_in INTEGER NOT NULL, tokens_out INTEGER NOT NULL,"
    " PRIMARY KEY (session_id, phase_id))",
    "CREATE TABLE IF NOT EXISTS context ("
    " session_id TEXT PRIMARY KEY REFERENCES sessions (id), data TEXT NOT NULL,"
    " updated_at TEXT NOT NULL)",
)
"""Plain DDL: cost as exact decimal text, JSON as text, timestamps as naive-UTC text."""

_SUMMARY = "SELECT id, task, model, status, created_at, cost_usd FROM sessions "
SQL = {
    "insert_session": (
        "INSERT INTO sessions (id, task, model, status, created_at, updated_at, cost_usd,"
        " tokens_in, tokens_out, metadata) VALUES (?, ?, ?, 'running', ?, ?, '0', 0, 0, ?)"
    ),
    "lock_session": "SELECT status, cost_usd, tokens_in, tokens_out FROM sessions WHERE id = ?",
    "previous_phase": (
        "SELECT cost_usd, tokens_in, tokens_out FROM phases WHERE session_id = ? AND phase_id = ?"
    ),
    # A re-saved phase keeps its rowid, so it stays where it was in the session's order.
    "upsert_phase": (
        "INSERT INTO phases (session_id, phase_id, completed_at, duration_ms, output, cost_usd,"
        " tokens_in, tokens_out) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (session_id, phase_id) DO UPDATE SET completed_at = excluded.completed_at,"
        " duration_ms = excluded.duration_ms, output = excluded.output,"
        " cost_usd = excluded.cost_usd, tokens_in = excluded.tokens_in,"
        " tokens_out = excluded.tokens_out"
    ),
    "set_totals": (
        "UPDATE sessions SET updated_at = ?, cost_usd = ?, tokens_in = ?, tokens_out = ?"
        " WHERE id = ?"
    ),
    "upsert_context": (
        "INSERT INTO context (session_id, data, updated_at) VALUES (?, ?, ?)"
        " ON CONFLICT (session_id) DO UPDATE SET data = excluded.data,"
        " updated_at = excluded.updated_at"
    ),
    "load_context": (
        "SELECT context.data, (SELECT phase_id FROM phases WHERE phases.session_id ="
        " context.session_id ORDER BY phases.rowid DESC LIMIT 1), sessions.cost_usd"
        " FROM context JOIN sessions ON sessions.id = context.session_id"
        " WHERE context.session_id = ?"
    ),
    "get_session": (
        "SELECT id, task, model, status, created_at, updated_at, cost_usd, tokens_in,"
        " tokens_out, metadata FROM sessions WHERE id = ?"
    ),
    "history": _SUMMARY + "ORDER BY created_at DESC, id DESC LIMIT ?",
    "cursor_of": "SELECT created_at, id FROM sessions WHERE id = ?",
    "history_before": (
        _SUMMARY + "WHERE (created_at, id) < (?, ?) ORDER BY created_at DESC, id DESC LIMIT ?"
    ),
}
"""Every statement the bare store runs, qmark style."""


class BareStore(Store):
    """stdlib sqlite3 on its own minimal schema: the bare-driver baseline for issue 13."""

    label = "bare sqlite3"
    supports = BARE_OPS

    def __init__(self, path: str, synchronous: str) -> None:
        # isolation_level=None: sqlite3 opens no transaction itself. Writes send BEGIN
        # IMMEDIATE; reads are single statements, each its own (autocommit) transaction.
        self.connection = sqlite3.connect(path, isolation_level=None)
        for pragma in PRAGMAS:  # statekeeper's per-connection setup, at the job's level
            self.connection.execute(pragma.format(synchronous=synchronous.upper()))
        for statement in SCHEMA:  # untimed: the store's own schema, made by itself
            self.connection.execute(statement)
        self.cur = self.connection.cursor()

    def durability(self) -> str:
        level = self.cur.execute("PRAGMA synchronous").fetchone()[0]
        return SYNCHRONOUS.get(int(level), str(level))

    def create_session(self, spec: SessionSpec) -> None:
        now = sqlite_now()
        values = (spec.id, spec.task, spec.model, now, now, json.dumps(spec.metadata))
        self.cur.execute("BEGIN IMMEDIATE")
        try:
            self.cur.execute(SQL["insert_session"], values)
        except BaseException:
            self.cur.execute("ROLLBACK")
            raise
        self.cur.execute("COMMIT")

    def save_phase_completion(self, phase: PhaseArgs) -> None:
        """The phase, the session's running totals (exact decimal cost) and the context, in
        one transaction; a re-saved phase replaces its earlier cost and tokens."""
        p, cur = phase, self.cur
        output, context = json.dumps(p.output), json.dumps(p.context)
        cur.execute("BEGIN IMMEDIATE")
        try:
            session = cur.execute(SQL["lock_session"], (p.session_id,)).fetchone()
            if session is None or session[0] == "completed":
                raise LookupError(f"session {p.session_id} is missing or completed")
            cost = Decimal(session[1]) + p.cost_usd
            tokens_in, tokens_out = session[2] + p.tokens_in, session[3] + p.tokens_out
            earlier = cur.execute(SQL["previous_phase"], (p.session_id, p.phase_id)).fetchone()
            if earlier is not None:
                cost -= Decimal(earlier[0])
                tokens_in, tokens_out = tokens_in - earlier[1], tokens_out - earlier[2]
            now = sqlite_now()
            cur.execute(
                SQL["upsert_phase"],
                (
                    p.session_id,
                    p.phase_id,
                    now,
                    p.duration_ms,
                    output,
                    str(p.cost_usd),
                    p.tokens_in,
                    p.tokens_out,
                ),
            )
            cur.execute(SQL["set_totals"], (now, str(cost), tokens_in, tokens_out, p.session_id))
            cur.execute(SQL["upsert_context"], (p.session_id, context, now))
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")

    def load_context(self, session_id: str) -> Loaded | None:
        """The context (parsed), the last phase saved (first saved, if re-saved) and the
        accumulated cost as a Decimal; None when the session has no context."""
        row = self.cur.execute(SQL["load_context"], (session_id,)).fetchone()
        if row is None:
            return None
        return Loaded(json.loads(row[0]), row[1], Decimal(row[2]))

    def get_session(self, session_id: str) -> str | None:
        """The session's row is read whole; as the floor does, it is given back as the
        driver returns it (the id is what the checker compares), unconverted."""
        row = self.cur.execute(SQL["get_session"], (session_id,)).fetchone()
        return None if row is None else str(row[0])

    def get_session_history(self, before: str | None) -> list[str]:
        """The ids of the newest page, or of the page after session `before`."""
        if before is None:
            rows = self.cur.execute(SQL["history"], (HISTORY_LIMIT,)).fetchall()
        else:
            # Two autocommit statements: the cursor's (created_at, id) never changes, so
            # reading it apart from the page cannot give a wrong page.
            cursor = self.cur.execute(SQL["cursor_of"], (before,)).fetchone()
            if cursor is None:
                raise LookupError(f"no session {before}")
            rows = self.cur.execute(SQL["history_before"], (*cursor, HISTORY_LIMIT)).fetchall()
        return [row[0] for row in rows]

    def close(self) -> None:
        self.cur.close()
        self.connection.close()


def bare_problems(path: Path, plan: Plan) -> list[str]:
    """What the bare store's database should hold after the ops run, and does not: every
    session and phase, each session's exact totals, and the last context of each."""
    problems = []
    connection = sqlite3.connect(path)
    try:
        wanted = {"sessions": plan.n, "phases": plan.n, "context": len(plan.last_phase)}
        for table, rows in wanted.items():
            # `table` is one of the three names above, never input.
            count = connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            if count != rows:
                problems.append(f"{table}: {count} rows, not {rows}")
        tokens = plan.expected_tokens()
        for sid, cost, tokens_in, tokens_out in connection.execute(
            "SELECT id, cost_usd, tokens_in, tokens_out FROM sessions"
        ):
            expected = plan.expected_cost.get(sid, Decimal(0))
            if Decimal(cost) != expected or [tokens_in, tokens_out] != tokens.get(sid, [0, 0]):
                problems.append(f"session {sid}: totals {cost} {tokens_in} {tokens_out} wrong")
                break
        for sid, data in connection.execute("SELECT session_id, data FROM context"):
            if json.loads(data) != plan.last_phase[sid].context:
                problems.append(f"context of {sid}: not its last phase's")
                break
    finally:
        connection.close()
    return problems
