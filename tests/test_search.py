"""Full-text search: sources, word semantics, staying in step with changes, hostile input."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from statekeeper import InvalidInput, StateManager
from statekeeper.services.search import MAX_WORDS, words_of


def _instance(sm: StateManager, sid: str, number: int, output: str | None) -> None:
    sm.add_instance(
        sid,
        number,
        worktree_path=f"/w/{number}",
        branch=f"b{number}",
        agent_name="claude",
        tmux_session_id=f"t{number}",
        output=output,
    )


@pytest.fixture
def corpus(sm: StateManager) -> dict[str, str]:
    login = sm.create_session(
        kind="competition", task="Fix the flaky login test in the auth module"
    )
    billing = sm.create_session(kind="ensemble", task="Refactor billing")
    sm.add_chat_message(billing, "user", "The login page is slow, and the invoice totals are off")
    _instance(sm, billing, 1, "x " * 60_000 + "stacktrace ends with TimeoutError")
    polyglot = sm.create_session(kind="debate", task="Перевести документацию 漢字 عربي")
    return {"login": login, "billing": billing, "polyglot": polyglot}


def _ids(sm: StateManager, query: str) -> list[str]:
    return [hit.session_id for hit in sm.search_sessions(query)]


def test_each_source_is_searched(sm: StateManager, corpus: dict[str, str]) -> None:
    (task,) = sm.search_sessions("flaky")
    assert (task.session_id, task.source) == (corpus["login"], "task")
    assert "[flaky]" in task.snippet
    (chat,) = sm.search_sessions("invoice")
    assert (chat.session_id, chat.source) == (corpus["billing"], "chat")
    (output,) = sm.search_sessions("TimeoutError")
    assert (output.session_id, output.source) == (corpus["billing"], "instance_output")
    assert "[timeouterror]" in output.snippet.lower()  # found past 120 KB of output


def test_every_word_must_be_held_by_the_session(sm: StateManager, corpus: dict[str, str]) -> None:
    assert sorted(_ids(sm, "login")) == sorted([corpus["login"], corpus["billing"]])
    assert _ids(sm, "login auth") == [corpus["login"]]
    # Words may sit in different places of one session: the task and the chat here.
    assert _ids(sm, "billing invoice") == [corpus["billing"]]
    assert _ids(sm, "login nowhere") == []
    assert _ids(sm, "LOGIN Auth") == [corpus["login"]]


def test_non_latin_scripts(sm: StateManager, corpus: dict[str, str]) -> None:
    for word in ("документацию", "漢字", "عربي"):
        assert _ids(sm, word) == [corpus["polyglot"]], word


def test_best_hit_first_and_limit(sm: StateManager) -> None:
    once = sm.create_session(task="deploy the service then verify metrics and logs")
    thrice = sm.create_session(task="deploy deploy deploy")
    hits = sm.search_sessions("deploy")
    assert [h.session_id for h in hits] == [thrice, once]
    assert hits[0].rank >= hits[1].rank
    assert len(sm.search_sessions("deploy", limit=1)) == 1


def test_search_follows_updates_and_deletes(sm: StateManager, corpus: dict[str, str]) -> None:
    billing = corpus["billing"]
    sm.update_instance(billing, 1, output="now it says SegmentationFault")
    assert _ids(sm, "TimeoutError") == []
    assert _ids(sm, "SegmentationFault") == [billing]
    whole = sm.get_worktree_session(billing)
    assert whole is not None
    whole.task = "Rewrite payments"
    whole.chat_history = []
    sm.save_worktree_session(whole)
    assert _ids(sm, "invoice") == []
    assert _ids(sm, "refactor") == []
    assert _ids(sm, "payments") == [billing]
    sm.delete_session(billing)
    assert _ids(sm, "payments") == [] and _ids(sm, "SegmentationFault") == []
    sm.update_session_status(corpus["login"], "completed")
    assert sm.cleanup_old_sessions(0) == 1
    assert _ids(sm, "flaky") == []


def test_search_survives_vacuum(sm: StateManager, engine_name: str) -> None:
    ids = [sm.create_session(task=f"alpha{i} common") for i in range(30)]
    for sid in ids[::2]:
        sm.delete_session(sid)
    sm.vacuum()
    for i, sid in enumerate(ids):
        assert _ids(sm, f"alpha{i}") == ([] if i % 2 == 0 else [sid])
    assert sorted(_ids(sm, "common")) == sorted(ids[1::2])


@pytest.mark.parametrize(
    "query",
    [
        "",
        "   ",
        '"',
        '"unbalanced',
        "*",
        "(",
        ")",
        "a AND OR NOT b",
        "NEAR(a b)",
        "col:x",
        "-login",
        "^login",
        "login*",
        "'; DROP TABLE sessions; --",
        "\\",
        "%_%",
        "\u200b",
        "🙂",
        "x" * 5000,
    ],
)
def test_hostile_queries_are_words_or_nothing(
    sm: StateManager, corpus: dict[str, str], query: str
) -> None:
    hits = sm.search_sessions(query)
    expected = {corpus["login"], corpus["billing"]} if "login" in query else set()
    assert {h.session_id for h in hits} <= expected
    assert sm.get_total_sessions() == 3


def test_many_words_are_capped(sm: StateManager, corpus: dict[str, str]) -> None:
    words = " ".join(f"w{i}" for i in range(100))
    assert len(words_of(words)) == MAX_WORDS
    assert sm.search_sessions(words) == []


def test_bad_search_arguments(sm: StateManager) -> None:
    with pytest.raises(InvalidInput) as info:
        sm.search_sessions(None)  # type: ignore[arg-type]
    assert info.value.field == "query"
    with pytest.raises(InvalidInput) as info:
        sm.search_sessions("x", limit=0)
    assert info.value.field == "limit"


@pytest.mark.parametrize("engine_name", ["postgresql"], indirect=True)
def test_postgres_search_uses_the_gin_indexes(sm: StateManager) -> None:
    from statekeeper.dialects import search_statement

    sql, params = search_statement("postgresql", ["login"], 20)
    with sm.engine.connect() as connection:
        connection.exec_driver_sql("SET enable_seqscan = off")
        plan = "\n".join(row[0] for row in connection.execute(sa.text(f"EXPLAIN {sql}"), params))
    for index in ("search_task_fts", "search_chat_fts", "search_output_fts"):
        assert index in plan, plan
