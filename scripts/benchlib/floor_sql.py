"""The floor: the statements statekeeper issues, written by hand for sqlite3 and psycopg.

This is the one place to edit when statekeeper's statements change. Statements are written
once, with `?` placeholders (sqlite3's qmark style); `sql()` turns them into psycopg's `%s`
and applies the few PostgreSQL differences listed in `POSTGRESQL`. No statement may contain
a literal `?` or `%`.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from benchlib.workload import SEARCH_LIMIT

__all__ = [
    "PRAGMAS",
    "STATEMENTS",
    "SearchTemplate",
    "search_sql",
    "search_templates",
    "sql",
    "words_of",
]

PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA synchronous={synchronous}",
    "PRAGMA busy_timeout=5000",
    "PRAGMA temp_store=MEMORY",
)
"""statekeeper's per-connection SQLite setup (config.py), with the same synchronous level."""

_SESSION_COLUMNS = (
    "pk, id, workspace_id, kind, subject, task, status, created_at, updated_at, completed_at, "
    "duration_ms, cost_usd, tokens_in, tokens_out, output_markdown, error_message, model, "
    "timeout_seconds, preserve_worktrees, winner_instance, runtime_mix, files_changed, "
    "lines_added, lines_deleted, metadata"
)
_SUMMARY_COLUMNS = (
    "id, subject, kind, status, workspace_id, created_at, completed_at, duration_ms, cost_usd"
)

