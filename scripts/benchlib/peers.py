"""The peer libraries, where they have an operation: LangGraph's SqliteSaver and the OpenAI
Agents SDK's SQLiteSession, or on PostgreSQL their PostgresSaver and SQLAlchemySession.

They are imported with importlib: they are optional (`pip install -e '.[bench]'`), and mypy
must pass where they are not installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import sqlite3
from typing import Any

from sqlalchemy.ext.asyncio import create_async_engine

from benchlib.adapters import is_postgresql, libpq_url
from benchlib.stores import SYNCHRONOUS, Loaded, Store, Timed, time_awaited
from benchlib.workload import CHAT_LIMIT, HISTORY_LIMIT, ChatArgs

__all__ = ["AgentsSessionStore", "LangGraphStore"]


class LangGraphStore(Store):
    """LangGraph's SqliteSaver: put ~ save_phase_completion, get_tuple ~ load_context,
    list(limit=50) ~ get_session_history. Synchronous API, one sqlite3 connection."""

    label = "langgraph SqliteSaver"
    supports = frozenset({"save_phase_completion", "load_context", "get_session_history"})

    def __init__(self, target: str) -> None:
        self.base = importlib.import_module("langgraph.checkpoint.base")
        self.ids = importlib.import_module("langgraph.checkpoint.base.id")
        self._stack = contextlib.ExitStack()
        self.connection: sqlite3.Connection | None = None
        if is_postgresql(target):
            # As its documentation shows: from_conn_string (autocommit, pipelined puts).
            module = importlib.import_module("langgraph.checkpoint.postgres")
            saver = module.PostgresSaver.from_conn_string(libpq_url(target))
            self.saver: Any = self._stack.enter_context(saver)
        else:
            # A plain sqlite3 connection (the library sets WAL itself).
            module = importlib.import_module("langgraph.checkpoint.sqlite")
            self.connection = sqlite3.connect(target, check_same_thread=False)
            self._stack.callback(self.connection.close)
            self.saver = module.SqliteSaver(self.connection)
        self.saver.setup()

    def durability(self) -> str:
        if self.connection is None:
            row = self.saver.conn.execute("SHOW synchronous_commit").fetchone()
            return f"synchronous_commit={row['synchronous_commit']}"
        level = self.connection.execute("PRAGMA synchronous").fetchone()[0]
        return f"{SYNCHRONOUS.get(int(level), level)} (library default)"

    def prepare(self, op: str, args: list[Any]) -> list[Any]:
        if op != "save_phase_completion":
            return args
        # The graph builds each checkpoint; the saver only stores it: built untimed.
        prepared = []
        parents: dict[str, str] = {}
        for p in args:
            checkpoint = self.base.empty_checkpoint()
            checkpoint["id"] = str(self.ids.uuid6(clock_seq=p.step))
            checkpoint["channel_values"] = {
                "output": p.output,
                "context": p.context,
                "phase": p.phase_id,
            }
            versions = {"output": p.step + 1, "context": p.step + 1, "phase": p.step + 1}
            checkpoint["channel_versions"] = versions
            configurable = {"thread_id": p.session_id, "checkpoint_ns": ""}
            if p.session_id in parents:
                configurable["checkpoint_id"] = parents[p.session_id]
            parents[p.session_id] = checkpoint["id"]
            metadata = {"source": "loop", "step": p.step, "parents": {}}
            prepared.append(({"configurable": configurable}, checkpoint, metadata, versions))
        return prepared

    def save_phase_completion(self, phase: Any) -> None:
        self.saver.put(*phase)

    def load_context(self, session_id: str) -> Loaded | None:
        found = self.saver.get_tuple({"configurable": {"thread_id": session_id}})
        if found is None:
            return None
        values = found.checkpoint["channel_values"]
        return Loaded(values["context"], values["phase"], None)

    def get_session_history(self, before: str | None) -> list[str]:
        return [
            str(found.config["configurable"]["thread_id"])
            for found in self.saver.list(None, limit=HISTORY_LIMIT)
        ]

    def close(self) -> None:
        self._stack.close()


class AgentsSessionStore(Store):
    """The OpenAI Agents SDK's SQLiteSession: add_items ~ add_chat_message, get_items(limit=100)
    ~ get_chat_history. Async API (each call runs its SQL in a worker thread), one
    SQLiteSession per conversation, all in one file."""

    label = "openai-agents SQLiteSession"
    supports = frozenset({"add_chat_message", "get_chat_history"})

    def __init__(self, target: str) -> None:
        self.path = target
        self.sessions: dict[str, Any] = {}
        self.loop = asyncio.new_event_loop()
        self.engine: Any = None
        if is_postgresql(target):
            # Every conversation's SQLAlchemySession on one AsyncEngine (psycopg's async mode).
            self.module = importlib.import_module("agents.extensions.memory.sqlalchemy_session")
            self.engine = create_async_engine(target)
        else:
            self.module = importlib.import_module("agents.memory")

    def durability(self) -> str:
        if self.engine is not None:
            return str(self.loop.run_until_complete(self._synchronous_commit()))
        # It sets only journal_mode=WAL, so its connections keep SQLite's compiled default.
        probe = sqlite3.connect(self.path)
        try:
            level = probe.execute("PRAGMA synchronous").fetchone()[0]
        finally:
            probe.close()
        return f"{SYNCHRONOUS.get(int(level), level)} (library default)"

    async def _synchronous_commit(self) -> str:
        async with self.engine.connect() as connection:
            found = await connection.exec_driver_sql("SHOW synchronous_commit")
            return f"synchronous_commit={found.scalar()}"

    def _session(self, session_id: str) -> Any:
        if session_id not in self.sessions:
            if self.engine is not None:
                self.sessions[session_id] = self.module.SQLAlchemySession(
                    session_id, engine=self.engine, create_tables=True
                )
            else:
                self.sessions[session_id] = self.module.SQLiteSession(session_id, self.path)
        return self.sessions[session_id]

    def prepare(self, op: str, args: list[Any]) -> list[Any]:
        for arg in args:  # opened untimed, like a store's constructor
            self._session(arg.session_id if isinstance(arg, ChatArgs) else arg)
        return args

    def run_timed(self, op: str, args: list[Any], budget_s: float | None = None) -> Timed:
        return self.loop.run_until_complete(self._run(op, args, budget_s))

    async def _run(self, op: str, args: list[Any], budget_s: float | None) -> Timed:
        async def call(arg: Any) -> Any:
            if op == "add_chat_message":
                await self.sessions[arg.session_id].add_items(
                    [{"role": "user", "content": arg.content}]
                )
                return None
            items = await self.sessions[arg].get_items(limit=CHAT_LIMIT)
            return [item["content"] for item in items]

        return await time_awaited(call, args, budget_s)

    def close(self) -> None:
        if self.engine is not None:
            self.loop.run_until_complete(self.engine.dispose())
        else:
            for session in self.sessions.values():
                session.close()
        self.loop.close()
