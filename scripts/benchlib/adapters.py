"""statekeeper's framework adapters against the frameworks' own SQLite stores.

StatekeeperSaver against LangGraph's SqliteSaver (PostgresSaver on PostgreSQL),
StatekeeperSession against the OpenAI Agents SDK's SQLiteSession (its SQLAlchemySession on
PostgreSQL). One store class per framework makes that framework's calls on
whichever saver or session it is given, so both sides make the same calls, with the same
arguments, on the same seeded data (`make_adapter_plan`); only what they are made on
differs. Both sides run at the same `synchronous` level, set on every connection and read
back from them.

The frameworks are imported with importlib: they are optional (`pip install -e '.[bench]'`),
and mypy must pass where they are not installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import random
import sqlite3
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from benchlib.stores import SYNCHRONOUS, Timed, time_awaited
from benchlib.workload import SEED, _text, seeded_uuid, vocabulary

__all__ = [
    "ADAPTER_READS",
    "FRAMEWORK_OPS",
    "ITEMS_LIMIT",
    "LIST_LIMIT",
    "AdapterPlan",
    "AgentsStore",
    "GraphStore",
    "check_timed",
    "is_postgresql",
    "libpq_url",
    "make_adapter_plan",
    "open_framework_store",
]

FRAMEWORK_OPS = {
    "langgraph": ("put", "put_writes", "get_tuple", "list"),
    "agents": ("add_items", "get_items", "pop_item"),
}
"""The timed calls of each framework, in the order every run makes them."""
ADAPTER_READS = frozenset({"get_tuple", "list", "get_items"})
"""Calls that may stop early at the time budget: they leave the store as it was."""
CHECKPOINTS_PER_THREAD = 40
MESSAGES_KEPT = 6
"""Messages in a checkpoint's `messages` channel: the thread's latest ones."""
LIST_LIMIT = 10
"""`list(thread, limit=...)`: a thread's newest checkpoints."""
TURNS_PER_CONVERSATION = 100
ITEMS_LIMIT = 50
"""`get_items(limit=...)`: a conversation's latest items."""
TASK_PATH = "~__pregel_pull, agent"
_EPOCH = datetime(2026, 12, 3, tzinfo=UTC)


def _checkpoint_id(i: int, rng: random.Random) -> str:
    """A UUID v6 whose time is `i`: later puts sort after earlier ones, as LangGraph's do."""
    value = (0x1F0_0000_0000 + i) << 80 | 0x6 << 76 | rng.getrandbits(12) << 64
    return str(uuid.UUID(int=value | 0b10 << 62 | rng.getrandbits(62)))


@dataclass(frozen=True)
class CheckpointPut:
    """One `put`: a checkpoint of a thread, made from the thread's previous one."""

    thread_id: str
    checkpoint_id: str
    parent_id: str | None
    step: int
    values: dict[str, Any]
    """Its channels: `messages` (the latest few), `context` (about 1 KB), `step`, `phase`."""


@dataclass(frozen=True)
class WritesPut:
    """One `put_writes`: a task's two writes against a checkpoint."""

    thread_id: str
    checkpoint_id: str
    task_id: str
    writes: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Turn:
    """One `add_items`: a user message and the model's reply, as the SDK's Runner adds them."""

    conversation: str
    items: list[dict[str, Any]]


