"""Model-based test: hypothesis drives the public API against a small in-memory model.

Each rule calls one operation with arguments that may be valid or not (unknown ids, bad
statuses, NaN, NUL, lone surrogates, wrong types, stale versions), predicts from the model
what must happen, and then compares the part of the store the call could change with the
model. A call the model says must fail must raise exactly that StateError subclass and
change nothing; any other exception fails the test. At the end of each run the whole
store is compared. It runs on SQLite and PostgreSQL, through StateManager and through
AsyncStateManager (tests/async_facade.py).

Steps and examples are bounded so the four runs take seconds; under CI=true the
examples are derandomized (the same every run). For a long local run:
`SK_MODEL_EXAMPLES=500 pytest tests/test_model_based.py`.
"""

from __future__ import annotations

import itertools
import math
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy.engine import URL

from statekeeper import (
    AgentNotFound,
    InvalidInput,
    InvalidTransition,
    SessionCompleted,
    SessionNotFound,
    SnapshotNotFound,
    StateError,
    StateManager,
    VersionConflict,
)
from tests.async_facade import AsyncFacade
from tests.conftest import _empty_tables, _in_ci

SESSION_IDS = ("s0", "s1", "s2")
BAD_IDS = ("", " s0")
AGENT_IDS = ("a0", "a1")
PHASES = ("plan", "build", "test")
SESSION_STATUSES = ("running", "paused", "completed", "failed")
AGENT_STATUSES = ("idle", "running", "paused", "stopped", "failed")
MAX_SNAPSHOTS = 3
"""Small, so rotation is reached within a run."""

SETTINGS = settings(
    max_examples=int(os.environ.get("SK_MODEL_EXAMPLES", "10")),
    stateful_step_count=int(os.environ.get("SK_MODEL_STEPS", "25")),
    deadline=None,
    database=None,
    derandomize=_in_ci(),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Values ------------------------------------------------------------------------------

BAD_TEXTS = ("a\x00b", "x\ud800y")
"""What no engine stores alike: NUL (PostgreSQL cannot), a lone surrogate (not Unicode)."""
good_texts = st.one_of(
    st.text(max_size=8), st.sampled_from(["", "é漢😀", "\u200f", "' OR 1=1; --", "a\\u0000"])
)
texts = st.one_of(good_texts, good_texts, good_texts, st.sampled_from(BAD_TEXTS))
"""Mostly storable: a quarter of them are not."""


def _json(text: st.SearchStrategy[str], bad_floats: bool) -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=bad_floats, allow_infinity=bad_floats),
        text,
    )
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=3), st.dictionaries(text, children, max_size=3)
        ),
        max_leaves=5,
    )


good_json = _json(good_texts, bad_floats=False)
any_json = _json(texts, bad_floats=True)
json_values = st.one_of(good_json, good_json, good_json, any_json)
"""Mostly storable JSON; the rest may hold NaN, infinities, NUL or lone surrogates."""
json_objects = st.one_of(
    st.dictionaries(good_texts, good_json, max_size=3),
    st.dictionaries(good_texts, good_json, max_size=3),
    st.dictionaries(texts, any_json, max_size=3),
)
costs = st.sampled_from(
    [0, 1, "0.01", Decimal("1.5"), 0.1, "0.000000005", "3.25", 2, -1, "nan", float("inf"), None]
)
durations = st.sampled_from([0, 1500, 10, 250, 7, -1, 2**63, "10"])
session_ids = st.sampled_from(SESSION_IDS * 3 + BAD_IDS)
agent_ids = st.sampled_from(AGENT_IDS * 3 + ("",))


def storable_text(text: str) -> bool:
    return "\x00" not in text and not any(0xD800 <= ord(c) <= 0xDFFF for c in text)


