"""Full-text search: sources, word semantics, staying in step with changes, hostile input."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from statekeeper import InvalidInput, StateManager
from statekeeper.dialects import search_statement
from statekeeper.services.search import MAX_WORDS, excerpt, words_of


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
    billing = sm.create_session("Initech Payments", kind="ensemble", task="Refactor billing")
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
    (subject,) = sm.search_sessions("Initech")
    assert (subject.session_id, subject.source) == (corpus["billing"], "subject")
    assert subject.snippet == "[Initech] Payments"
    assert _ids(sm, "initech invoice") == [corpus["billing"]]  # subject and chat together


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


def test_words_keep_their_marks_and_spelling() -> None:
    assert words_of("नमस्ते, दुनिया!") == ["नमस्ते", "दुनिया"]
    assert words_of("Login LOGIN login İstanbul istanbul") == ["Login", "İstanbul", "istanbul"]
    assert words_of("snake_case a\x00b \ud800c 🙂 ☃ x² \ue000") == [
        "snake",
        "case",
        "a",
        "b",
        "c",
        "x²",
        "\ue000",
    ]


SCRIPTS = {
    "devanagari": "नमस्ते दुनिया",
    "thai": "สวัสดีครับ",
    "arabic": "مَرْحَبًا بالعالم",
    "hebrew": "שָׁלוֹם עולם",
    "cjk": "漢字テスト",
    "emoji": "ship it 🚀 ✓",
}


def test_words_with_combining_marks_match_whole(sm: StateManager, engine_name: str) -> None:
    ids = {script: sm.create_session(task=text) for script, text in SCRIPTS.items()}
    for script, text in SCRIPTS.items():
        assert _ids(sm, text) == [ids[script]], script
        for word in words_of(text):
            assert _ids(sm, word) == [ids[script]], word
    # Without its marks a word is another word (as without accents); prefixes, symbols miss.
    for bare in ("مرحبا", "שלום", "漢字", "🚀", "✓"):
        assert _ids(sm, bare) == [], bare
    # FTS5 unicode61 (Unicode 6.1, tokens L* N* Co) splits at most marks, PostgreSQL does
    # not; on SQLite a word's parts must still follow in order, so scattered parts miss.
    scattered = sm.create_session(task="त नमस")
    assert _ids(sm, "नमस्ते") == [ids["devanagari"]]
    fragment = sorted([ids["devanagari"], scattered]) if engine_name == "sqlite" else [scattered]
    assert sorted(_ids(sm, "नमस")) == fragment


def test_each_engine_folds_case(sm: StateManager, engine_name: str) -> None:
    dotted = sm.create_session(task="Flights to İstanbul")
    plain = sm.create_session(task="ISTANBUL weather")
    both = sorted([dotted, plain])
    # PostgreSQL lowercases İ to i; FTS5 unicode61 leaves İ as it is.
    for query, on_sqlite in (("İstanbul", [dotted]), ("İSTANBUL", [dotted]), ("istanbul", [plain])):
        assert sorted(_ids(sm, query)) == (on_sqlite if engine_name == "sqlite" else both), query


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", []),
        ("   ", []),
        ('"', []),
        ('"unbalanced', []),
        ("*", []),
        ("(", []),
        (")", []),
        ("a AND OR NOT b", []),
        ("NEAR(a b)", []),
        ("col:x", []),
        ("-login", ["login", "billing", "either"]),
        ("^login", ["login", "billing", "either"]),
        ("login*", ["login", "billing", "either"]),
        ('"auth" OR (login)', ["either"]),
        ("AUTH or LOGIN", ["either"]),
        ("login\x00auth", ["login", "either"]),
        ("\x00", []),
        ("invoice\ud800", ["billing"]),
        ("'; DROP TABLE sessions; --", []),
        ("\\", []),
        ("%_%", []),
        ("%x%", ["billing"]),
        ("\u200b", []),
        ("🙂", []),
        ("x" * 5000, []),
    ],
)
def test_hostile_queries_are_words_or_nothing(
    sm: StateManager, corpus: dict[str, str], query: str, expected: list[str]
) -> None:
    corpus["either"] = sm.create_session(task="Sign-in fails: auth or login is down")
    assert sorted(_ids(sm, query)) == sorted(corpus[name] for name in expected)
    assert sm.get_total_sessions() == 4


def test_words_past_the_sixteenth_are_ignored(sm: StateManager) -> None:
    held = [f"w{i}" for i in range(MAX_WORDS)]
    sid = sm.create_session(task=" ".join(held))
    assert _ids(sm, " ".join([*held, "absent"])) == [sid]  # "absent" ignored: a wider match
    assert _ids(sm, " ".join(["absent", *held])) == []
    assert _ids(sm, " ".join(f"w{i}" for i in range(100))) == [sid]
    assert _ids(sm, " ".join(f"other{i}" for i in range(100))) == []
    # Repeats, in any case, are one word: they do not push later words out.
    assert _ids(sm, "W0 w0 " * 50 + "absent") == []


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
    for source in ("search_subject", "search_task", "search_chat", "search_output"):
        assert f"{source}_fts" in plan, plan


@pytest.mark.parametrize("query", ["bug-2", "3.5", "parser.py", "bug-2 parser.py"])
def test_terms_joined_by_punctuation_find_their_session_on_both_engines(
    sm: StateManager, query: str
) -> None:
    sid = sm.create_session("acme", task="fix bug-2 in parser.py before 3.5 ships")
    sm.create_session("other", task="nothing to see")
    assert [hit.session_id for hit in sm.search_sessions(query)] == [sid]


def test_a_word_filling_a_long_output_gives_a_short_excerpt(sm: StateManager) -> None:
    """FTS5's snippet() scored every window against every hit: 16.7 s for one search of a
    120 KB output full of a one-letter word. The excerpt is cut around the first hit."""
    sid = sm.create_session()
    _instance(sm, sid, 1, "a " * 60_000 + "the end")
    (hit,) = sm.search_sessions("a")
    assert (hit.session_id, hit.source) == (sid, "instance_output")
    assert hit.snippet.startswith("[a] [a] [a]") and len(hit.snippet) < 200


def test_the_sqlite_statement_makes_no_snippet() -> None:
    sql, _ = search_statement("sqlite", ["a", "b"], 10)
    assert "snippet(" not in sql and "bm25(" in sql


@pytest.mark.parametrize(
    ("text", "words", "expected"),
    [
        ("Initech Payments", ["initech"], "[Initech] Payments"),
        ("one two three four five six seven", ["six"], "…three four five [six] seven"),
        ("x " * 5000 + "needle at the end", ["needle"], "…x x x [needle] at the end"),
        ("snake_case: _ parts words", ["case"], "snake_[case]: _ parts words"),
        ("Café au lait", ["cafe"], "Café au lait"),  # found by FTS5's folding only
        ("", ["a"], ""),
    ],
)
def test_excerpts(text: str, words: list[str], expected: str) -> None:
    assert excerpt(text, words) == expected


def _indexes_exact(sm: StateManager) -> None:
    """SQLite: the lazily filled indexes (chat, task, subject) hold exactly the stored rows
    (FTS5's own full check); call after a search, which brings them up to date."""
    if sm.engine.dialect.name == "sqlite":
        with sm.engine.begin() as connection:
            for index in ("search_chat", "search_task", "search_subject"):
                connection.exec_driver_sql(
                    f"INSERT INTO {index}({index}, rank) VALUES ('integrity-check', 1)"
                )


def test_the_chat_index_stays_exact_through_deletes_and_reused_keys(sm: StateManager) -> None:
    """Chat is indexed by the first search after it (revision 0007); deleting the newest
    messages lets SQLite hand their keys out again, which must not confuse the index."""
    keep = sm.create_session()
    sm.add_chat_message(keep, "user", "alpha kept")
    doomed = sm.create_session()
    for i in range(3):
        sm.add_chat_message(doomed, "assistant", f"bravo doomed {i}")
    assert _ids(sm, "bravo") == [doomed]
    _indexes_exact(sm)
    sm.delete_session(doomed)
    fresh = sm.create_session()
    for i in range(2):
        sm.add_chat_message(fresh, "user", f"charlie fresh {i}")
    assert _ids(sm, "bravo") == []
    assert _ids(sm, "charlie") == [fresh]
    assert _ids(sm, "alpha") == [keep]
    _indexes_exact(sm)
    sm.add_chat_message(keep, "user", "delta later")
    sm.delete_session(keep)
    assert _ids(sm, "alpha") == [] and _ids(sm, "delta") == []
    _indexes_exact(sm)


def test_search_in_a_block_sees_its_own_chat_and_a_rollback_unindexes_it(
    sm: StateManager,
) -> None:
    sid = sm.create_session()
    sm.add_chat_message(sid, "user", "echo committed")
    seen: list[list[str]] = []

    def abandoned() -> None:
        with sm.transaction():
            other = sm.create_session()
            sm.add_chat_message(other, "user", "echo pending")
            seen.append(sorted(_ids(sm, "echo")))
            seen.append(sorted([sid, other]))
            raise RuntimeError("abandon")

    with pytest.raises(RuntimeError):
        abandoned()
    assert seen[0] == seen[1]  # the block's search saw its own message
    assert _ids(sm, "echo") == [sid]
    _indexes_exact(sm)


def test_downgrade_indexes_pending_chat_and_upgrade_resumes(tmp_path: Path) -> None:
    """Down to 0006 the eager triggers come back with every pending message indexed; up to
    head again the mark starts at the newest message."""
    with StateManager(tmp_path / "state.db") as sm:
        sid = sm.create_session()
        sm.add_chat_message(sid, "user", "foxtrot searched")
        assert _ids(sm, "foxtrot") == [sid]
        sm.add_chat_message(sid, "user", "golf pending")  # not indexed yet
        sm.downgrade_schema("0006")
        _indexes_exact(sm)
        sm.upgrade_schema()
        sm.add_chat_message(sid, "user", "hotel after")
        assert _ids(sm, "golf") == [sid] and _ids(sm, "hotel") == [sid]
        _indexes_exact(sm)


def _pending(sm: StateManager) -> int:
    """SQLite: sessions not yet in the task index (0 on PostgreSQL, which has no such lag)."""
    if sm.engine.dialect.name != "sqlite":
        return 0
    with sm.engine.connect() as connection:
        return int(
            connection.exec_driver_sql(
                "SELECT count(*) FROM sessions WHERE pk > (SELECT seq FROM search_task_indexed)"
            ).scalar_one()
        )


def test_task_and_subject_are_indexed_by_the_next_search_and_stay_exact(
    sm: StateManager, engine_name: str
) -> None:
    """A session's task and subject wait for the next search (revision 0009), which finds
    them; updates and deletes, of indexed and of pending sessions, and keys SQLite hands out
    again after the newest session is deleted, keep both indexes exact."""
    kept = sm.create_session("Acme kilo", task="alpha kept")
    assert _pending(sm) == (1 if engine_name == "sqlite" else 0)
    assert _ids(sm, "alpha") == [kept] and _ids(sm, "kilo") == [kept]
    assert _pending(sm) == 0
    _indexes_exact(sm)
    doomed = sm.create_session("Globex lima", task="bravo doomed")  # pending
    sm.delete_session(doomed)
    fresh = sm.create_session("Umbrella mike", task="charlie fresh")  # may reuse its key
    assert _ids(sm, "bravo") == [] and _ids(sm, "lima") == []
    assert _ids(sm, "charlie") == [fresh] and _ids(sm, "mike") == [fresh]
    _indexes_exact(sm)
    later = sm.create_session(task="delta pending")
    for sid, task in ((kept, "echo indexed"), (later, "foxtrot pending")):
        whole = sm.get_worktree_session(sid)
        assert whole is not None
        whole.task = task
        sm.save_worktree_session(whole)
    assert _ids(sm, "alpha") == [] and _ids(sm, "delta") == []
    assert _ids(sm, "echo") == [kept] and _ids(sm, "foxtrot") == [later]
    sm.delete_session(fresh)
    assert _ids(sm, "charlie") == [] and _ids(sm, "mike") == []
    _indexes_exact(sm)


def test_downgrade_indexes_pending_sessions_and_upgrade_resumes(tmp_path: Path) -> None:
    """Down to 0008 the eager triggers come back with every pending session indexed; up to
    head again the marks start at the newest session."""
    with StateManager(tmp_path / "state.db") as sm:
        searched = sm.create_session("Hooli", task="golf searched")
        assert _ids(sm, "golf") == [searched]
        pending = sm.create_session("Initrode", task="hotel pending")
        sm.downgrade_schema("0008")
        _indexes_exact(sm)
        sm.upgrade_schema()
        after = sm.create_session(task="india after")
        assert _ids(sm, "hotel") == [pending] and _ids(sm, "initrode") == [pending]
        assert _ids(sm, "india") == [after]
        _indexes_exact(sm)
