"""StatekeeperSaver: LangGraph's own conformance suite on both engines, threads as sessions,
strict parents, setup, and the example."""

from __future__ import annotations

import asyncio
import importlib
import operator
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
import sqlalchemy as sa
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES
from langgraph.checkpoint.conformance.test_utils import (
    generate_checkpoint,
    generate_config,
    generate_metadata,
)
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, StateSnapshot, interrupt

from statekeeper import AsyncStateManager, StateManager, VersionConflict
from statekeeper.integrations.langgraph import StatekeeperSaver

ROOT = Path(__file__).resolve().parents[1]


class Count(TypedDict):
    steps: Annotated[list[str], operator.add]


def _graph(saver: StatekeeperSaver) -> Any:
    builder = StateGraph(Count)
    builder.add_node("one", lambda state: {"steps": ["one"]})
    builder.add_node("two", lambda state: {"steps": ["two"]})
    builder.add_edge(START, "one")
    builder.add_edge("one", "two")
    builder.add_edge("two", END)
    return builder.compile(checkpointer=saver)


def _thread(thread_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id}}


@pytest.mark.parametrize("manager_kind", ["async", "sync"])
def test_langgraph_conformance_every_capability(
    store_url: str, engine_name: str, manager_kind: str
) -> None:
    """The async manager from a URL, or a StateManager whose calls run in worker threads."""
    sync_manager = StateManager(store_url) if manager_kind == "sync" else None

    @checkpointer_test(name=f"StatekeeperSaver-{manager_kind}")
    async def factory() -> AsyncIterator[StatekeeperSaver]:
        async with StatekeeperSaver(sync_manager or store_url) as saver:
            yield saver

    try:
        report = asyncio.run(validate(factory))
    finally:
        if sync_manager is not None:
            sync_manager.close()
    counts = {
        name: (result.tests_passed, result.tests_failed) for name, result in report.results.items()
    }
    print(f"conformance {engine_name} {manager_kind}: {counts}")
    assert set(report.results) == {capability.value for capability in ALL_CAPABILITIES}
    failures = {name: r.failures for name, r in report.results.items() if r.passed is not True}
    assert not failures, failures
    assert report.conformance_level() == "FULL"


def test_threads_are_sessions_of_kind_langgraph(store_url: str) -> None:
    with StateManager(store_url) as sm:
        sm.create_session("Quarterly tide report", kind="langgraph", session_id="made-first")
        with StatekeeperSaver(sm) as saver:
            graph = _graph(saver)
            for thread_id in ("made-first", "made-by-graph", "made-by-graph"):
                graph.invoke({"steps": []}, _thread(thread_id))
            assert graph.get_state(_thread("made-by-graph")).values == {
                "steps": ["one", "two", "one", "two"]
            }
        made = sm.get_session("made-by-graph")
        assert made is not None and made.kind == "langgraph" and made.status == "running"
        listed = {s.id for s in sm.get_session_history(kind="langgraph")}
        assert listed == {"made-first", "made-by-graph"}
        assert sm.get_statistics().total_sessions == 2
        assert [hit.session_id for hit in sm.search_sessions("tide report")] == ["made-first"]
        assert [e.event_type for e in sm.get_events("made-by-graph")] == ["session.created"]


def test_an_interrupt_in_a_subgraph_resumes_from_the_store(store_url: str) -> None:
    def ask(state: Count) -> dict[str, list[str]]:
        return {"steps": [f"answer:{interrupt('approve?')}"]}

    inner = StateGraph(Count)
    inner.add_node("ask", ask)
    inner.add_edge(START, "ask")
    outer = StateGraph(Count)
    outer.add_node("pre", lambda state: {"steps": ["pre"]})
    outer.add_node("sub", inner.compile())
    outer.add_edge(START, "pre")
    outer.add_edge("pre", "sub")
    with StatekeeperSaver(store_url) as saver:
        paused = outer.compile(checkpointer=saver).invoke({"steps": []}, _thread("h"))
        assert paused["__interrupt__"][0].value == "approve?"
    with StatekeeperSaver(store_url) as saver:
        graph = outer.compile(checkpointer=saver)
        (task,) = graph.get_state(_thread("h"), subgraphs=True).tasks
        assert isinstance(task.state, StateSnapshot)
        assert str(task.state.config["configurable"]["checkpoint_ns"]).startswith("sub:")
        done = graph.invoke(Command(resume="yes"), _thread("h"))
    assert done == {"steps": ["pre", "pre", "answer:yes"]}


