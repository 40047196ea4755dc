"""The implementations measured: statekeeper and the hand-written floor (peers: peers.py).

Each store takes the workload's arguments (workload.py) and returns plain values (ids,
contents, context data) so that one checker can verify every implementation.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

from benchlib.floor_sql import (
    PRAGMAS,
    STATEMENTS,
    SearchTemplate,
    lazy_index_sql,
    search_sql,
    sql,
)
from benchlib.workload import (
    AGENT_STATUS,
    CHAT_LIMIT,
    HISTORY_LIMIT,
    MAX_SNAPSHOTS,
    OPS,
    SEARCH_LIMIT,
    AgentSave,
    ChatArgs,
    PhaseArgs,
)

__all__ = [
    "SYNCHRONOUS",
    "AsyncStatekeeperStore",
    "FloorStore",
    "Loaded",
    "StatekeeperStore",
    "Store",
    "Timed",
    "VersionConflict",
    "sqlite_now",
    "time_awaited",
]

IMPORT_BATCH = 500
"""Sessions per transaction in the floor's legacy import (statekeeper's BATCH_SIZE)."""
_CENT_FRACTION = Decimal(1).scaleb(-8)  # NUMERIC(15, 8)
SYNCHRONOUS = {0: "off", 1: "normal", 2: "full", 3: "extra"}
NAMESPACE = "default"
"""The agents' namespace: StateManager's default."""


class VersionConflict(Exception):
    """The floor's stale `expected_version` (statekeeper raises its own of the same name)."""


class Loaded(NamedTuple):
    """What load_context gave: the context data, the last phase, the accumulated cost."""

    data: Any
    last_phase: str | None
    cost: Decimal | None


class Timed(NamedTuple):
    """Per-call latencies of one operation, its wall time, and its first and last results."""

    latencies_ns: list[int]
    wall_ns: int
    first: Any
    last: Any


def _json(value: Any) -> str:
    """JSON text as statekeeper writes it (values.dump_json): compact, non-ASCII kept."""
    return json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":"))


def sqlite_now() -> str:
    """Now as statekeeper stores it on SQLite: naive UTC text with microseconds."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


class Store:
    """One implementation. Subclasses implement the operations listed in `supports`."""

    label = ""
    supports: frozenset[str] = frozenset()

    def durability(self) -> str:
        """The synchronous level the store's connections actually run with."""
        return "n/a"

    def prepare(self, op: str, args: list[Any]) -> list[Any]:
        """Turn the workload's arguments into this store's, before timing starts."""
        return args

    def run_timed(self, op: str, args: list[Any], budget_s: float | None = None) -> Timed:
        """Call `op` once per argument, timing each call; past `budget_s` (and 50 calls),
        stop early: only for reads, which leave the store as it was."""
        fn = getattr(self, op)
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

    def create_session(self, spec: Any) -> None:
        raise NotImplementedError

    def save_phase_completion(self, phase: Any) -> None:
        raise NotImplementedError

    def load_context(self, session_id: str) -> Loaded | None:
        raise NotImplementedError

    def get_session(self, session_id: str) -> str | None:
        raise NotImplementedError

    def get_session_history(self, before: str | None) -> list[str]:
        raise NotImplementedError

    def get_total_sessions(self, _unused: None) -> int:
        raise NotImplementedError

    def get_statistics(self, _unused: None) -> int:
        """The statistics' total_sessions (what the scale run checks)."""
        raise NotImplementedError

    def add_chat_message(self, message: ChatArgs) -> None:
        raise NotImplementedError

    def get_chat_history(self, session_id: str) -> list[str]:
        raise NotImplementedError

    def search_sessions(self, query: str) -> list[str]:
        raise NotImplementedError

    def create_agent(self, save: AgentSave) -> None:
        """An agent's first save (untimed: what save_agent_state saves over)."""
        raise NotImplementedError

    def save_agent_state(self, save: AgentSave) -> int:
        """A versioned save; the version stored."""
        raise NotImplementedError

    def create_snapshot(self, agent_id: str) -> str:
        """A snapshot of an agent, rotation included; its id."""
        raise NotImplementedError

    def import_json(self, directory: Path) -> int:
        raise NotImplementedError

    def close(self) -> None:
        """Release connections."""