@dataclass
class AdapterPlan:
    """Every framework call of one run, and what each must give back."""

    n: int
    threads: list[str]
    puts: list[CheckpointPut]
    writes: list[WritesPut]
    """One per checkpoint, in the order of the puts."""
    tuple_reads: list[str]
    """The thread each `get_tuple` reads the newest checkpoint of."""
    list_reads: list[str]
    """The thread each `list` reads the newest LIST_LIMIT checkpoints of."""
    conversations: list[str]
    turns: list[Turn]
    item_reads: list[str]
    pops: list[str]

    def args(self, op: str) -> list[Any]:
        """The argument of each call of one operation, in order."""
        calls: dict[str, list[Any]] = {
            "put": self.puts,
            "put_writes": self.writes,
            "get_tuple": self.tuple_reads,
            "list": self.list_reads,
            "add_items": self.turns,
            "get_items": self.item_reads,
            "pop_item": self.pops,
        }
        return list(calls[op])

    @cached_property
    def checkpoints_of(self) -> dict[str, list[CheckpointPut]]:
        """Each thread's checkpoints, oldest first."""
        found: dict[str, list[CheckpointPut]] = defaultdict(list)
        for put in self.puts:
            found[put.thread_id].append(put)
        return dict(found)

    @cached_property
    def writes_of(self) -> dict[str, WritesPut]:
        """The writes put against each checkpoint (by its id)."""
        return {w.checkpoint_id: w for w in self.writes}

    def expected_tuple(self, put: CheckpointPut) -> tuple[Any, ...]:
        """What a read of the checkpoint must give: see `digest`."""
        written = self.writes_of.get(put.checkpoint_id)
        pending = [] if written is None else [(written.task_id, *w) for w in written.writes]
        return (put.checkpoint_id, put.parent_id, put.step, put.values, pending)

    def expected_list(self, thread_id: str, limit: int | None) -> list[tuple[Any, ...]]:
        newest_first = list(reversed(self.checkpoints_of[thread_id]))
        return [self.expected_tuple(p) for p in newest_first[:limit]]

    @cached_property
    def items_added(self) -> dict[str, list[dict[str, Any]]]:
        """Each conversation's items after every `add_items`, in order."""
        found: dict[str, list[dict[str, Any]]] = {c: [] for c in self.conversations}
        for turn in self.turns:
            found[turn.conversation].extend(turn.items)
        return found

    @cached_property
    def popped(self) -> list[dict[str, Any] | None]:
        """What each `pop_item` must give back (after every add)."""
        left = {c: list(items) for c, items in self.items_added.items()}
        return [left[c].pop() if left[c] else None for c in self.pops]

    @cached_property
    def items_left(self) -> dict[str, list[dict[str, Any]]]:
        """Each conversation's items after the pops."""
        left = {c: list(items) for c, items in self.items_added.items()}
        for c in self.pops:
            if left[c]:
                left[c].pop()
        return left