def storable(value: Any) -> bool:
    """Whether a JSON value can be stored on both engines (else InvalidInput)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, list):
        return all(storable(item) for item in value)
    if isinstance(value, dict):
        return all(storable_text(k) and storable(v) for k, v in value.items())
    return True


def same(stored: Any, expected: Any) -> bool:
    """JSON equality; a float may come back as an int of the same value (JSONB numeric)."""
    if isinstance(expected, bool) or isinstance(stored, bool):
        return type(stored) is type(expected) and stored == expected
    if isinstance(expected, int | float) and isinstance(stored, int | float):
        if isinstance(expected, float) or isinstance(stored, float):
            return float(stored) == float(expected)
        return stored == expected
    if isinstance(expected, list):
        return (
            isinstance(stored, list)
            and len(stored) == len(expected)
            and all(same(s, e) for s, e in zip(stored, expected, strict=True))
        )
    if isinstance(expected, dict):
        return (
            isinstance(stored, dict)
            and stored.keys() == expected.keys()
            and all(same(stored[k], expected[k]) for k in expected)
        )
    return type(stored) is type(expected) and stored == expected


def amount(cost: Any) -> Decimal | None:
    """The exact amount the store keeps for a cost, or None if it is not a valid amount."""
    if isinstance(cost, bool) or not isinstance(cost, Decimal | int | str | float):
        return None
    try:
        value = Decimal(str(cost))
    except ArithmeticError:
        return None
    if not value.is_finite() or value < 0:
        return None
    return value.quantize(Decimal("1e-8"))


def count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63


# The model ---------------------------------------------------------------------------


@dataclass
class SessionModel:
    status: str = "running"
    phases: dict[str, tuple[Any, Decimal]] = field(default_factory=dict)
    """Phase id to (output, cost), in the order first completed."""
    context: dict[str, Any] | None = None
    chat: list[tuple[str, str]] = field(default_factory=list)
    snapshots: list[str] = field(default_factory=list)
    """Live snapshot ids, oldest first."""

    @property
    def cost(self) -> Decimal:
        return sum((cost for _, cost in self.phases.values()), Decimal(0))


@dataclass
class AgentModel:
    version: int
    status: str
    state_data: Any
    metadata: dict[str, Any]
    deleted: bool = False
    snapshots: list[str] = field(default_factory=list)


@dataclass
class SnapshotModel:
    session_id: str | None
    agent_id: str | None
    content: Any


@dataclass
class Figures:
    """What the runs did, for the report and to prove they exercised something."""

    examples: int = 0
    steps: int = 0
    refused: int = 0
    accepted: int = 0
    refused_by_type: dict[str, int] = field(default_factory=dict)


class APIModel(RuleBasedStateMachine):
    """The public API of one manager against the model; `open_manager` gives a fresh store."""

    open_manager: Callable[[], StateManager]
    figures: Figures

    def __init__(self) -> None:
        super().__init__()
        self.sm = type(self).open_manager()
        type(self).figures.examples += 1
        self.sessions: dict[str, SessionModel] = {}
        self.agents: dict[str, AgentModel] = {}
        self.snapshots: dict[str, SnapshotModel] = {}
        self.snapshot_ids: list[str] = ["no-such-snapshot"]

    def teardown(self) -> None:
        try:
            for sid in SESSION_IDS:
                self.check_session(sid)
            for aid in AGENT_IDS:
                self.check_agent(aid)
            assert self.sm.get_total_sessions() == len(self.sessions)
            report = self.sm.integrity_check()
            assert report.ok, report.problems
        finally:
            self.sm.close()

    # How a call is made and judged -------------------------------------------------------

    def call(self, expected: type[StateError] | None, fn: Callable[[], Any]) -> Any:
        """Make the call; it must succeed, or raise exactly `expected`."""
        figures = type(self).figures
        figures.steps += 1
        if expected is None:
            figures.accepted += 1
            return fn()
        with pytest.raises(StateError) as caught:
            fn()
        assert type(caught.value) is expected, f"expected {expected.__name__}: {caught.value!r}"
        figures.refused += 1
        name = expected.__name__
        figures.refused_by_type[name] = figures.refused_by_type.get(name, 0) + 1
        return None

    def session_error(
        self, sid: str, *, completed_ok: bool = False, transition: bool = False
    ) -> type[StateError] | None:
        """What a write to session `sid` raises, its arguments being valid."""
        if sid in BAD_IDS:
            return InvalidInput
        session = self.sessions.get(sid)
        if session is None:
            return SessionNotFound
        if session.status == "completed" and not completed_ok:
            return InvalidTransition if transition else SessionCompleted
        return None

    # Checks --------------------------------------------------------------------------------

    def check_session(self, sid: str) -> None:
        model = self.sessions.get(sid)
        stored = self.sm.get_session(sid)
        if model is None:
            assert stored is None
            assert self.sm.get_completed_phases(sid) == []
            assert self.sm.list_snapshots(session_id=sid) == []
            return
        assert stored is not None
        assert stored.status == model.status
        assert stored.cost_usd == model.cost
        assert (stored.completed_at is not None) == (model.status in ("completed", "failed"))
        phases = self.sm.get_completed_phases(sid)
        assert [p.phase_id for p in phases] == list(model.phases)
        for phase in phases:
            output, cost = model.phases[phase.phase_id]
            assert same(phase.output, output), (phase.output, output)
            assert phase.cost_usd == cost
        context = self.sm.load_context(sid)
        if model.context is None:
            assert context is None
        else:
            assert context is not None
            assert same(context.data, model.context), (context.data, model.context)
            assert context.last_completed_phase == (
                list(model.phases)[-1] if model.phases else None
            )
            assert context.accumulated_cost == model.cost
        chat = [(m.role, m.content) for m in self.sm.get_chat_history(sid)]
        assert chat == model.chat
        listed = [s.id for s in self.sm.list_snapshots(session_id=sid)]
        assert listed == model.snapshots[::-1]

    def check_agent(self, aid: str) -> None:
        model = self.agents.get(aid)
        loaded = self.sm.load_agent_state(aid)
        if model is None or model.deleted:
            assert loaded is None
        else:
            assert loaded is not None
            assert (loaded.version, loaded.status) == (model.version, model.status)
            assert same(loaded.state_data, model.state_data), (loaded.state_data, model)
            assert same(loaded.metadata, model.metadata)
        every = {a.agent_id: a for a in self.sm.list_agents(include_deleted=True)}
        if model is None:
            assert aid not in every
        else:
            assert every[aid].version == model.version
            assert (every[aid].deleted_at is not None) == model.deleted
        listed = [s.id for s in self.sm.list_snapshots(agent_id=aid)]
        assert listed == ([] if model is None else model.snapshots[::-1])

    @initialize()
    def start(self) -> None:
        """A session and an agent to begin with, so most runs work on something."""
        self.create_session("s0", {})
        self.create_session("s1", {"k": [1, "é"]})
        self.save_agent("a0", "idle", None, {}, None)

    # Sessions ------------------------------------------------------------------------------

    @rule(sid=session_ids, metadata=st.one_of(json_objects, json_objects, texts))
    def create_session(self, sid: str, metadata: Any) -> None:
        if sid in BAD_IDS or not isinstance(metadata, dict) or not storable(metadata):
            expected: type[StateError] | None = InvalidInput
        else:
            expected = InvalidInput if sid in self.sessions else None
        created = self.call(
            expected, lambda: self.sm.create_session("subject", session_id=sid, metadata=metadata)
        )
        if expected is None:
            assert created == sid
            self.sessions[sid] = SessionModel()
        if sid not in BAD_IDS:
            self.check_session(sid)

    @rule(
        sid=session_ids,
        status=st.sampled_from((*SESSION_STATUSES, *SESSION_STATUSES, "done", "RUNNING")),
        message=st.one_of(st.none(), texts),
    )
    def update_status(self, sid: str, status: str, message: str | None) -> None:
        if status not in SESSION_STATUSES or (message is not None and not storable(message)):
            expected: type[StateError] | None = InvalidInput
        else:
            expected = self.session_error(sid, completed_ok=False, transition=True)
        self.call(expected, lambda: self.sm.update_session_status(sid, status, message))
        if expected is None:
            self.sessions[sid].status = status
        if sid not in BAD_IDS:
            self.check_session(sid)

    @rule(sid=session_ids)
    def delete_session(self, sid: str) -> None:
        expected = self.session_error(sid, completed_ok=True)
        self.call(expected, lambda: self.sm.delete_session(sid))
        if expected is None:
            for snapshot_id in self.sessions.pop(sid).snapshots:
                del self.snapshots[snapshot_id]
        if sid not in BAD_IDS:
            self.check_session(sid)

    # Phases and context --------------------------------------------------------------------

    @rule(
        sid=st.sampled_from(SESSION_IDS),
        phase=st.sampled_from((*PHASES, *PHASES, "", " plan")),
        output=json_values,
        duration=durations,
        cost=costs,
        context=st.one_of(st.none(), json_objects, st.just([1])),
    )
    def save_phase(
        self, sid: str, phase: str, output: Any, duration: Any, cost: Any, context: Any
    ) -> None:
        price = amount(cost)
        valid = (
            phase in PHASES
            and storable(output)
            and count(duration)
            and price is not None
            and (context is None or (isinstance(context, dict) and storable(context)))
        )
        expected = InvalidInput if not valid else self.session_error(sid)
        self.call(
            expected,
            lambda: self.sm.save_phase_completion(
                sid, phase, output, duration, cost, context=context
            ),
        )
        if expected is None:
            assert price is not None
            session = self.sessions[sid]
            session.phases[phase] = (output, price)
            if context is not None:
                session.context = context
        self.check_session(sid)

    @rule(sid=session_ids, data=st.one_of(json_objects, json_objects, json_values))
    def save_context(self, sid: str, data: Any) -> None:
        if not isinstance(data, dict) or not storable(data):
            expected: type[StateError] | None = InvalidInput
        else:
            expected = self.session_error(sid)
        self.call(expected, lambda: self.sm.save_context(sid, data))
        if expected is None:
            self.sessions[sid].context = data
        if sid not in BAD_IDS:
            self.check_session(sid)

    # Chat ------------------------------------------------------------------------------------

    @rule(
        sid=session_ids,
        role=st.sampled_from(("user", "assistant", "system", "user", "robot")),
        content=st.one_of(texts, texts, st.integers()),
    )
    def add_chat(self, sid: str, role: str, content: Any) -> None:
        if role == "robot" or not isinstance(content, str) or not storable_text(content):
            expected: type[StateError] | None = InvalidInput
        else:
            expected = self.session_error(sid, completed_ok=True)
        self.call(expected, lambda: self.sm.add_chat_message(sid, role, content))
        if expected is None:
            self.sessions[sid].chat.append((role, content))
        if sid not in BAD_IDS:
            self.check_session(sid)

    # Snapshots -------------------------------------------------------------------------------

    def keep(self, owner: list[str], snapshot_id: str) -> None:
        owner.append(snapshot_id)
        while len(owner) > MAX_SNAPSHOTS:
            del self.snapshots[owner.pop(0)]

    @rule(sid=session_ids)
    def snapshot_session(self, sid: str) -> None:
        expected = self.session_error(sid, completed_ok=True)
        snapshot_id = self.call(expected, lambda: self.sm.create_snapshot(session_id=sid))
        if expected is None:
            session = self.sessions[sid]
            content = (dict(session.phases), session.context)
            self.snapshots[snapshot_id] = SnapshotModel(sid, None, content)
            self.snapshot_ids.append(snapshot_id)
            self.keep(session.snapshots, snapshot_id)
        if sid not in BAD_IDS:
            self.check_session(sid)

    @rule(aid=st.sampled_from(AGENT_IDS))
    def snapshot_agent(self, aid: str) -> None:
        agent = self.agents.get(aid)
        expected = AgentNotFound if agent is None or agent.deleted else None
        snapshot_id = self.call(expected, lambda: self.sm.create_snapshot(agent_id=aid))
        if expected is None:
            assert agent is not None
            content = (agent.status, agent.state_data)
            self.snapshots[snapshot_id] = SnapshotModel(None, aid, content)
            self.snapshot_ids.append(snapshot_id)
            self.keep(agent.snapshots, snapshot_id)
        self.check_agent(aid)

    @rule(pick=st.integers(min_value=0, max_value=63))
    def restore_snapshot(self, pick: int) -> None:
        snapshot_id = self.snapshot_ids[pick % len(self.snapshot_ids)]
        snapshot = self.snapshots.get(snapshot_id)
        expected: type[StateError] | None = None
        if snapshot is None:
            expected = SnapshotNotFound
        elif snapshot.session_id is not None:
            expected = self.session_error(snapshot.session_id)
        else:
            assert snapshot.agent_id is not None
            if self.agents[snapshot.agent_id].deleted:
                expected = AgentNotFound
        restored = self.call(expected, lambda: self.sm.restore_snapshot(snapshot_id))
        if expected is None:
            assert snapshot is not None
            assert restored.id == snapshot_id
            if snapshot.session_id is not None:
                session = self.sessions[snapshot.session_id]
                session.phases, session.context = dict(snapshot.content[0]), snapshot.content[1]
            else:
                assert snapshot.agent_id is not None
                agent = self.agents[snapshot.agent_id]
                agent.status, agent.state_data = snapshot.content
                agent.version += 1
        if snapshot is not None and snapshot.session_id is not None:
            self.check_session(snapshot.session_id)
        elif snapshot is not None and snapshot.agent_id is not None:
            self.check_agent(snapshot.agent_id)

    # Agents ----------------------------------------------------------------------------------

    @rule(
        aid=agent_ids,
        status=st.sampled_from((*AGENT_STATUSES, "sleeping")),
        state_data=json_values,
        metadata=st.one_of(json_objects, json_objects, st.integers()),
        expected_version=st.one_of(st.none(), st.integers(min_value=-1, max_value=4)),
    )
    def save_agent(
        self, aid: str, status: str, state_data: Any, metadata: Any, expected_version: Any
    ) -> None:
        agent = self.agents.get(aid)
        valid = (
            aid in AGENT_IDS
            and status in AGENT_STATUSES
            and storable(state_data)
            and isinstance(metadata, dict)
            and storable(metadata)
            and (expected_version is None or expected_version >= 0)
        )
        expected: type[StateError] | None = None
        if not valid:
            expected = InvalidInput
        elif agent is None:
            expected = None if expected_version in (None, 0) else VersionConflict
        elif agent.deleted:
            expected = AgentNotFound
        elif expected_version is not None and expected_version != agent.version:
            expected = VersionConflict
        state = {"agent_id": aid, "status": status, "state_data": state_data, "metadata": metadata}
        saved = self.call(
            expected, lambda: self.sm.save_agent_state(state, expected_version=expected_version)
        )
        if expected is None:
            if agent is None:
                agent = self.agents[aid] = AgentModel(0, status, state_data, metadata)
            agent.version += 1
            agent.status, agent.state_data, agent.metadata = status, state_data, metadata
            assert saved.version == agent.version
        if aid in AGENT_IDS:
            self.check_agent(aid)

    @rule(aid=st.sampled_from(AGENT_IDS), status=st.sampled_from((*AGENT_STATUSES, "Running")))
    def agent_status(self, aid: str, status: str) -> None:
        agent = self.agents.get(aid)
        expected: type[StateError] | None = None
        if status not in AGENT_STATUSES:
            expected = InvalidInput
        elif agent is None or agent.deleted:
            expected = AgentNotFound
        self.call(expected, lambda: self.sm.update_agent_status(aid, status))
        if expected is None:
            assert agent is not None
            if agent.status != status:
                agent.status = status
                agent.version += 1
        self.check_agent(aid)

    @rule(aid=st.sampled_from(AGENT_IDS), delete=st.booleans())
    def delete_or_restore_agent(self, aid: str, delete: bool) -> None:
        agent = self.agents.get(aid)
        expected = AgentNotFound if agent is None else None
        operation = self.sm.delete_agent if delete else self.sm.restore_agent
        self.call(expected, lambda: operation(aid))
        if agent is not None and agent.deleted != delete:
            agent.deleted = delete
            agent.version += 1
        self.check_agent(aid)


@pytest.fixture
def open_manager(
    engine_name: str, manager_kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Callable[[], StateManager]:
    """Opens a manager of the kind under test on a fresh, empty store each time."""
    numbers = itertools.count()

    def store() -> str:
        if engine_name == "sqlite":
            template: Path = request.getfixturevalue("sqlite_template")
            path = tmp_path / f"model-{next(numbers)}.db"
            shutil.copy2(template, path)
            return str(path)
        url: URL = request.getfixturevalue("pg_store")
        _empty_tables(url)
        return url.render_as_string(hide_password=False)

    def open_manager() -> StateManager:
        if manager_kind == "sync":
            return StateManager(store(), max_snapshots=MAX_SNAPSHOTS)
        return cast(StateManager, AsyncFacade(store(), max_snapshots=MAX_SNAPSHOTS))

    return open_manager


def test_the_public_api_agrees_with_the_model(
    open_manager: Callable[[], StateManager], engine_name: str, manager_kind: str
) -> None:
    figures = Figures()
    machine = type(
        "Machine", (APIModel,), {"open_manager": staticmethod(open_manager), "figures": figures}
    )
    run_state_machine_as_test(machine, settings=SETTINGS)
    print(f"\n{engine_name}/{manager_kind}: {figures}")
    # The runs exercised both sides: calls that must succeed and bad ones that must not.
    assert figures.examples >= SETTINGS.max_examples
    assert figures.accepted > 0
    assert figures.refused > 0
