"""What each write commits to the WAL (scripts/wal_pages.py), held to a budget.

Pages per commit are what a write costs at synchronous=FULL beyond its Python: each one is
written and synced before the commit returns. They are counted, not timed, so a change that
makes a write touch another index or table fails here, on any machine. The budgets are the
counts measured when revision 0009 landed, plus about half a page for page splits.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import wal_pages

BUDGET = {
    "create_session": 12.3,
    "save_phase_completion": 10.3,
    "save_phase_completion with context": 12.8,
    "add_chat_message": 5.3,
}
"""Most WAL pages per commit, averaged over wal_pages.SAVES calls (measured 11.2-11.5,
9.1-9.5, 11.0-12.0 and 4.3-4.7: page splits differ from run to run)."""

_EVENT = {
    "events",
    "sqlite_autoindex_events_1",
    "ix_events_session_id_seq",
    "ix_events_event_type_seq",
    "sessions",
}
_PHASE = _EVENT | {
    "phase_completions",
    "sqlite_autoindex_phase_completions_1",
    "ix_phase_completions_session_id_id",
}
BTREES = {
    "create_session": _EVENT
    | {
        "sqlite_autoindex_sessions_1",
        "ix_sessions_status_created_at",
        "ix_sessions_kind_created_at",
        "ix_sessions_created_at_id",
        "tally_sessions",
    },
    "save_phase_completion": _PHASE,
    "save_phase_completion with context": _PHASE | {"workflow_context"},
    "add_chat_message": {
        "chat_messages",
        "sqlite_autoindex_chat_messages_1",
        "ix_chat_messages_session_id_seq",
        "sessions",
    },
}
"""The tables and indexes each write changes: one more is at least a page more per commit."""

_NOT_BTREES = {"(header)", "(new page)"}


def test_each_write_stays_within_its_page_budget(tmp_path: Path) -> None:
    with wal_pages.statekeeper_writes(tmp_path) as writes:
        measured = {
            name: wal_pages.measure(tmp_path / "statekeeper.db", write)
            for name, write in writes.items()
        }
    assert {name: m.pages for name, m in measured.items() if m.pages > BUDGET[name]} == {}
    touched = {name: set(m.by_btree) - _NOT_BTREES for name, m in measured.items()}
    assert touched == BTREES


def test_writes_are_timed_against_langgraph_in_alternating_turns(tmp_path: Path) -> None:
    pytest.importorskip("langgraph.checkpoint.sqlite", reason="the bench extra is not installed")
    with (
        wal_pages.statekeeper_writes(tmp_path) as writes,
        wal_pages.langgraph_put(tmp_path) as put,
    ):
        assert put is not None
        ratios = wal_pages.timed_against(writes, put, calls=5, rounds=2)
    assert set(ratios) == set(writes)
    assert all(len(r) == 2 and all(x > 0 for x in r) for r in ratios.values())