ALL_OPS = frozenset({*OPS, "import_json"})


async def time_awaited(
    call: Callable[[Any], Awaitable[Any]], args: list[Any], budget_s: float | None
) -> Timed:
    """Store.run_timed for a coroutine function: each `await call(arg)` timed alone."""
    latencies: list[int] = []
    first: Any = None
    result: Any = None
    gc.collect()
    clock = time.perf_counter_ns
    started = clock()
    deadline = started + int(budget_s * 1e9) if budget_s else None
    for arg in args:
        t0 = clock()
        result = await call(arg)
        t1 = clock()
        latencies.append(t1 - t0)
        if len(latencies) == 1:
            first = result
        if deadline is not None and t1 > deadline and len(latencies) >= 50:
            break
    return Timed(latencies, clock() - started, first, result)


def _durability(connection: Any) -> str:
    """The synchronous level a statekeeper connection actually runs with."""
    if connection.dialect.name == "sqlite":
        level = connection.exec_driver_sql("PRAGMA synchronous").scalar()
        return SYNCHRONOUS.get(int(level or 0), str(level))
    value = connection.exec_driver_sql("SHOW synchronous_commit").scalar()
    return f"synchronous_commit={value}"


def _imported(stats: Any) -> int:
    if stats.errors:
        raise RuntimeError(f"import errors: {stats.errors[:3]}")
    return int(stats.imported)


def _loaded(context: Any) -> Loaded | None:
    if context is None:
        return None
    return Loaded(context.data, context.last_completed_phase, context.accumulated_cost)


def _save_agent(sm: Any, save: AgentSave) -> Any:
    """save_agent_state as a caller makes it: building the AgentState is part of the call.

    Imported here, not at the top, since the floor's process never imports statekeeper;
    after the first call the import is a dictionary lookup.
    """
    from statekeeper.schemas import AgentState

    state = AgentState(agent_id=save.agent_id, status=AGENT_STATUS, state_data=save.state_data)
    return sm.save_agent_state(state, expected_version=save.expected_version)


# Each operation as (the manager call, what the checker is given of its result), so the sync
# and the async manager are measured doing exactly the same thing.
_CALLS: dict[str, tuple[Callable[[Any, Any], Any], Callable[[Any], Any]]] = {
    "create_session": (
        lambda sm, spec: sm.create_session(
            spec.subject,
            task=spec.task,
            session_id=spec.id,
            model=spec.model,
            metadata=spec.metadata,
        ),
        lambda _: None,
    ),
    "save_phase_completion": (
        lambda sm, p: sm.save_phase_completion(
            p.session_id,
            p.phase_id,
            p.output,
            p.duration_ms,
            p.cost_usd,
            context=p.context,
            tokens_in=p.tokens_in,
            tokens_out=p.tokens_out,
        ),
        lambda _: None,
    ),
    "load_context": (lambda sm, sid: sm.load_context(sid), _loaded),
    "get_total_sessions": (lambda sm, _: sm.get_total_sessions(), int),
    "get_statistics": (lambda sm, _: sm.get_statistics(), lambda s: s.total_sessions),
    "get_session": (
        lambda sm, sid: sm.get_session(sid),
        lambda session: None if session is None else session.id,
    ),
    "get_session_history": (
        lambda sm, before: sm.get_session_history(HISTORY_LIMIT, before=before),
        lambda page: [s.id for s in page],
    ),
    "add_chat_message": (
        lambda sm, m: sm.add_chat_message(m.session_id, "user", m.content),
        lambda _: None,
    ),
    "get_chat_history": (
        lambda sm, sid: sm.get_chat_history(sid, limit=CHAT_LIMIT),
        lambda messages: [m.content for m in messages],
    ),
    "search_sessions": (
        lambda sm, query: sm.search_sessions(query, limit=SEARCH_LIMIT),
        lambda hits: [hit.session_id for hit in hits],
    ),
    "create_agent": (_save_agent, lambda _: None),
    "save_agent_state": (_save_agent, lambda state: state.version),
    "create_snapshot": (lambda sm, agent_id: sm.create_snapshot(agent_id=agent_id), str),
    "import_json": (lambda sm, directory: sm.import_json(directory), _imported),
}


