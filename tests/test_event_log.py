"""The event log as an audit trail: what statekeeper appends, paging, and full-text search."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from statekeeper import AgentState, InvalidInput, StateManager


def test_the_log_is_a_complete_trail_of_a_run(sm: StateManager) -> None:
    sid = sm.create_session("acme")
    sm.save_phase_completion(sid, "p1", {}, 1, "0.1")
    snapshot = sm.create_snapshot(session_id=sid)
    sm.update_session_status(sid, "paused")
    sm.restore_snapshot(snapshot)
    sm.record_event("note", "operator looked", session_id=sid, actor_type="user", actor_id="ann")
    sm.update_session_status(sid, "completed")
    trail = sm.get_events(sid)
    assert [e.event_type for e in trail] == [
        "session.created",
        "phase.completed",
        "snapshot.created",
        "session.status_changed",
        "snapshot.restored",
        "note",
        "session.status_changed",
    ]
    assert [e.created_at for e in trail] == sorted(e.created_at for e in trail)
    assert (trail[5].actor_type, trail[5].actor_id) == ("user", "ann")


def test_events_page_in_append_order(sm: StateManager) -> None:
    sid = sm.create_session()
    ids = [sm.record_event("tick", f"tick {i}", session_id=sid) for i in range(5)]
    everything = [e.id for e in sm.get_events(sid)][1:]  # after session.created
    assert everything == ids
    first = sm.get_events(sid, limit=3)
    second = sm.get_events(sid, limit=3, after=first[-1].id)
    assert [e.id for e in first + second] == [e.id for e in sm.get_events(sid)]
    assert sm.get_events(sid, after=ids[-1]) == []
    by_type = sm.get_events_by_type("tick", limit=2)
    assert [e.id for e in by_type] == ids[:2]
    assert [e.id for e in sm.get_events_by_type("tick", after=ids[1])] == ids[2:]
    bad_calls: list[Callable[[], object]] = [
        lambda: sm.get_events(sid, after="nope"),
        lambda: sm.get_events(sid, limit=0),
        lambda: sm.get_events_by_type("tick", limit=-1),
    ]
    for bad in bad_calls:
        with pytest.raises(InvalidInput):
            bad()


def test_search_matches_all_words_newest_first_and_pages(sm: StateManager) -> None:
    sid = sm.create_session()
    sm.record_event("deploy", "Deploy of billing failed: timeout", session_id=sid)
    sm.record_event("deploy", "deploy of search succeeded")
    sm.record_event("deploy", "Deploy of billing FAILED again")
    sm.record_event("alert", "billing failed over to the replica")
    hits = sm.search_events("billing failed")
    assert [e.content for e in hits] == [
        "billing failed over to the replica",
        "Deploy of billing FAILED again",
        "Deploy of billing failed: timeout",
    ]
    page = sm.search_events("billing failed", limit=2)
    rest = sm.search_events("billing failed", limit=2, before=page[-1].id)
    assert [e.id for e in page + rest] == [e.id for e in hits]
    assert [e.event_type for e in sm.search_events("billing", event_type="alert")] == ["alert"]
    assert [e.content for e in sm.search_events("deploy", session_id=sid)] == [
        "Deploy of billing failed: timeout"
    ]
    assert sm.search_events("billing succeeded") == []


@pytest.mark.parametrize(
    "query",
    [
        '"',
        "NEAR(a b)",
        "billing*",
        "a AND OR NOT",
        "col:val",
        "^x",
        "'; DROP TABLE events; --",
        "\x00",
    ],
)
def test_any_text_is_safe_to_search(sm: StateManager, query: str) -> None:
    sm.record_event("note", "billing AND failed NEAR the end")
    assert isinstance(sm.search_events(query), list)
    assert len(sm.search_events("billing")) == 1


def test_agent_changes_are_in_the_log_and_searchable(sm: StateManager) -> None:
    sm.save_agent_state(AgentState(agent_id="planner", status="running"))
    sm.update_agent_status("planner", "failed")
    hits = sm.search_events("planner failed")
    assert [e.event_type for e in hits] == ["agent.status_changed"]
    assert sm.search_events("   ") == []


def test_bad_event_input_names_the_field_and_writes_nothing(sm: StateManager) -> None:
    sid = sm.create_session()
    before = len(sm.get_events(sid))
    for call, field in (
        (lambda: sm.record_event("", "x", session_id=sid), "event_type"),
        (lambda: sm.record_event("t" * 65, "x", session_id=sid), "event_type"),
        (lambda: sm.record_event("t", "\x00", session_id=sid), "content"),
        (lambda: sm.record_event("t", "x", session_id=sid, actor_type="a" * 65), "actor_type"),
        (lambda: sm.record_event("t", "x", session_id=sid, metadata=[]), "metadata"),  # type: ignore[arg-type]
        (lambda: sm.search_events(3), "query"),  # type: ignore[arg-type]
        (lambda: sm.search_events("x", limit=0), "limit"),
        (lambda: sm.search_events("x", before="nope"), "before"),
    ):
        with pytest.raises(InvalidInput) as caught:
            call()
        assert caught.value.field == field
    assert len(sm.get_events(sid)) == before


def _fts_consistent(sm: StateManager) -> None:
    """SQLite: the event index holds exactly the logged events (FTS5's own full check)."""
    if sm.engine.dialect.name == "sqlite":
        with sm.engine.begin() as connection:
            connection.exec_driver_sql(
                "INSERT INTO search_events(search_events, rank) VALUES ('integrity-check', 1)"
            )


def test_the_index_stays_exact_through_deletes_and_reused_keys(sm: StateManager) -> None:
    keep = sm.create_session()
    sm.record_event("note", "alpha kept", session_id=keep)
    doomed = sm.create_session()
    for i in range(3):
        sm.record_event("note", f"bravo doomed {i}", session_id=doomed)
    assert len(sm.search_events("bravo")) == 3  # indexes everything logged so far
    _fts_consistent(sm)
    sm.delete_session(doomed)  # the newest events go: SQLite may hand their keys out again
    reused = [sm.record_event("note", f"charlie fresh {i}") for i in range(2)]
    assert sm.search_events("bravo") == []
    assert [e.id for e in sm.search_events("charlie")] == reused[::-1]
    assert [e.content for e in sm.search_events("alpha")] == ["alpha kept"]
    _fts_consistent(sm)
    sm.record_event("note", "delta later")
    sm.delete_session(keep)
    assert sm.search_events("alpha") == []
    assert [e.content for e in sm.search_events("delta")] == ["delta later"]
    _fts_consistent(sm)


def test_search_inside_a_block_sees_the_block_s_own_events(sm: StateManager) -> None:
    sm.record_event("note", "echo committed")
    with sm.transaction():
        sm.record_event("note", "echo pending")
        assert len(sm.search_events("echo")) == 2
    assert len(sm.search_events("echo")) == 2


def test_a_rolled_back_change_leaves_no_event_and_a_committed_one_does(sm: StateManager) -> None:
    sid = sm.create_session()

    def abandoned() -> None:
        with sm.transaction():
            sm.save_phase_completion(sid, "p1", {}, 1, "0.1")
            sm.update_session_status(sid, "paused")
            sm.create_snapshot(session_id=sid)
            sm.record_event("note", "inside the block", session_id=sid)
            raise RuntimeError("abandon")

    with pytest.raises(RuntimeError):
        abandoned()
    assert [e.event_type for e in sm.get_events(sid)] == ["session.created"]
    assert sm.search_events("inside block") == []
    with sm.transaction():
        sm.save_phase_completion(sid, "p1", {}, 1, "0.1")
        sm.update_session_status(sid, "paused")
    assert [e.event_type for e in sm.get_events(sid)] == [
        "session.created",
        "phase.completed",
        "session.status_changed",
    ]


@pytest.mark.parametrize("query", ["crawler-1", "3.5", "x-1", "api.example.com", "v2.0.1"])
def test_terms_joined_by_punctuation_find_themselves_on_both_engines(
    sm: StateManager, query: str
) -> None:
    sm.record_event("note", "crawler-1 stalled at step 3.5 on x-1 via api.example.com v2.0.1")
    sm.record_event("note", "an unrelated line")
    assert [e.content for e in sm.search_events(query)] == [
        "crawler-1 stalled at step 3.5 on x-1 via api.example.com v2.0.1"
    ]
    assert len(sm.search_events(f"( {query} ) stalled")) == 1