def make_adapter_plan(n: int) -> AdapterPlan:
    """The framework calls of a run of `n` calls per operation, from their own
    `random.Random(SEED)` (the other operations' plan is not touched)."""
    rng = random.Random(SEED)  # noqa: S311 - seeded, not secret
    vocab = vocabulary(rng)
    questions = [_text(rng, vocab, 200) for _ in range(32)]
    answers = [_text(rng, vocab, 600) for _ in range(32)]
    notes = [_text(rng, vocab, 240) for _ in range(32)]

    threads = [f"thread-{seeded_uuid(rng)}" for _ in range(max(1, n // CHECKPOINTS_PER_THREAD))]
    steps = dict.fromkeys(threads, 0)
    newest: dict[str, str] = {}
    recent: dict[str, list[dict[str, Any]]] = {t: [] for t in threads}
    puts = []
    for i in range(n):
        thread = rng.choice(threads)
        step = steps[thread]
        steps[thread] += 1
        role = "user" if step % 2 == 0 else "assistant"
        said = {"role": role, "content": rng.choice(questions if role == "user" else answers)}
        recent[thread] = [*recent[thread], said][-MESSAGES_KEPT:]
        values = {
            "messages": recent[thread],
            "context": {"thread": thread, "notes": rng.sample(notes, 4), "step": step},
            "step": step,
            "phase": f"phase-{step}",
        }
        checkpoint_id = _checkpoint_id(i, rng)
        puts.append(CheckpointPut(thread, checkpoint_id, newest.get(thread), step, values))
        newest[thread] = checkpoint_id
    writes = [
        WritesPut(
            p.thread_id,
            p.checkpoint_id,
            seeded_uuid(rng),
            (
                ("messages", {"role": "assistant", "content": rng.choice(answers)}),
                ("phase", f"phase-{p.step}-done"),
            ),
        )
        for p in puts
    ]
    tuple_reads = [rng.choice(threads) for _ in range(n)]
    list_reads = [rng.choice(threads) for _ in range(n)]

    count = max(1, n // TURNS_PER_CONVERSATION)
    conversations = [f"conversation-{seeded_uuid(rng)}" for _ in range(count)]
    turns = []
    for _ in range(n):
        reply = {
            "id": f"msg_{rng.getrandbits(96):024x}",
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": rng.choice(answers), "annotations": []}],
        }
        question = {"role": "user", "content": rng.choice(questions)}
        turns.append(Turn(rng.choice(conversations), [question, reply]))
    return AdapterPlan(
        n=n,
        threads=threads,
        puts=puts,
        writes=writes,
        tuple_reads=tuple_reads,
        list_reads=list_reads,
        conversations=conversations,
        turns=turns,
        item_reads=[rng.choice(conversations) for _ in range(n)],
        pops=[rng.choice(conversations) for _ in range(n)],
    )


def digest(found: Any) -> tuple[Any, ...] | None:
    """A CheckpointTuple as (checkpoint id, parent id, step, channel values, pending writes)."""
    if found is None:
        return None
    parent = found.parent_config
    return (
        found.config["configurable"]["checkpoint_id"],
        None if parent is None else parent["configurable"]["checkpoint_id"],
        found.metadata.get("step"),
        found.checkpoint["channel_values"],
        [tuple(w) for w in found.pending_writes or []],
    )


def _time_calls(fn: Callable[[Any], Any], args: list[Any], budget_s: float | None) -> Timed:
    """Store.run_timed for a plain function: each call timed alone; reads stop early past
    `budget_s` (and 50 calls)."""
    latencies: list[int] = []
    first: Any = None
    result: Any = None
    gc.collect()
    clock = time.perf_counter_ns
    started = clock()
    deadline = started + int(budget_s * 1e9) if budget_s else None
    for arg in args:
        t0 = clock()
        result = fn(arg)
        t1 = clock()
        latencies.append(t1 - t0)
        if len(latencies) == 1:
            first = result
        if deadline is not None and t1 > deadline and len(latencies) >= 50:
            break
    return Timed(latencies, clock() - started, first, result)


def _level(connection: sqlite3.Connection) -> str:
    level = connection.execute("PRAGMA synchronous").fetchone()[0]
    return SYNCHRONOUS.get(int(level), str(level))


def _manager_durability(engine: Any) -> str:
    from benchlib.stores import _durability

    with engine.connect() as connection:
        return _durability(connection)


class GraphStore:
    """LangGraph's checkpointer calls, on a SqliteSaver or a StatekeeperSaver."""

    framework = "langgraph"

    def __init__(
        self, saver: Any, durability: Callable[[], str], close: Callable[[], None]
    ) -> None:
        self.saver = saver
        self.durability = durability
        self.close = close
        self.base = importlib.import_module("langgraph.checkpoint.base")

    @classmethod
    def peer(cls, path: str, synchronous: str) -> GraphStore:
        """LangGraph's SqliteSaver on a plain sqlite3 connection, as its documentation shows
        (the saver sets journal_mode=WAL itself), at `synchronous`."""
        module = importlib.import_module("langgraph.checkpoint.sqlite")
        connection = sqlite3.connect(path, check_same_thread=False)
        connection.execute(f"PRAGMA synchronous={synchronous.upper()}")
        saver = module.SqliteSaver(connection)
        saver.setup()
        return cls(saver, lambda: _level(connection), connection.close)

    @classmethod
    def peer_postgres(cls, url: str) -> GraphStore:
        """LangGraph's PostgresSaver as its documentation opens it (`from_conn_string`:
        autocommit, psycopg's pipeline for each put)."""
        module = importlib.import_module("langgraph.checkpoint.postgres")
        stack = contextlib.ExitStack()
        saver = stack.enter_context(module.PostgresSaver.from_conn_string(libpq_url(url)))
        saver.setup()

        def durability() -> str:
            row = saver.conn.execute("SHOW synchronous_commit").fetchone()
            return f"synchronous_commit={row['synchronous_commit']}"

        return cls(saver, durability, stack.close)

    @classmethod
    def statekeeper(cls, url: str, synchronous: str | None) -> GraphStore:
        """StatekeeperSaver on a StateManager of its own (`from_conn_string`)."""
        module = importlib.import_module("statekeeper.integrations.langgraph")
        options = {} if synchronous is None else {"synchronous": synchronous}
        saver = module.StatekeeperSaver.from_conn_string(url, **options)
        saver.setup()
        return cls(saver, lambda: _manager_durability(saver._manager().engine), saver.close)

    def prepare(self, op: str, args: list[Any]) -> list[Any]:
        """The calls' arguments as LangGraph passes them, built untimed."""
        if op == "put":
            return [self._put_args(p) for p in args]
        if op == "put_writes":
            return [
                (
                    {
                        "configurable": {
                            "thread_id": w.thread_id,
                            "checkpoint_ns": "",
                            "checkpoint_id": w.checkpoint_id,
                        }
                    },
                    list(w.writes),
                    w.task_id,
                    TASK_PATH,
                )
                for w in args
            ]
        # get_tuple and list: the thread's newest, as a graph's invoke asks for it.
        return [{"configurable": {"thread_id": t, "checkpoint_ns": ""}} for t in args]

    def _put_args(self, p: CheckpointPut) -> tuple[Any, ...]:
        """(config, checkpoint, metadata, new_versions) as a graph's step puts them."""
        checkpoint = self.base.empty_checkpoint()
        versions = dict.fromkeys(p.values, p.step + 1)
        checkpoint.update(
            id=p.checkpoint_id,
            ts=(_EPOCH + timedelta(seconds=p.step)).isoformat(),
            channel_values=p.values,
            channel_versions=versions,
            versions_seen={"agent": dict.fromkeys(p.values, p.step)},
            updated_channels=sorted(p.values),
        )
        configurable = {"thread_id": p.thread_id, "checkpoint_ns": ""}
        if p.parent_id is not None:
            configurable["checkpoint_id"] = p.parent_id
        metadata = {"source": "loop", "step": p.step, "parents": {}}
        return {"configurable": configurable}, checkpoint, metadata, versions

    def run_timed(self, op: str, args: list[Any], budget_s: float | None) -> Timed:
        saver = self.saver
        calls: dict[str, Callable[[Any], Any]] = {
            "put": lambda a: saver.put(*a),
            "put_writes": lambda a: saver.put_writes(*a),
            "get_tuple": saver.get_tuple,
            "list": lambda config: list(saver.list(config, limit=LIST_LIMIT)),
        }
        return _time_calls(calls[op], args, budget_s)

    def final_checks(self, plan: AdapterPlan) -> list[str]:
        """Untimed: every thread's newest checkpoint and its whole history, read back."""
        problems = []
        for thread in plan.threads:
            newest = plan.checkpoints_of[thread][-1]
            config = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
            if digest(self.saver.get_tuple(config)) != plan.expected_tuple(newest):
                problems.append(f"get_tuple({thread}) is not its last put with its writes")
            history = [digest(found) for found in self.saver.list(config)]
            if history != plan.expected_list(thread, None):
                problems.append(f"list({thread}) is not every put, newest first, with writes")
        return problems


class AgentsStore:
    """The Agents SDK's Session calls, on SQLiteSessions or StatekeeperSessions (one per
    conversation, all on one store), awaited one at a time in one event loop, each timed
    around its `await` alone."""

    framework = "agents"

    def __init__(
        self,
        make: Callable[[str], Any],
        loop: asyncio.AbstractEventLoop,
        durability: Callable[[], str],
        close: Callable[[], None],
        conversations: list[str],
    ) -> None:
        self.loop = loop
        self.durability = durability
        self._close = close
        self.sessions = {c: make(c) for c in conversations}
        # Untimed: each session's first call opens what it keeps (the SDK: a connection
        # per session and worker thread; statekeeper: a parked connection per manager).
        for session in self.sessions.values():
            self.loop.run_until_complete(session.get_items(limit=1))

    @classmethod
    def peer(cls, path: str, synchronous: str, conversations: list[str]) -> AgentsStore:
        """SQLiteSession, each of its connections set to `synchronous` as it opens it (the
        SDK sets only journal_mode=WAL)."""
        module = importlib.import_module("agents.memory")
        pragma = f"PRAGMA synchronous={synchronous.upper()}"

        def configure(conn: sqlite3.Connection) -> None:
            module.SQLiteSession._configure_connection(conn)
            conn.execute(pragma)

        session_class = type(
            "SQLiteSessionAtLevel",
            (module.SQLiteSession,),
            {"_configure_connection": staticmethod(configure)},
        )
        loop = asyncio.new_event_loop()
        store = cls(lambda c: session_class(c, path), loop, lambda: "", loop.close, conversations)

        def durability() -> str:
            levels = {
                _level(conn) for session in store.sessions.values() for conn in session._connections
            }
            return ", ".join(sorted(levels)) or "no connection"

        store.durability = durability
        return store

    @classmethod
    def peer_postgres(cls, url: str, conversations: list[str]) -> AgentsStore:
        """The SDK's SQLAlchemySession on PostgreSQL, every conversation on one AsyncEngine
        (psycopg's async driver)."""
        module = importlib.import_module("agents.extensions.memory.sqlalchemy_session")
        engine = create_async_engine(url)
        loop = asyncio.new_event_loop()

        async def read() -> str:
            async with engine.connect() as connection:
                found = await connection.exec_driver_sql("SHOW synchronous_commit")
                return f"synchronous_commit={found.scalar()}"

        def close() -> None:
            loop.run_until_complete(engine.dispose())
            loop.close()

        return cls(
            lambda c: module.SQLAlchemySession(c, engine=engine, create_tables=True),
            loop,
            lambda: str(loop.run_until_complete(read())),
            close,
            conversations,
        )

    @classmethod
    def statekeeper(
        cls, url: str, synchronous: str | None, conversations: list[str], *, use_async: bool
    ) -> AgentsStore:
        """StatekeeperSessions sharing one manager: a StateManager (each call in a worker
        thread, as the SDK's) or an AsyncStateManager (what a session opened from a URL
        runs on)."""
        module = importlib.import_module("statekeeper.integrations.openai_agents")
        statekeeper = importlib.import_module("statekeeper")
        options = {} if synchronous is None else {"synchronous": synchronous}
        loop = asyncio.new_event_loop()
        if use_async:
            manager = statekeeper.AsyncStateManager(url, **options)
            loop.run_until_complete(manager.open())

            async def read() -> str:
                async with manager.engine.connect() as connection:
                    from benchlib.stores import _durability

                    return str(await connection.run_sync(_durability))

            def durability() -> str:
                return str(loop.run_until_complete(read()))

            def close() -> None:
                loop.run_until_complete(manager.close())
                loop.close()
        else:
            manager = statekeeper.StateManager(url, **options)

            def durability() -> str:
                return _manager_durability(manager.engine)

            def close() -> None:
                manager.close()
                loop.close()

        return cls(
            lambda c: module.StatekeeperSession(c, manager), loop, durability, close, conversations
        )

    def prepare(self, op: str, args: list[Any]) -> list[Any]:
        return args

    def run_timed(self, op: str, args: list[Any], budget_s: float | None) -> Timed:
        sessions = self.sessions

        async def add_items(turn: Turn) -> None:
            await sessions[turn.conversation].add_items(turn.items)

        async def get_items(conversation: str) -> Any:
            return await sessions[conversation].get_items(limit=ITEMS_LIMIT)

        async def pop_item(conversation: str) -> Any:
            return await sessions[conversation].pop_item()

        calls: dict[str, Callable[[Any], Awaitable[Any]]] = {
            "add_items": add_items,
            "get_items": get_items,
            "pop_item": pop_item,
        }
        return self.loop.run_until_complete(time_awaited(calls[op], args, budget_s))

    def final_checks(self, plan: AdapterPlan) -> list[str]:
        """Untimed: every conversation's items after the pops, all of them, in order."""
        problems = []
        for conversation, session in self.sessions.items():
            items = self.loop.run_until_complete(session.get_items())
            if items != plan.items_left[conversation]:
                problems.append(f"get_items() of {conversation}: not the items left, in order")
        return problems

    def close(self) -> None:
        for session in self.sessions.values():
            closing = session.close() if hasattr(session, "close") else None
            if asyncio.iscoroutine(closing):
                self.loop.run_until_complete(closing)
        self._close()


def open_framework_store(
    framework: str, impl: str, engine: str, target: str, synchronous: str | None, plan: AdapterPlan
) -> GraphStore | AgentsStore:
    """`impl` ("peer", "statekeeper", "statekeeper_async") of `framework` on `target`."""
    level = synchronous if engine == "sqlite" else None
    if framework == "langgraph":
        if impl == "peer":
            return GraphStore.peer(target, level) if level else GraphStore.peer_postgres(target)
        if impl == "statekeeper":
            return GraphStore.statekeeper(target, level)
    elif framework == "agents":
        if impl == "peer":
            if level is None:
                return AgentsStore.peer_postgres(target, plan.conversations)
            return AgentsStore.peer(target, level, plan.conversations)
        if impl in ("statekeeper", "statekeeper_async"):
            use_async = impl == "statekeeper_async"
            return AgentsStore.statekeeper(target, level, plan.conversations, use_async=use_async)
    raise ValueError(f"unknown implementation {impl!r} of {framework!r}")


def is_postgresql(target: str) -> bool:
    """Whether a store's target is a PostgreSQL URL (else a SQLite file)."""
    return target.startswith("postgresql")


def libpq_url(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL as libpq takes it (no `+driver`)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _check(op: str, plan: AdapterPlan, index: int, result: Any) -> str:
    """Why the result of call `index` of `op` is wrong, or ''."""
    if op == "put":
        put = plan.puts[index]
        wanted = {
            "thread_id": put.thread_id,
            "checkpoint_ns": "",
            "checkpoint_id": put.checkpoint_id,
        }
        if result != {"configurable": wanted}:
            return f"put #{index} returned {result}, not its checkpoint's config"
    elif op in ("put_writes", "add_items") and result is not None:
        return f"{op} #{index} returned {result!r}"
    elif op == "get_tuple":
        newest = plan.checkpoints_of[plan.tuple_reads[index]][-1]
        if digest(result) != plan.expected_tuple(newest):
            return f"get_tuple #{index}: not the thread's last put with its writes"
    elif op == "list":
        wanted_list = plan.expected_list(plan.list_reads[index], LIST_LIMIT)
        if [digest(found) for found in result] != wanted_list:
            return f"list #{index}: not the thread's newest {LIST_LIMIT} puts with their writes"
    elif op == "get_items":
        wanted_items = plan.items_added[plan.item_reads[index]][-ITEMS_LIMIT:]
        if result != wanted_items:
            return f"get_items #{index}: {len(result)} items, not the latest {ITEMS_LIMIT}"
    elif op == "pop_item" and result != plan.popped[index]:
        return f"pop_item #{index} gave {str(result)[:80]}, not the newest item"
    return ""


def check_timed(op: str, plan: AdapterPlan, timed: Timed) -> list[str]:
    """Check the first and the last call of an operation."""
    last = len(timed.latencies_ns) - 1
    problems = [_check(op, plan, 0, timed.first), _check(op, plan, last, timed.last)]
    return [p for p in problems if p]