class StatekeeperStore(Store):
    """statekeeper's public API (StateManager), on SQLite or PostgreSQL."""

    label = "statekeeper"
    supports = ALL_OPS

    def __init__(self, url: str, synchronous: str | None) -> None:
        from statekeeper import StateManager

        options: dict[str, Any] = {} if synchronous is None else {"synchronous": synchronous}
        self.sm = StateManager(url, **options)

    def durability(self) -> str:
        with self.sm.engine.connect() as connection:
            return _durability(connection)

    def __getattribute__(self, name: str) -> Any:
        if name in _CALLS:
            call, result = _CALLS[name]
            return lambda arg: result(call(self.sm, arg))
        return super().__getattribute__(name)

    def close(self) -> None:
        self.sm.close()


class AsyncStatekeeperStore(StatekeeperStore):
    """statekeeper's AsyncStateManager: every call awaited in one task of an event loop, each
    timed around its `await` alone."""

    label = "statekeeper_async"

    def __init__(self, url: str, synchronous: str | None) -> None:
        from statekeeper import AsyncStateManager

        options: dict[str, Any] = {} if synchronous is None else {"synchronous": synchronous}
        self.loop = asyncio.new_event_loop()
        self.am = AsyncStateManager(url, **options)
        self.loop.run_until_complete(self.am.open())

    def __getattribute__(self, name: str) -> Any:
        if name in _CALLS:
            loop, am = object.__getattribute__(self, "loop"), object.__getattribute__(self, "am")
            call, result = _CALLS[name]
            return lambda arg: result(loop.run_until_complete(call(am, arg)))
        return object.__getattribute__(self, name)

    def durability(self) -> str:
        async def read() -> str:
            async with self.am.engine.connect() as connection:
                return await connection.run_sync(_durability)

        return self.loop.run_until_complete(read())

    def run_timed(self, op: str, args: list[Any], budget_s: float | None = None) -> Timed:
        """As Store.run_timed, inside the loop: the clock sees the awaited call only."""
        call, result = _CALLS[op]
        timed = self.loop.run_until_complete(
            time_awaited(lambda arg: call(self.am, arg), args, budget_s)
        )
        return timed._replace(first=result(timed.first), last=result(timed.last))

    def close(self) -> None:
        self.loop.run_until_complete(self.am.close())
        self.loop.close()