def test_delete_thread_drops_its_session_but_not_a_session_of_another_kind(
    store_url: str,
) -> None:
    with StateManager(store_url) as sm, StatekeeperSaver(sm) as saver:
        sm.create_session("mine", kind="workflow", session_id="workflow-thread")
        graph = _graph(saver)
        for thread_id in ("graph-thread", "workflow-thread"):
            graph.invoke({"steps": []}, _thread(thread_id))
            saver.delete_thread(thread_id)
            assert saver.get_tuple(_thread(thread_id)) is None
        assert sm.get_session("graph-thread") is None
        kept = sm.get_session("workflow-thread")
        assert kept is not None and kept.kind == "workflow"


def test_a_put_joins_the_managers_transaction_block(store_url: str) -> None:
    with StateManager(store_url) as sm, StatekeeperSaver(sm) as saver:

        def fails_after_both() -> None:
            with sm.transaction():
                _put(saver, "undone", None)
                sm.create_session("beside it", session_id="also-undone")
                raise RuntimeError

        with pytest.raises(RuntimeError):
            fails_after_both()
        with sm.transaction():
            _put(saver, "kept", None)
        assert saver.get_tuple(_thread("undone")) is None
        assert sm.get_session("undone") is None and sm.get_session("also-undone") is None
        assert saver.get_tuple(_thread("kept")) is not None


def _updated_at(sm: StateManager, thread_id: str) -> datetime:
    found = sm.get_session(thread_id)
    assert found is not None
    return found.updated_at


def _set_updated_at(sm: StateManager, thread_id: str, when: datetime) -> None:
    sessions = sa.table("sessions", sa.column("id"), sa.column("updated_at"))
    with sm.engine.begin() as connection:
        stamp: Any = when if sm.engine.dialect.name == "postgresql" else when.replace(tzinfo=None)
        connection.execute(
            sa.update(sessions).where(sessions.c.id == thread_id).values(updated_at=stamp)
        )


def test_writes_before_any_put_make_the_thread_and_a_put_then_joins_it(store_url: str) -> None:
    """LangGraph may send a step's writes first: the thread's session is made by them."""
    with StateManager(store_url) as sm, StatekeeperSaver(sm) as saver:
        saver.put_writes(generate_config("w", checkpoint_id="c0"), [("ch", 1)], "task")
        made = sm.get_session("w")
        assert made is not None and made.kind == "langgraph"
        first = _put(saver, "w", None)
        assert [e.event_type for e in sm.get_events("w")] == ["session.created"]
        found = saver.get_tuple(generate_config("w", checkpoint_id=first))
        assert found is not None and found.pending_writes == []
        written = saver.get_tuple(generate_config("w", checkpoint_id="c0"))
        assert written is None  # writes alone are no checkpoint


def test_a_put_refreshes_a_stale_threads_session_and_leaves_a_fresh_one(
    store_url: str, engine_name: str
) -> None:
    """SQLite rewrites the session row only when it is over a second old (a WAL page less per
    put); PostgreSQL marks it on every put, the lock that queues a thread's writers."""
    with StateManager(store_url) as sm:
        with StatekeeperSaver(sm) as saver:
            first = _put(saver, "r", None)
        long_ago = datetime.now(UTC) - timedelta(hours=1)
        _set_updated_at(sm, "r", long_ago)
        before = datetime.now(UTC)
        with StatekeeperSaver(sm) as saver:
            second = _put(saver, "r", first)
            assert _updated_at(sm, "r") >= before - timedelta(milliseconds=1)
            ahead = datetime.now(UTC) + timedelta(hours=1)
            _set_updated_at(sm, "r", ahead)
        with StatekeeperSaver(sm) as saver:  # a new saver: it remembers no refresh
            _put(saver, "r", second)
        if engine_name == "sqlite":
            assert _updated_at(sm, "r") == ahead
        else:
            assert _updated_at(sm, "r") < ahead


