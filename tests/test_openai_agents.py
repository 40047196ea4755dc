"""StatekeeperSession on SQLite and PostgreSQL: the SDK's session semantics, verbatim items,
search, bad input, processes appending at once, and the runnable example."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
import wal_pages
from agents.memory import Session, SessionSettings

from statekeeper import AsyncStateManager, InvalidInput, StateError, StateManager
from statekeeper.integrations.openai_agents import StatekeeperSession
from statekeeper.models import ChatMessageRow
from tests.sdk_session_worker import batch
from tests.workers import Worker

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")


def on_session(
    url: str, scenario: Callable[[StatekeeperSession], Awaitable[T]], session_id: str = "conv"
) -> T:
    """Run `scenario` on one session of the store, opened from its URL, then closed."""

    async def run() -> T:
        async with StatekeeperSession(session_id, url) as session:
            return await scenario(session)

    return asyncio.run(run())


def message(n: int) -> Any:
    """A plain message, stored as role and text."""
    return {"role": "user" if n % 2 == 0 else "assistant", "content": f"message {n}"}


VERBATIM: list[Any] = [
    {"role": "developer", "content": "Answer briefly."},
    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Oslo?"}]},
    {
        "type": "reasoning",
        "id": "rs_1",
        "summary": [{"type": "summary_text", "text": "The user wants the forecast"}],
        "encrypted_content": "gAAAAsealedblob",
    },
    {
        "type": "function_call",
        "id": "fc_1",
        "call_id": "call_1",
        "name": "get_weather",
        "arguments": '{"city": "Oslo"}',
        "status": "completed",
    },
    {"type": "function_call_output", "call_id": "call_1", "output": "drizzle, 7 degrees"},
    {
        "type": "function_call_output",
        "call_id": "call_2",
        "output": [{"type": "input_text", "text": "humidity high"}],
    },
    {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [
            {"type": "output_text", "text": "Drizzle: 7 °C.", "annotations": [], "logprobs": []}
        ],
    },
    {"role": "user", "content": "thanks", "type": "message"},
    {"type": "x_custom", "deep": {"n": 1, "x": 1.5, "ok": True, "no": None, "l": [1, "two"]}},
]
"""Items that are more than role and text, each kept whole."""
VERBATIM_ROLES = [
    "system",
    "user",
    "assistant",
    "assistant",
    "user",
    "user",
    "assistant",
    "user",
    "assistant",
]
VERBATIM_TEXT = [
    "Answer briefly.",
    "Oslo?",
    "The user wants the forecast",
    'get_weather\n{"city": "Oslo"}',
    "drizzle, 7 degrees",
    "humidity high",
    "Drizzle: 7 °C.",
    "thanks",
    "",
]


# --- The SDK's semantics ------------------------------------------------------------------


def test_is_an_sdk_session_with_order_limit_and_pop_of_the_newest(store_url: str) -> None:
    async def scenario(session: StatekeeperSession) -> None:
        assert isinstance(session, Session)
        assert await session.get_items() == []
        await session.add_items([message(0), message(1), message(2)])
        await session.add_items([message(3), message(4)])
        await session.add_items([])
        everything = [message(n) for n in range(5)]
        assert await session.get_items() == everything
        assert await session.get_items(limit=2) == everything[3:]
        assert await session.get_items(limit=10) == everything
        assert await session.get_items(limit=0) == []
        assert await session.get_items(limit=-1) == everything  # as the SDK's SQLiteSession
        with pytest.raises(InvalidInput):
            await session.get_items(limit="2")  # type: ignore[arg-type]
        assert await session.pop_item() == message(4)
        assert await session.pop_item() == message(3)
        assert await session.get_items() == everything[:3]
        await session.add_items([message(5)])
        assert await session.get_items(limit=2) == [message(2), message(5)]
        for expected in (message(5), message(2), message(1), message(0)):
            assert await session.pop_item() == expected
        assert await session.pop_item() is None
        assert await session.get_items() == []

    on_session(store_url, scenario)


def test_clear_empties_the_session_and_keeps_it(store_url: str) -> None:
    async def scenario(session: StatekeeperSession) -> None:
        await session.add_items([message(0), VERBATIM[3]])
        await session.clear_session()
        assert await session.get_items() == []
        assert await session.pop_item() is None
        await session.add_items([message(1)])
        assert await session.get_items() == [message(1)]

    on_session(store_url, scenario)
    with StateManager(store_url) as sm:
        stored = sm.get_session("conv")
        assert stored is not None
        assert stored.kind == "openai-agents"
        assert [m.content for m in sm.get_chat_history("conv")] == ["message 1"]


def test_an_unknown_id_has_nothing_and_is_not_created_by_reads_pops_or_clears(
    store_url: str,
) -> None:
    async def scenario(session: StatekeeperSession) -> None:
        assert await session.get_items() == []
        assert await session.pop_item() is None
        await session.clear_session()

    on_session(store_url, scenario)
    with StateManager(store_url) as sm:
        assert sm.get_session("conv") is None


def test_sessions_are_isolated_by_id(store_url: str) -> None:
    async def scenario() -> None:
        async with AsyncStateManager(store_url) as am:
            a, b = StatekeeperSession("a", am), StatekeeperSession("b", am)
            for n in range(4):
                await (a if n % 2 == 0 else b).add_items([message(n)])
            assert await a.get_items() == [message(0), message(2)]
            assert await b.get_items() == [message(1), message(3)]
            assert await a.pop_item() == message(2)
            assert await b.get_items(limit=1) == [message(3)]
            await a.clear_session()
            assert await a.get_items() == []
            assert await b.get_items() == [message(1), message(3)]

    asyncio.run(scenario())


def test_session_settings_give_the_default_limit(store_url: str) -> None:
    async def scenario() -> None:
        settings = SessionSettings(limit=2)
        async with StatekeeperSession("conv", store_url, session_settings=settings) as session:
            await session.add_items([message(n) for n in range(4)])
            assert await session.get_items() == [message(2), message(3)]
            assert await session.get_items(limit=3) == [message(1), message(2), message(3)]

    asyncio.run(scenario())


def test_concurrent_pops_each_take_a_different_item(store_url: str) -> None:
    async def scenario(session: StatekeeperSession) -> None:
        await session.add_items([message(n) for n in range(12)])
        popped: list[Any] = await asyncio.gather(*(session.pop_item() for _ in range(14)))
        taken = [item for item in popped if item is not None]
        assert sorted(item["content"] for item in taken) == sorted(
            f"message {n}" for n in range(12)
        )
        assert await session.get_items() == []

    on_session(store_url, scenario)


# --- Items kept verbatim, their text searchable ---------------------------------------------


def test_items_that_are_not_plain_messages_come_back_exactly(store_url: str) -> None:
    items = [message(0), *VERBATIM, message(1)]

    async def scenario(session: StatekeeperSession) -> None:
        await session.add_items(items)
        assert await session.get_items() == items
        assert await session.get_items(limit=3) == items[-3:]
        assert await session.pop_item() == message(1)
        assert await session.pop_item() == VERBATIM[-1]

    on_session(store_url, scenario)
    with StateManager(store_url) as sm, sm.engine.connect() as connection:
        null_items = connection.scalars(
            sa.select(ChatMessageRow.item.is_(None)).order_by(ChatMessageRow.seq)
        ).all()
    assert null_items == [True] + [False] * (len(VERBATIM) - 1)


def test_chat_history_shows_each_item_with_its_role_and_text(store_url: str) -> None:
    on_session(store_url, lambda session: session.add_items([message(0), *VERBATIM]))
    with StateManager(store_url) as sm:
        history = sm.get_chat_history("conv")
        assert [m.role.value for m in history] == ["user", *VERBATIM_ROLES]
        assert [m.content for m in history] == ["message 0", *VERBATIM_TEXT]
        sm.add_chat_message("conv", "system", "added through the manager")

    async def read(session: StatekeeperSession) -> list[Any]:
        return await session.get_items(limit=1)

    assert on_session(store_url, read) == [
        {"role": "system", "content": "added through the manager"}
    ]


def test_text_of_tool_outputs_and_reasoning_is_searchable_and_sealed_data_is_not(
    store_url: str,
) -> None:
    on_session(store_url, lambda session: session.add_items(VERBATIM))
    with StateManager(store_url) as sm:
        for word in ("drizzle", "humidity", "forecast", "get_weather", "Oslo"):
            assert [hit.session_id for hit in sm.search_sessions(word)] == ["conv"], word
        assert sm.search_sessions("gAAAAsealedblob") == []


# --- Bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("items", "field"),
    [
        pytest.param([message(0), "hello"], "items[1]", id="not-a-dict"),
        pytest.param({"role": "user", "content": "hi"}, "items", id="not-a-list"),
        pytest.param([message(0), {"data": object()}], "items[1]", id="not-json"),
        pytest.param([{"pair": (1, 2)}], "items[0]", id="tuple"),
        pytest.param([{1: "one"}], "items[0]", id="int-key"),
        pytest.param([{"x": float("nan")}], "items[0]", id="nan"),
        pytest.param([message(0), {"role": "user", "content": "a\x00b"}], "items[1]", id="nul"),
    ],
)
def test_bad_items_are_rejected_and_nothing_is_written(
    store_url: str, items: Any, field: str
) -> None:
    async def scenario(session: StatekeeperSession) -> None:
        with pytest.raises(StateError) as caught:
            await session.add_items(items)
        assert isinstance(caught.value, InvalidInput)
        assert caught.value.field == field
        assert await session.get_items() == []

    on_session(store_url, scenario)
    with StateManager(store_url) as sm:
        assert sm.get_session("conv") is None


def test_a_bad_session_id_is_rejected(store_url: str) -> None:
    with pytest.raises(InvalidInput):
        StatekeeperSession("", store_url)


# --- Managers -------------------------------------------------------------------------------


def test_a_sync_state_manager_serves_through_worker_threads(store_url: str) -> None:
    with StateManager(store_url) as sm:

        async def scenario() -> None:
            async with StatekeeperSession("conv", sm) as session:
                await session.add_items([message(0), *VERBATIM[:4]])
                assert await session.get_items(limit=2) == VERBATIM[2:4]
                assert await session.pop_item() == VERBATIM[3]
                await session.clear_session()
                assert await session.get_items() == []

        asyncio.run(scenario())
        assert sm.get_session("conv") is not None  # still open after the session closed
        assert sm._db.fallbacks == 0  # every statement ran on the direct path


def test_calls_join_the_tasks_transaction_block_and_roll_back_with_it(store_url: str) -> None:
    async def scenario() -> None:
        async with AsyncStateManager(store_url) as am:
            session = StatekeeperSession("conv", am)

            async def rolled_back() -> None:
                async with am.transaction():
                    await session.add_items([message(0)])
                    assert await session.get_items() == [message(0)]
                    raise RuntimeError("roll back")

            with pytest.raises(RuntimeError):
                await rolled_back()
            assert await session.get_items() == []
            assert await am.get_session("conv") is None
            await session.close()
            assert await am.search_sessions("message") == []  # the manager stays open

    asyncio.run(scenario())


def test_without_the_sdk_the_import_names_the_extra() -> None:
    code = "import sys; sys.modules['agents'] = None\nimport statekeeper.integrations.openai_agents"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert "ImportError: " in result.stderr
    assert "pip install 'statekeeper[openai-agents]'" in result.stderr


# --- Processes appending at once, and the example -------------------------------------------

WRITERS = 4
CALLS = 50


@pytest.mark.slow
def test_processes_appending_to_one_session_lose_nothing(
    store_url: str, workers: list[Worker]
) -> None:
    started = [
        Worker("tests.sdk_session_worker", store_url, store_url, "shared", str(k), str(CALLS))
        for k in range(WRITERS)
    ]
    workers.extend(started)
    for worker in started:
        worker.wait_for("ready")
    for worker in started:
        worker.send("go")
    for worker in started:
        worker.wait_for("done", timeout=120)

    items: list[Any] = on_session(store_url, lambda session: session.get_items(), "shared")
    assert len(items) == WRITERS * CALLS * 2
    batches = [items[i : i + 2] for i in range(0, len(items), 2)]  # each call's two adjacent
    for k in range(WRITERS):
        own = [b for b in batches if b[0]["content"].startswith(f"worker {k} ")]
        assert own == [batch(k, n) for n in range(CALLS)]


def test_the_example_runs_an_agent_on_a_fake_model(store_url: str) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "examples" / "openai_agents_example.py"), store_url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "OPENAI_API_KEY": ""},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "turn 1: It is sunny and 21 degrees in Paris." in result.stdout
    assert "turn 2: You have asked me 2 questions, this one included." in result.stdout
    assert "session items: 6" in result.stdout
    assert "search 'sunny': ['weather-chat']" in result.stdout
    assert "popped: True" in result.stdout


def _set_updated_at(sm: StateManager, session_id: str, when: datetime) -> None:
    sessions = sa.table("sessions", sa.column("id"), sa.column("updated_at"))
    stamp: Any = when if sm.engine.dialect.name == "postgresql" else when.replace(tzinfo=None)
    with sm.engine.begin() as connection:
        connection.execute(
            sa.update(sessions).where(sessions.c.id == session_id).values(updated_at=stamp)
        )


def _updated_at(sm: StateManager, session_id: str) -> datetime:
    found = sm.get_session(session_id)
    assert found is not None
    return found.updated_at


def test_appends_and_pops_refresh_a_stale_session_and_leave_a_fresh_one(
    store_url: str, engine_name: str
) -> None:
    """SQLite rewrites the session row only when it is over a second old (a WAL page less
    per call); PostgreSQL marks it on every write, the lock that queues its writers."""
    with StateManager(store_url) as sm:

        async def append_and_pop(session_id: str) -> None:
            session = StatekeeperSession(session_id, sm)  # a new object remembers no refresh
            await session.add_items([message(0), message(1)])
            await session.pop_item()

        asyncio.run(append_and_pop("r"))
        _set_updated_at(sm, "r", datetime.now(UTC) - timedelta(hours=1))
        before = datetime.now(UTC)
        asyncio.run(append_and_pop("r"))
        assert _updated_at(sm, "r") >= before - timedelta(milliseconds=1)
        ahead = datetime.now(UTC) + timedelta(hours=1)
        _set_updated_at(sm, "r", ahead)
        asyncio.run(append_and_pop("r"))
        if engine_name == "sqlite":
            assert _updated_at(sm, "r") == ahead
        else:
            assert _updated_at(sm, "r") < ahead
        assert [m.content for m in sm.get_chat_history("r")] == ["message 0"] * 3


def test_an_append_to_a_known_session_writes_its_chat_rows_alone(tmp_path: Path) -> None:
    """On SQLite add_items commits the chat rows and their indexes, not the session row (its
    `updated_at` is dated ahead here, so the count cannot depend on this machine's speed)."""
    path = tmp_path / "state.db"
    with StateManager(path, synchronous="full") as sm:
        session = StatekeeperSession("conv", sm)
        asyncio.run(session.add_items([message(0)]))
        with sm.engine.begin() as connection:
            connection.exec_driver_sql("UPDATE sessions SET updated_at = '2999-01-01 00:00:00'")
        measured = wal_pages.measure(
            path, lambda i: asyncio.run(session.add_items([message(i), message(i + 1)]))
        )
    assert set(measured.by_btree) - {"(header)", "(new page)"} == {
        "chat_messages",
        "sqlite_autoindex_chat_messages_1",
        "ix_chat_messages_session_id_seq",
    }