class FloorStore(Store):
    """The same statements and transactions, by hand: stdlib sqlite3, or raw psycopg."""

    label = "floor"
    supports = ALL_OPS

    def __init__(self, dialect: str, connection: Any, search: dict[str, SearchTemplate]) -> None:
        self.dialect = dialect
        self.search = search
        self.sqlite = dialect == "sqlite"
        self.connection = connection
        self.cur: Any = connection.cursor()
        self.q = {name: sql(dialect, name) for name in STATEMENTS}

    @classmethod
    def open_sqlite(
        cls, path: str, synchronous: str, search: dict[str, SearchTemplate]
    ) -> FloorStore:
        # isolation_level=None: sqlite3 opens no transaction itself; we send BEGIN ourselves.
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for pragma in PRAGMAS:
            connection.execute(pragma.format(synchronous=synchronous.upper()))
        return cls("sqlite", connection, search)

    @classmethod
    def open_postgresql(cls, url: str, search: dict[str, SearchTemplate]) -> FloorStore:
        import psycopg

        return cls("postgresql", psycopg.connect(url, autocommit=False), search)

    def durability(self) -> str:
        if self.sqlite:
            level = self.cur.execute("PRAGMA synchronous").fetchone()[0]
            return SYNCHRONOUS.get(int(level), str(level))
        value = self.cur.execute("SHOW synchronous_commit").fetchone()[0]
        self.connection.commit()
        return f"synchronous_commit={value}"

    # Transactions: explicit BEGIN [IMMEDIATE] / COMMIT on SQLite; psycopg begins implicitly.

    def _begin(self, write: bool) -> None:
        if self.sqlite:
            self.cur.execute("BEGIN IMMEDIATE" if write else "BEGIN")

    def _commit(self) -> None:
        if self.sqlite:
            self.cur.execute("COMMIT")
        else:
            self.connection.commit()

    def _rollback(self) -> None:
        if self.sqlite:
            self.cur.execute("ROLLBACK")
        else:
            self.connection.rollback()

    # Values as statekeeper binds them.

    def _now(self) -> Any:
        return sqlite_now() if self.sqlite else datetime.now(UTC)

    def _money(self, value: Decimal) -> Any:
        return float(value) if self.sqlite else value

    def _decimal(self, value: Any) -> Decimal:
        stored = Decimal(str(value)) if self.sqlite else Decimal(value)
        return stored.quantize(_CENT_FRACTION)

    def _time(self, text: str | None) -> Any:
        if text is None:
            return None
        moment = datetime.fromisoformat(text).astimezone(UTC)
        return moment.strftime("%Y-%m-%d %H:%M:%S.%f") if self.sqlite else moment

    def create_session(self, spec: Any) -> None:
        now = self._now()
        self._begin(True)
        self.cur.execute(
            self.q["insert_session"],
            (
                spec.id,
                None,
                "workflow",
                spec.subject,
                spec.task,
                "running",
                now,
                now,
                self._money(Decimal(0)),
                0,
                0,
                spec.model,
                json.dumps(spec.metadata),
            ),
        )
        self._event(
            spec.id,
            "session.created",
            "workflow session created",
            {"kind": "workflow", "subject": spec.subject},
            now,
        )
        self._commit()

    def _event(
        self,
        session_id: str | None,
        kind: str,
        content: str,
        metadata: dict[str, Any],
        now: Any,
        *,
        actor: tuple[str, str] = ("system", "statekeeper"),
    ) -> None:
        self.cur.execute(
            self.q["insert_event"],
            (
                str(uuid.uuid4()),
                session_id,
                kind,
                *actor,
                content,
                json.dumps(metadata),
                now,
            ),
        )

    def save_phase_completion(self, phase: Any) -> None:
        p: PhaseArgs = phase
        q, cur = self.q, self.cur
        self._begin(True)
        session = cur.execute(q["lock_session"], (p.session_id,)).fetchone()
        if session is None or session[0] == "completed":
            raise LookupError(f"session {p.session_id} is missing or completed")
        earlier = cur.execute(q["previous_phase"], (p.session_id, p.phase_id)).fetchone()
        cost = self._decimal(session[2]) + p.cost_usd
        tokens_in = session[3] + p.tokens_in
        tokens_out = session[4] + p.tokens_out
        if earlier is not None:
            cost -= self._decimal(earlier[1])
            tokens_in -= earlier[2]
            tokens_out -= earlier[3]
        now = self._now()
        output = json.dumps(p.output)
        amount = self._money(p.cost_usd)
        tokens = (p.tokens_in, p.tokens_out)
        if earlier is None:
            cur.execute(
                q["insert_phase"],
                (p.session_id, p.phase_id, now, p.duration_ms, output, amount, *tokens),
            )
        else:
            cur.execute(
                q["replace_phase"],
                (now, p.duration_ms, output, amount, *tokens, earlier[0]),
            )
        cur.execute(q["set_totals"], (now, self._money(cost), tokens_in, tokens_out, p.session_id))
        cur.execute(q["upsert_context"], (p.session_id, json.dumps(p.context), now))
        self._event(
            p.session_id,
            "phase.completed",
            f"phase {p.phase_id} completed",
            {
                "phase_id": p.phase_id,
                "duration_ms": p.duration_ms,
                "cost_usd": str(p.cost_usd),
                "tokens_in": p.tokens_in,
                "tokens_out": p.tokens_out,
                "replaced": earlier is not None,
            },
            now,
        )
        self._commit()

    def load_context(self, session_id: str) -> Loaded | None:
        self._begin(False)
        row = self.cur.execute(self.q["load_context"], (session_id,)).fetchone()
        self._commit()
        if row is None or row[0] is None:
            return None
        data = json.loads(row[0]) if self.sqlite else row[0]  # psycopg decodes jsonb itself
        return Loaded(data, row[1], self._decimal(row[2]))

    def get_session(self, session_id: str) -> str | None:
        self._begin(False)
        row = self.cur.execute(self.q["get_session"], (session_id,)).fetchone()
        self._commit()
        return None if row is None else str(row[1])

    def get_total_sessions(self, _unused: None) -> int:
        self._begin(False)
        total = self.cur.execute(self.q["total_sessions"]).fetchone()[0]
        self._commit()
        return int(total)

    def get_statistics(self, _unused: None) -> int:
        self._begin(False)
        row = self.cur.execute(self.q["statistics"]).fetchone()
        self._commit()
        return int(row[0])

    def get_session_history(self, before: str | None) -> list[str]:
        self._begin(False)
        if before is None:
            rows = self.cur.execute(self.q["history"], (HISTORY_LIMIT,)).fetchall()
        else:
            cursor = self.cur.execute(self.q["cursor_of"], (before,)).fetchone()
            if cursor is None:
                raise LookupError(f"no session {before}")
            rows = self.cur.execute(
                self.q["history_before"], (cursor[0], cursor[1], HISTORY_LIMIT)
            ).fetchall()
        self._commit()
        return [row[0] for row in rows]

    def add_chat_message(self, message: ChatArgs) -> None:
        now = self._now()
        self._begin(True)
        touched = self.cur.execute(self.q["touch_session"], (now, message.session_id)).fetchone()
        if touched is None:
            raise LookupError(f"no session {message.session_id}")
        self.cur.execute(
            self.q["insert_chat"],
            (str(uuid.uuid4()), message.session_id, "user", message.content, now, None),
        )
        self._commit()

    def get_chat_history(self, session_id: str) -> list[str]:
        self._begin(False)
        rows = self.cur.execute(self.q["chat_history"], (session_id, CHAT_LIMIT)).fetchall()
        self._commit()
        return [row[4] for row in rows]

    def search_sessions(self, query: str) -> list[str]:
        statement = search_sql(self.search, query)
        if statement is None:
            return []
        lazy = lazy_index_sql(self.search)
        if lazy is not None:  # as statekeeper does: index what was added since, then search
            behind, catch_up = lazy
            if self.cur.execute(behind).fetchone()[0]:
                self._begin(True)
                for text in catch_up:
                    self.cur.execute(text)
                self._commit()
        self._begin(False)
        rows = self.cur.execute(*statement).fetchall()
        self._commit()
        return [row[0] for row in rows]

    # The agent store. Agent states and snapshot payloads are JSON text as statekeeper writes
    # it (compact, non-ASCII kept), so payloads and their size_bytes match its byte for byte.

    def _lock_agent(self, agent_id: str) -> Any:
        row = self.cur.execute(self.q["lock_agent"], (NAMESPACE, agent_id)).fetchone()
        if row is None or row[3] is not None:
            self._rollback()
            raise LookupError(f"agent {agent_id} is missing or deleted")
        return row

    def create_agent(self, save: AgentSave) -> None:
        now = self._now()
        self._begin(True)
        if self.cur.execute(self.q["lock_agent"], (NAMESPACE, save.agent_id)).fetchone():
            self._rollback()
            raise VersionConflict(f"agent {save.agent_id} exists")
        created = self.cur.execute(
            self.q["insert_agent"],
            (
                NAMESPACE,
                save.agent_id,
                save.agent_id,
                AGENT_STATUS,
                "{}",
                _json(save.state_data),
                None,
                1,
                now,
                now,
            ),
        ).fetchone()
        if created is None:
            self._rollback()
            raise VersionConflict(f"agent {save.agent_id} created concurrently")
        self._transition(save.agent_id, None, AGENT_STATUS, now)
        self._commit()

    def _transition(self, agent_id: str, before: str | None, after: str, now: Any) -> None:
        """A status change: its transition row and its event (services/agents._transition)."""
        self.cur.execute(
            self.q["insert_transition"], (NAMESPACE, agent_id, before, after, None, "{}", now)
        )
        self._event(
            None,
            "agent.created" if before is None else "agent.status_changed",
            f"agent {agent_id} created ({after})"
            if before is None
            else f"agent {agent_id}: {before} -> {after}",
            {"namespace": NAMESPACE, "agent_id": agent_id, "from": before, "to": after},
            now,
            actor=("agent", agent_id),
        )

    def save_agent_state(self, save: AgentSave) -> int:
        state = _json(save.state_data)  # serialized before the transaction, as statekeeper
        now = self._now()
        self._begin(True)
        current = self._lock_agent(save.agent_id)
        if current[2] != save.expected_version:
            self._rollback()
            raise VersionConflict(
                f"agent {save.agent_id}: expected version {save.expected_version}, "
                f"found {current[2]}"
            )
        version = int(current[2]) + 1
        key = (NAMESPACE, save.agent_id)
        self.cur.execute(
            self.q["update_agent"],
            (save.agent_id, AGENT_STATUS, "{}", state, None, version, now, *key),
        )
        if current[1] != AGENT_STATUS:
            self._transition(save.agent_id, current[1], AGENT_STATUS, now)
        self._commit()
        return version

    def create_snapshot(self, agent_id: str) -> str:
        now = self._now()
        self._begin(True)
        current = self._lock_agent(agent_id)
        if current[6] is not None:
            self._rollback()
            raise NotImplementedError("the floor writes no compressed states")
        state = current[5]
        if self.sqlite and state is not None:
            state = json.loads(state)  # psycopg decodes jsonb itself
        text = _json({"status": current[1], "state_data": state, "version": current[2]})
        snapshot_id = str(uuid.uuid4())
        size = len(text.encode())
        values = (snapshot_id, None, NAMESPACE, agent_id, None, text, None, size, now, None)
        self.cur.execute(self.q["insert_snapshot"], values)
        self.cur.execute(self.q["rotate_agent_snapshots"], (NAMESPACE, agent_id, MAX_SNAPSHOTS))
        owner = {"session_id": None, "namespace": NAMESPACE, "agent_id": agent_id}
        self._event(
            None,
            "snapshot.created",
            f"snapshot {snapshot_id} of agent {agent_id} created",
            {"snapshot_id": snapshot_id, **owner},
            now,
            actor=("agent", agent_id),
        )
        self._commit()
        return snapshot_id

    def import_json(self, directory: Path) -> int:
        imported = 0
        for path in sorted(directory.glob("*.json")):
            with path.open(encoding="utf-8") as file:
                items = json.load(file)
            for start in range(0, len(items), IMPORT_BATCH):
                batch = items[start : start + IMPORT_BATCH]
                self._import_batch(batch)
                imported += len(batch)
        return imported

    def _import_batch(self, batch: list[dict[str, Any]]) -> None:
        now, t, zero = self._now(), self._time, self._money(Decimal(0))
        sessions = [
            (
                s["id"],
                None,
                s["type"],
                None,
                s["task"],
                s["status"],
                t(s["created_at"]),
                t(s["updated_at"]),
                t(s.get("completed_at")),
                None if s.get("total_duration") is None else s["total_duration"] * 1000,
                zero,
                0,
                0,
                s.get("model"),
                s.get("timeout_seconds"),
                s.get("preserve_worktrees"),
                s.get("winner_id"),
                None if s.get("runtime_mix") is None else json.dumps(s["runtime_mix"]),
                s.get("total_files_changed"),
                s.get("total_lines_added"),
                s.get("total_lines_deleted"),
                "{}",
            )
            for s in batch
        ]
        instances = [
            (
                s["id"],
                i["instance_id"],
                i["worktree_path"],
                i["branch"],
                i["agent_name"],
                i["status"],
                i["tmux_session_id"],
                i.get("output"),
                t(i.get("start_time")),
                t(i.get("end_time")),
                i.get("files_changed"),
                i.get("lines_added"),
                i.get("lines_deleted"),
                i.get("runtime"),
                i.get("model"),
                i.get("runtime_label"),
            )
            for s in batch
            for i in s.get("instances", [])
        ]
        messages = [
            (m["id"], s["id"], m["role"], m["content"], t(m["timestamp"]), m.get("instance_id"))
            for s in batch
            for m in s.get("chat_history", [])
        ]
        events = [
            (
                str(uuid.uuid4()),
                s["id"],
                "session.imported",
                "system",
                "statekeeper",
                f"{s['type']} session stored whole",
                json.dumps({"kind": s["type"]}),
                now,
            )
            for s in batch
        ]
        self._begin(True)
        self.cur.executemany(self.q["import_session"], sessions)
        self.cur.executemany(self.q["import_instance"], instances)
        self.cur.executemany(self.q["insert_chat"], messages)
        self.cur.executemany(self.q["insert_event"], events)
        self._commit()

    def close(self) -> None:
        self.cur.close()
        self.connection.close()