def _put(saver: StatekeeperSaver, thread_id: str, parent: str | None) -> str:
    config = generate_config(thread_id, checkpoint_id=parent)
    checkpoint = generate_checkpoint(channel_values={"n": 1}, channel_versions={"n": 1})
    stored = saver.put(config, checkpoint, generate_metadata(), {"n": 1})
    return str(stored["configurable"]["checkpoint_id"])


def test_every_saver_call_runs_on_the_driver_alone(sqlite_template: Path, tmp_path: Path) -> None:
    """On SQLite the saver's units of work are prepared statements only: none falls back."""
    path = tmp_path / "state.db"
    shutil.copy2(sqlite_template, path)
    with StateManager(str(path)) as sm, StatekeeperSaver(sm) as saver:
        graph = _graph(saver)
        graph.invoke({"steps": []}, _thread("t"))  # put, put_writes, get_tuple
        first = _put(saver, "u", None)
        newest = _put(saver, "u", first)
        for checkpoint_id in (first, newest):
            config = generate_config("u", checkpoint_id=checkpoint_id)
            saver.put_writes(config, [("ch", 1), ("other", 2)], "task")
            saver.put_writes(config, [("__error__", "e")], "task")  # replaced, not kept
        assert saver.get_tuple(generate_config("u", checkpoint_id=first)) is not None
        assert saver.get_tuple(_thread("u")) is not None
        found = list(saver.list(_thread("u"), limit=10))
        assert [len(t.pending_writes or []) for t in found] == [3, 3]
        assert len(list(saver.list(None, filter={"source": "loop"}, limit=2))) == 2
        before = generate_config("u", checkpoint_id=newest)
        assert [t.checkpoint["id"] for t in saver.list(_thread("u"), before=before)] == [first]
        saver.copy_thread("u", "v")
        saver.delete_for_runs(["no-such-run"])
        saver.prune(["v"], strategy="keep_latest")
        saver.prune(["v"], strategy="delete")
        saver.delete_thread("u")
        assert sm._db.fallbacks == 0


@pytest.mark.parametrize("strategy", ["keep_latest", "delete"])
def test_prune_also_drops_writes_of_no_stored_checkpoint(store_url: str, strategy: str) -> None:
    with StateManager(store_url) as sm, StatekeeperSaver(sm) as saver:
        first = _put(saver, "t", None)
        newest = _put(saver, "t", first)
        for checkpoint_id in (first, newest, "never-stored"):
            config = generate_config("t", checkpoint_id=checkpoint_id)
            saver.put_writes(config, [("ch", checkpoint_id)], "task")
        saver.prune(["t"], strategy=strategy)
        with sm.engine.connect() as connection:
            left = connection.execute(sa.text("SELECT checkpoint_id FROM graph_writes")).all()
        assert [row.checkpoint_id for row in left] == (
            [newest] if strategy == "keep_latest" else []
        )


def test_strict_refuses_a_stale_parent_and_writes_nothing(store_url: str) -> None:
    with StatekeeperSaver(store_url, strict=True) as saver:
        first = _put(saver, "t", None)
        second = _put(saver, "t", first)
        with pytest.raises(VersionConflict, match="moved on"):
            _put(saver, "t", first)  # a turn that read `first` lost the race to `second`
        with pytest.raises(VersionConflict):
            _put(saver, "t", None)  # a "first" checkpoint of a thread that has some
        with pytest.raises(VersionConflict):
            _put(saver, "new-thread", first)  # no session made either
        assert [t.checkpoint["id"] for t in saver.list(_thread("t"))] == [second, first]
        assert saver.get_tuple(_thread("new-thread")) is None
    with StateManager(store_url) as sm:
        assert sm.get_session("new-thread") is None


