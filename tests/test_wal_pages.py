"""What each write commits to the WAL (scripts/wal_pages.py), held to a budget.

Pages per commit are what a write costs at synchronous=FULL beyond its Python: each one is
written and synced before the commit returns. They are counted, not timed, so a change that
makes a write touch another index or table fails here, on any machine. The budgets are the
counts measured when revision 0009 landed, plus about half a page for page splits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import wal_pages

from statekeeper import StateManager

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


def test_a_saver_put_of_a_known_thread_writes_its_checkpoint_alone(tmp_path: Path) -> None:
    """StatekeeperSaver.put commits what SqliteSaver.put does: the checkpoint row and its key.
    Its thread's session row is rewritten only when over a second old; the rows are dated
    ahead here, so the page count cannot depend on this machine's speed."""
    pytest.importorskip("langgraph.checkpoint.base", reason="the langgraph extra is not installed")
    from langgraph.checkpoint.base import empty_checkpoint

    from statekeeper.integrations.langgraph import StatekeeperSaver

    path = tmp_path / "statekeeper.db"
    with StateManager(path, synchronous="full") as sm, StatekeeperSaver(sm) as saver:

        def put(i: int) -> None:
            checkpoint = empty_checkpoint()
            checkpoint["channel_values"] = {"output": wal_pages.OUTPUT, "step": i}
            config: Any = {"configurable": {"thread_id": f"t{i % 50}", "checkpoint_ns": ""}}
            saver.put(config, checkpoint, {"step": i}, {})

        for i in range(200):
            put(i)
        with sm.engine.begin() as connection:
            connection.exec_driver_sql("UPDATE sessions SET updated_at = '2999-01-01 00:00:00'")
        measured = wal_pages.measure(path, put)
    assert set(measured.by_btree) - _NOT_BTREES == {
        "graph_checkpoints",
        "sqlite_autoindex_graph_checkpoints_1",
    }
    assert measured.pages <= 3.3  # measured 2.8, plus half a page for splits
