"""The peer libraries, where they have an operation: LangGraph's SqliteSaver and the OpenAI
Agents SDK's SQLiteSession.

They are imported with importlib: they are optional (`pip install -e '.[bench]'`), and mypy
must pass where they are not installed.
"""

from __future__ import annotations

import asyncio
import importlib
import sqlite3
from typing import Any

from benchlib.stores import SYNCHRONOUS, Loaded, Store, Timed, time_awaited
from benchlib.workload import CHAT_LIMIT, HISTORY_LIMIT, ChatArgs

__all__ = ["AgentsSessionStore", "LangGraphStore"]


class LangGraphStore(Store):
    """LangGraph's SqliteSaver: put ~ save_phase_completion, get_tuple ~ load_context,
    list(limit=50) ~ get_session_history. Synchronous API, one sqlite3 connection."""

    label = "langgraph SqliteSaver"
    supports = frozenset({"save_phase_completion", "load_context", "get_session_history"})

    def __init__(self, path: str) -> None:
        saver_module = importlib.import_module("langgraph.checkpoint.sqlite")
        self.base = importlib.import_module("langgraph.checkpoint.base")
        self.ids = importlib.import_module("langgraph.checkpoint.base.id")
        # As its documentation shows: a plain sqlite3 connection (the library sets WAL itself).
        self.connection = sqlite3.connect(path, check_same_thread=False)
        self.saver: Any = saver_module.SqliteSaver(self.connection)
        self.saver.setup()

    def durability(self) -> str:
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
        self.connection.close()


class AgentsSessionStore(Store):
    """The OpenAI Agents SDK's SQLiteSession: add_items ~ add_chat_message, get_items(limit=100)
    ~ get_chat_history. Async API (each call runs its SQL in a worker thread), one
    SQLiteSession per conversation, all in one file."""

    label = "openai-agents SQLiteSession"
    supports = frozenset({"add_chat_message", "get_chat_history"})

    def __init__(self, path: str) -> None:
        self.module = importlib.import_module("agents.memory")
        self.path = path
        self.sessions: dict[str, Any] = {}

    def durability(self) -> str:
        # It sets only journal_mode=WAL, so its connections keep SQLite's compiled default.
        probe = sqlite3.connect(self.path)
        try:
            level = probe.execute("PRAGMA synchronous").fetchone()[0]
        finally:
            probe.close()
        return f"{SYNCHRONOUS.get(int(level), level)} (library default)"

    def _session(self, session_id: str) -> Any:
        if session_id not in self.sessions:
            self.sessions[session_id] = self.module.SQLiteSession(session_id, self.path)
        return self.sessions[session_id]

    def prepare(self, op: str, args: list[Any]) -> list[Any]:
        for arg in args:  # opened untimed, like a store's constructor
            self._session(arg.session_id if isinstance(arg, ChatArgs) else arg)
        return args

    def run_timed(self, op: str, args: list[Any], budget_s: float | None = None) -> Timed:
        return asyncio.run(self._run(op, args, budget_s))

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
        for session in self.sessions.values():
            session.close()