def test_default_forks_so_time_travel_works_and_strict_refuses_it(store_url: str) -> None:
    with StatekeeperSaver(store_url) as saver:
        graph = _graph(saver)
        graph.invoke({"steps": []}, _thread("t"))
        history = list(graph.get_state_history(_thread("t")))
        after_one = next(s for s in history if s.values.get("steps") == ["one"])
        replayed = graph.invoke(None, after_one.config)
        assert replayed == {"steps": ["one", "two"]}
        fork = saver.get_tuple(_thread("t"))
        ancestors = []
        while fork is not None and fork.parent_config is not None:
            ancestors.append(fork.parent_config["configurable"]["checkpoint_id"])
            fork = saver.get_tuple(fork.parent_config)
        assert after_one.config["configurable"]["checkpoint_id"] in ancestors
        assert history[0].config["configurable"]["checkpoint_id"] not in ancestors
        assert saver.get_tuple(history[0].config) is not None  # the old branch stays
    with StatekeeperSaver(store_url, strict=True) as saver:
        graph = _graph(saver)
        graph.invoke({"steps": []}, _thread("t"))  # a new turn on the newest is fine
        with pytest.raises(VersionConflict):
            graph.invoke(None, after_one.config)


def test_strict_async_concurrent_turns_one_wins(store_url: str) -> None:
    async def main() -> list[BaseException | None]:
        async with StatekeeperSaver(store_url, strict=True) as saver:
            config = generate_config("race")
            base = await saver.aput(config, generate_checkpoint(), generate_metadata(), {})
            turns = [
                saver.aput(base, generate_checkpoint(), generate_metadata(step=1), {})
                for _ in range(4)
            ]
            results = await asyncio.gather(*turns, return_exceptions=True)
            assert len([t async for t in saver.alist(config)]) == 2
            return [r if isinstance(r, BaseException) else None for r in results]

    outcomes = asyncio.run(main())
    assert outcomes.count(None) == 1
    assert all(isinstance(e, VersionConflict) for e in outcomes if e is not None)


def test_from_conn_string_and_setup_migrate_an_empty_store(empty_url: str) -> None:
    with StatekeeperSaver.from_conn_string(empty_url, auto_migrate=False) as saver:
        saver.setup()
        saver.setup()  # at head: nothing to do
        _graph(saver).invoke({"steps": []}, _thread("t"))
    with StateManager(empty_url) as sm:
        assert sm.schema_status().at_head
        assert sm.get_session("t") is not None


def test_asetup_and_async_graph_on_an_async_manager(empty_url: str) -> None:
    async def main() -> dict[str, Any]:
        async with StatekeeperSaver.from_conn_string(empty_url, auto_migrate=False) as saver:
            await saver.asetup()
        async with AsyncStateManager(empty_url) as am, StatekeeperSaver(am) as saver:
            result: dict[str, Any] = await _graph(saver).ainvoke({"steps": []}, _thread("t"))
            with pytest.raises(Exception, match="async methods only"):
                saver.get_tuple(_thread("t"))
            return result

    assert asyncio.run(main()) == {"steps": ["one", "two"]}


def test_list_filters_metadata_exactly(store_url: str) -> None:
    with StatekeeperSaver(store_url) as saver:
        for step, source in enumerate(["input", "loop", "loop"]):
            config = generate_config("t")
            metadata = generate_metadata(source=source, step=step, score="7")
            saver.put(config, generate_checkpoint(), metadata, {})
        saver.put(generate_config("u"), generate_checkpoint(), generate_metadata(step=7), {})

        def steps(**criteria: Any) -> list[int]:
            return [t.metadata["step"] for t in saver.list(**criteria)]

        assert steps(config=_thread("t"), filter={"source": "loop"}) == [2, 1]
        assert steps(config=_thread("t"), filter={"source": "loop"}, limit=1) == [2]
        assert steps(config=None, filter={"step": 7}) == [7]
        assert steps(config=None, filter={"score": 7}) == []  # the string "7" is not 7
        assert steps(config=_thread("t"), filter={"parents": {}, "missing": None}) == [2, 1, 0]


def test_example_runs(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "docs" / "examples" / "langgraph_example.py"),
            str(tmp_path / "x.db"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=os.environ.copy(),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout.rstrip().endswith("ok")


def test_import_without_langgraph_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "langgraph.checkpoint.base", None)
    monkeypatch.delitem(sys.modules, "statekeeper.integrations.langgraph")
    with pytest.raises(ImportError, match=r"pip install 'statekeeper\[langgraph\]'"):
        importlib.import_module("statekeeper.integrations.langgraph")