STATEMENTS: dict[str, str] = {
    # create_session: BEGIN IMMEDIATE; insert_session; insert_event; COMMIT
    "insert_session": (
        "INSERT INTO sessions (id, workspace_id, kind, subject, task, status, created_at, "
        "updated_at, cost_usd, tokens_in, tokens_out, model, metadata) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ),
    "insert_event": (
        "INSERT INTO events (id, session_id, event_type, actor_type, actor_id, content, "
        "metadata, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    ),
    # save_phase_completion: BEGIN IMMEDIATE; lock_session; previous_phase;
    # insert_phase (or replace_phase); set_totals; upsert_context; insert_event; COMMIT
    "lock_session": "SELECT status, created_at, cost_usd, tokens_in, tokens_out "
    "FROM sessions WHERE id = ?",
    "previous_phase": "SELECT id, cost_usd, tokens_in, tokens_out FROM phase_completions "
    "WHERE session_id = ? AND phase_id = ?",
    "insert_phase": (
        "INSERT INTO phase_completions (session_id, phase_id, completed_at, duration_ms, "
        "output, cost_usd, tokens_in, tokens_out) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    ),
    "replace_phase": (
        "UPDATE phase_completions SET completed_at = ?, duration_ms = ?, output = ?, "
        "cost_usd = ?, tokens_in = ?, tokens_out = ? WHERE id = ?"
    ),
    "set_totals": "UPDATE sessions SET updated_at = ?, cost_usd = ?, tokens_in = ?, "
    "tokens_out = ? WHERE id = ?",
    "upsert_context": (
        "INSERT INTO workflow_context (session_id, data, version, updated_at) "
        "VALUES (?, ?, 1, ?) ON CONFLICT (session_id) DO UPDATE SET data = excluded.data, "
        "version = workflow_context.version + 1, updated_at = excluded.updated_at"
    ),
    # load_context: BEGIN; load_context; COMMIT
    "load_context": (
        "SELECT workflow_context.data, (SELECT phase_id FROM phase_completions "
        "WHERE session_id = sessions.id ORDER BY id DESC LIMIT 1) AS last_phase, "
        "sessions.cost_usd, sessions.status FROM sessions LEFT OUTER JOIN workflow_context "
        "ON workflow_context.session_id = sessions.id WHERE sessions.id = ?"
    ),
    # get_total_sessions, get_statistics: BEGIN; the tally's sums (revision 0008); COMMIT
    "total_sessions": "SELECT coalesce(sum(sessions), 0), count(*) FROM tally_sessions",
    "statistics": (
        "SELECT coalesce(sum(sessions), 0), coalesce(sum(completed), 0), "
        "coalesce(sum(failed), 0), coalesce(sum(completed_cost_units), 0), "
        "coalesce(sum(completed_timed), 0), coalesce(sum(completed_ms), 0), count(*) "
        "FROM tally_sessions"
    ),
    # get_session: BEGIN; get_session; COMMIT
    "get_session": f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE id = ?",
    # get_session_history: BEGIN; [cursor_of;] history or history_before; COMMIT
    "history": f"SELECT {_SUMMARY_COLUMNS} FROM sessions ORDER BY created_at DESC, id DESC LIMIT ?",
    "cursor_of": "SELECT created_at, id FROM sessions WHERE id = ?",
    "history_before": f"SELECT {_SUMMARY_COLUMNS} FROM sessions "
    "WHERE (created_at, id) < (?, ?) ORDER BY created_at DESC, id DESC LIMIT ?",
    # add_chat_message: BEGIN IMMEDIATE; touch_session; insert_chat; COMMIT
    "touch_session": "UPDATE sessions SET updated_at = ? WHERE id = ? RETURNING status",
    "insert_chat": (
        "INSERT INTO chat_messages (id, session_id, role, content, created_at, "
        "instance_number) VALUES (?, ?, ?, ?, ?, ?)"
    ),
    # get_chat_history: BEGIN; chat_history; COMMIT
    "chat_history": (
        "SELECT seq, id, session_id, role, content, created_at, instance_number "
        "FROM chat_messages WHERE session_id = ? ORDER BY seq LIMIT ?"
    ),
    # the agents' untimed first saves: BEGIN IMMEDIATE; lock_agent (no row); insert_agent;
    # insert_transition; insert_event; COMMIT
    "insert_agent": (
        "INSERT INTO agents (namespace, agent_id, name, status, metadata, state_data, "
        "state_data_zstd, version, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING "
        "RETURNING namespace, agent_id"
    ),
    "insert_transition": (
        "INSERT INTO state_transitions (namespace, agent_id, state_before, state_after, "
        "reason, metadata, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
    ),
    # save_agent_state (a versioned save, status unchanged): BEGIN IMMEDIATE; lock_agent;
    # update_agent; COMMIT (a status change would add insert_transition and insert_event)
    "lock_agent": (
        "SELECT name, status, version, deleted_at, created_at, state_data, state_data_zstd "
        "FROM agents WHERE namespace = ? AND agent_id = ?"
    ),
    "update_agent": (
        "UPDATE agents SET name = ?, status = ?, metadata = ?, state_data = ?, "
        "state_data_zstd = ?, version = ?, updated_at = ? WHERE namespace = ? AND agent_id = ?"
    ),
    # create_snapshot of an agent: BEGIN IMMEDIATE; lock_agent; insert_snapshot;
    # rotate_agent_snapshots; insert_event; COMMIT
    "insert_snapshot": (
        "INSERT INTO snapshots (id, session_id, namespace, agent_id, description, payload, "
        "payload_zstd, size_bytes, created_at, expires_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ),
    "rotate_agent_snapshots": (
        "DELETE FROM snapshots WHERE pk IN (SELECT pk FROM snapshots "
        "WHERE namespace = ? AND agent_id = ? ORDER BY pk DESC LIMIT -1 OFFSET ?)"
    ),
    # legacy import: per 500 sessions, BEGIN IMMEDIATE; executemany of import_session,
    # import_instance, insert_chat and insert_event; COMMIT
    "import_session": (
        "INSERT INTO sessions (id, workspace_id, kind, subject, task, status, created_at, "
        "updated_at, completed_at, duration_ms, cost_usd, tokens_in, tokens_out, model, "
        "timeout_seconds, preserve_worktrees, winner_instance, runtime_mix, files_changed, "
        "lines_added, lines_deleted, metadata) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ),
    "import_instance": (
        "INSERT INTO instances (session_id, instance_number, worktree_path, branch, "
        "agent_name, status, tmux_session_id, output, start_time, end_time, files_changed, "
        "lines_added, lines_deleted, runtime, model, runtime_label) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ),
    # scale: the untimed bulk load (the FTS triggers fill the SQLite index)
    "bulk_session": (
        "INSERT INTO sessions (id, kind, task, status, created_at, updated_at, cost_usd, "
        "tokens_in, tokens_out, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ),
}
"""Every floor statement, by name, in SQLite's dialect with qmark parameters."""

POSTGRESQL: dict[str, str] = {
    # The session and agent rows are locked against concurrent writers (SQLite: BEGIN
    # IMMEDIATE).
    "lock_session": STATEMENTS["lock_session"] + " FOR UPDATE",
    "lock_agent": STATEMENTS["lock_agent"] + " FOR UPDATE",
    # SQLAlchemy returns the new key of a serial table on PostgreSQL, unasked.
    "insert_snapshot": STATEMENTS["insert_snapshot"] + " RETURNING pk",
    "rotate_agent_snapshots": STATEMENTS["rotate_agent_snapshots"].replace("LIMIT -1", "LIMIT ALL"),
}
"""Statements that differ on PostgreSQL (before the placeholder conversion)."""

_NAMED = re.compile(r"(?<![:\w]):(\w+)")
_SENTINEL = "zzs{}zz"  # a word that fills in for the i-th word of a query
MAX_WORDS = 16

_BEHIND, _CATCH_UP = "behind", "catch up "
SearchTemplate = tuple[str, dict[str, Any]]
"""statekeeper's search SQL for some number of words, and its parameters with sentinels."""


def sql(dialect: str, name: str) -> str:
    """Statement `name` for 'sqlite' (qmark) or 'postgresql' (psycopg's %s)."""
    if dialect == "sqlite":
        return STATEMENTS[name]
    return POSTGRESQL.get(name, STATEMENTS[name]).replace("?", "%s")


def words_of(query: str) -> list[str]:
    """The words statekeeper searches for, as services/search.py splits them (restated here,
    since the floor's process never imports statekeeper): runs of letters, numbers, marks
    and private use; the first 16 distinct, compared case-insensitively, sent as written."""
    spaced = re.sub(
        r"[\W_]",
        lambda m: m[0] if unicodedata.category(m[0]) in ("Mn", "Mc", "Me", "Co") else " ",
        query,
    )
    words: dict[str, str] = {}
    for word in spaced.split():
        words.setdefault(word.lower(), word)
    return list(words.values())[:MAX_WORDS]


def search_templates(dialect: str) -> dict[str, SearchTemplate]:
    """statekeeper's own search statement (dialects.search_statement) for 1 to 16 words.

    Made once by the parent process and handed to the floor's process, which so never
    imports statekeeper (its peak memory stays its own). Keys are word counts, as text.
    """
    from statekeeper.dialects import search_statement

    templates = {}
    for count in range(1, MAX_WORDS + 1):
        words = [_SENTINEL.format(i) for i in range(count)]
        text, params = search_statement(dialect, words, SEARCH_LIMIT)
        if dialect == "postgresql":
            # psycopg: :name -> %(name)s; '::regconfig' casts are left alone by the lookbehind.
            text = _NAMED.sub(r"%(\1)s", text.replace("%", "%%"))
        templates[str(count)] = (text, params)
    if dialect == "sqlite":
        # A search first indexes what was added since the last one (revisions 0007, 0009).
        from statekeeper.dialects import LAZY_INDEXES

        behind, catch_up = LAZY_INDEXES["sessions"]
        templates[_BEHIND] = (behind, {})
        templates.update({f"{_CATCH_UP}{i}": (text, {}) for i, text in enumerate(catch_up)})
    return templates


def lazy_index_sql(templates: dict[str, SearchTemplate]) -> tuple[str, list[str]] | None:
    """SQLite: whether the full-text indexes lag (a statement), and the statements that
    bring them up to date, in order; None on PostgreSQL."""
    if _BEHIND not in templates:
        return None
    catch_up: list[str] = []
    while f"{_CATCH_UP}{len(catch_up)}" in templates:
        catch_up.append(templates[f"{_CATCH_UP}{len(catch_up)}"][0])
    return templates[_BEHIND][0], catch_up


def search_sql(templates: dict[str, SearchTemplate], query: str) -> SearchTemplate | None:
    """The search statement and parameters for `query`; None when it has no words."""
    words = words_of(query)
    if not words:
        return None
    text, pattern = templates[str(len(words))]
    params = {}
    for name, value in pattern.items():
        if isinstance(value, str):
            for i, word in enumerate(words):
                value = value.replace(_SENTINEL.format(i), word)
        params[name] = value
    return text, params
