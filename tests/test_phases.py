"""Phase checkpoints, workflow context, resume, run_phase and exact money."""

from __future__ import annotations

import math
import random
from decimal import Decimal

import pytest

from statekeeper import (
    InvalidInput,
    PhaseResult,
    SessionCompleted,
    SessionNotFound,
    StateManager,
    WorkflowContext,
)


def test_costs_add_up_exactly(sm: StateManager) -> None:
    sid = sm.create_session("TechCorp")
    sm.save_phase_completion(sid, "phase_1", {}, 1000, 0.02)
    sm.save_phase_completion(sid, "phase_2", {}, 1000, 0.03)
    sm.save_phase_completion(sid, "phase_3", {}, 1000, 0.01)
    session = sm.get_session(sid)
    assert session is not None
    assert session.cost_usd == Decimal("0.06")
    assert isinstance(session.cost_usd, Decimal)


def test_large_session_totals_are_exact(sm: StateManager) -> None:
    rng = random.Random(11)
    costs = [Decimal(rng.randrange(1, 8 * 10**12)).scaleb(-8) for _ in range(200)]
    floating = 0.0
    for cost in costs:
        floating += float(cost)
    # Precondition: summing these as floating point (SQLite REAL) misrounds the total.
    assert Decimal(f"{floating:.8f}") != sum(costs)
    sid = sm.create_session()
    with sm.transaction():
        for i, cost in enumerate(costs):
            sm.save_phase_completion(sid, f"p{i}", None, 1, cost)
    session = sm.get_session(sid)
    assert session is not None and session.cost_usd == sum(costs) == Decimal("7047288.94878161")
    assert sm.integrity_check().ok


def test_a_session_total_past_the_limit_is_rejected_on_both_engines(sm: StateManager) -> None:
    sid = sm.create_session()
    sm.save_phase_completion(sid, "p1", {}, 1, "9999999.99999999")
    with pytest.raises(InvalidInput) as info:
        sm.save_phase_completion(sid, "p2", {}, 1, "0.00000001")
    assert info.value.field == "cost_usd"
    assert [p.phase_id for p in sm.get_completed_phases(sid)] == ["p1"]
    sm.save_phase_completion(sid, "p1", {}, 1, "1")  # replacing lowers the total: fine
    sm.save_phase_completion(sid, "p2", {}, 1, "2")
    session = sm.get_session(sid)
    assert session is not None and session.cost_usd == 3


def test_money_accepts_decimal_int_str_and_rounds_to_eight_places(sm: StateManager) -> None:
    sid = sm.create_session()
    sm.save_phase_completion(sid, "a", None, 1, Decimal("0.000000015"))
    sm.save_phase_completion(sid, "b", None, 1, 2)
    sm.save_phase_completion(sid, "c", None, 1, "1234567.12345678")
    costs = {p.phase_id: p.cost_usd for p in sm.get_completed_phases(sid)}
    assert costs == {
        "a": Decimal("0.00000002"),
        "b": Decimal(2),
        "c": Decimal("1234567.12345678"),
    }
    session = sm.get_session(sid)
    assert session is not None
    assert session.cost_usd == Decimal("1234569.12345680")


def test_resaving_a_phase_replaces_it(sm: StateManager) -> None:
    sid = sm.create_session()
    sm.save_phase_completion(sid, "p1", {"v": 1}, 10, "0.10", tokens_in=100, tokens_out=10)
    sm.save_phase_completion(sid, "p2", {"v": 2}, 20, "0.20", tokens_in=200, tokens_out=20)
    sm.save_phase_completion(sid, "p1", {"v": 3}, 30, "0.05", tokens_in=50, tokens_out=5)
    phases = sm.get_completed_phases(sid)
    # Replaced in place: p1 keeps its position, so resume still continues after p2.
    assert [(p.phase_id, p.output) for p in phases] == [("p1", {"v": 3}), ("p2", {"v": 2})]
    assert phases[0].completed_at > phases[1].completed_at
    context = sm.resume_session(sid)
    assert context is not None and context.last_completed_phase == "p2"
    session = sm.get_session(sid)
    assert session is not None
    assert session.cost_usd == Decimal("0.25")
    assert (session.tokens_in, session.tokens_out) == (250, 25)
    replaced = [
        e.metadata["replaced"] for e in sm.get_events(sid) if e.event_type == "phase.completed"
    ]
    assert replaced == [False, False, True]
    assert sm.integrity_check().ok


def test_phases_are_oldest_first_with_exact_fields(sm: StateManager) -> None:
    sid = sm.create_session()
    for i in range(5):
        sm.save_phase_completion(sid, f"phase_{i}", {"i": i, "text": "ü" * i}, i * 100, i)
    phases = sm.get_completed_phases(sid)
    assert [p.phase_id for p in phases] == [f"phase_{i}" for i in range(5)]
    assert phases[3].output == {"i": 3, "text": "üüü"}
    assert phases[3].duration_ms == 300
    assert phases[3].session_id == sid
    assert phases[0].completed_at <= phases[4].completed_at
    assert sm.is_phase_completed(sid, "phase_4")
    assert not sm.is_phase_completed(sid, "phase_5")


def _nested(depth: int) -> object:
    value: object = "bottom"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "output",
    [
        None,
        1,
        1.5,
        "text",
        [1, "a", None],
        {"nested": {"deep": [True, False]}},
        2**80,  # beyond 64 bits
        0.1 + 0.2,
        {"é": "中文 😀", "esc": '"quoted" \\ \n'},
        _nested(600),  # deeper than the fast JSON parser goes: read back by json.loads
    ],
    ids=lambda value: type(value).__name__,
)
def test_any_json_value_is_an_output(sm: StateManager, output: object) -> None:
    sid = sm.create_session()
    sm.save_phase_completion(sid, "p", output, 0, 0)
    assert sm.get_completed_phases(sid)[0].output == output


def test_context_round_trip_and_replacement(sm: StateManager) -> None:
    sid = sm.create_session()
    assert sm.load_context(sid) is None
    sm.save_context(sid, {"target_company": "TechCorp", "phase_1_output": {"data": "x"}})
    sm.save_phase_completion(sid, "phase_1", {"data": "x"}, 5000, "0.02")
    context = sm.load_context(sid)
    assert context == WorkflowContext(
        data={"target_company": "TechCorp", "phase_1_output": {"data": "x"}},
        last_completed_phase="phase_1",
        accumulated_cost=Decimal("0.02"),
    )
    sm.save_context(sid, {"only": "this"})
    context = sm.load_context(sid)
    assert context is not None and context.data == {"only": "this"}


def test_phase_and_context_save_together(sm: StateManager) -> None:
    sid = sm.create_session()
    sm.save_phase_completion(sid, "p1", "out", 1, "0.01", context={"after": "p1"})
    context = sm.load_context(sid)
    assert context is not None
    assert context.data == {"after": "p1"} and context.last_completed_phase == "p1"


def test_rejected_context_rolls_back_the_phase(sm: StateManager) -> None:
    sid = sm.create_session()
    with pytest.raises(InvalidInput) as info:
        sm.save_phase_completion(sid, "p1", "out", 1, "0.01", context={"bad": {1, 2}})
    assert info.value.field == "context"
    assert sm.get_completed_phases(sid) == []
    assert sm.load_context(sid) is None


def test_resume_after_a_crash(store_url: str) -> None:
    with StateManager(store_url) as first:
        sid = first.create_session("TechCorp")
        first.save_phase_completion(
            sid, "phase_1", {"profile": "data"}, 5000, "0.02", context={"company": "TechCorp"}
        )
    with StateManager(store_url) as second:
        history = second.get_session_history(10)
        assert [s.id for s in history] == [sid]
        resumed = second.resume_session(sid)
        assert resumed is not None
        assert resumed.last_completed_phase == "phase_1"
        assert resumed.data == {"company": "TechCorp"}
        assert resumed.accumulated_cost == Decimal("0.02")


def test_resume_rules(sm: StateManager) -> None:
    fresh = sm.create_session()
    assert sm.resume_session(fresh) is None
    phases_only = sm.create_session()
    sm.save_phase_completion(phases_only, "p", 1, 1, "0.5")
    resumed = sm.resume_session(phases_only)
    assert resumed is not None
    assert resumed.data == {} and resumed.last_completed_phase == "p"
    sm.update_session_status(phases_only, "failed")
    assert sm.resume_session(phases_only) is not None
    sm.update_session_status(phases_only, "completed")
    with pytest.raises(SessionCompleted):
        sm.resume_session(phases_only)
    with pytest.raises(SessionNotFound):
        sm.resume_session("missing")


def test_completed_sessions_take_no_more_phases_or_context(sm: StateManager) -> None:
    sid = sm.create_session()
    sm.update_session_status(sid, "completed")
    with pytest.raises(SessionCompleted):
        sm.save_phase_completion(sid, "p", 1, 1, 0)
    with pytest.raises(SessionCompleted):
        sm.save_context(sid, {})
    assert sm.get_completed_phases(sid) == []


def test_run_phase_runs_once(sm: StateManager) -> None:
    sid = sm.create_session()
    calls: list[str] = []

    def phase() -> PhaseResult:
        calls.append("ran")
        return PhaseResult(
            output=("tuple", 1), cost_usd="0.125", tokens_in=7, tokens_out=3, context={"n": 1}
        )

    first = sm.run_phase(sid, "p1", phase)
    second = sm.run_phase(sid, "p1", phase)
    assert calls == ["ran"]
    assert first == second == ["tuple", 1]
    session = sm.get_session(sid)
    assert session is not None
    assert session.cost_usd == Decimal("0.125") and session.tokens_in == 7
    context = sm.load_context(sid)
    assert context is not None and context.data == {"n": 1}
    assert sm.run_phase(sid, "p2", lambda: {"plain": True}) == {"plain": True}
    assert sm.get_completed_phases(sid)[1].cost_usd == 0


def test_run_phase_failure_records_nothing(sm: StateManager) -> None:
    sid = sm.create_session()

    def broken() -> None:
        raise RuntimeError("model timed out")

    with pytest.raises(RuntimeError):
        sm.run_phase(sid, "p1", broken)
    assert not sm.is_phase_completed(sid, "p1")
    assert sm.run_phase(sid, "p1", lambda: "second try") == "second try"


def test_run_phase_on_completed_session(sm: StateManager) -> None:
    sid = sm.create_session()
    sm.run_phase(sid, "p1", lambda: 1)
    sm.update_session_status(sid, "completed")
    assert sm.run_phase(sid, "p1", lambda: 2) == 1
    with pytest.raises(SessionCompleted):
        sm.run_phase(sid, "p2", lambda: 2)


class NotJson:
    pass


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"phase_id": ""}, "phase_id"),
        ({"phase_id": " p"}, "phase_id"),
        ({"phase_id": "x" * 256}, "phase_id"),
        ({"cost_usd": math.nan}, "cost_usd"),
        ({"cost_usd": Decimal("NaN")}, "cost_usd"),
        ({"cost_usd": math.inf}, "cost_usd"),
        ({"cost_usd": "-0.01"}, "cost_usd"),
        ({"cost_usd": -1}, "cost_usd"),
        ({"cost_usd": "ten"}, "cost_usd"),
        ({"cost_usd": True}, "cost_usd"),
        ({"cost_usd": "1e400"}, "cost_usd"),  # too many digits to round
        ({"cost_usd": Decimal("1E+30")}, "cost_usd"),
        ({"cost_usd": None}, "cost_usd"),
        ({"cost_usd": "10000000"}, "cost_usd"),
        ({"duration_ms": -1}, "duration_ms"),
        ({"duration_ms": 1.5}, "duration_ms"),
        ({"output": NotJson()}, "output"),
        ({"output": {"x": math.nan}}, "output"),
        ({"output": {"bytes": b"raw"}}, "output"),
        ({"output": "nul \x00 char"}, "output"),
        ({"tokens_in": -5}, "tokens_in"),
        ({"tokens_out": "7"}, "tokens_out"),
        ({"context": ["not", "an", "object"]}, "context"),
    ],
)
def test_bad_phase_input_names_the_field_and_writes_nothing(
    sm: StateManager, kwargs: dict[str, object], field: str
) -> None:
    sid = sm.create_session()
    arguments: dict[str, object] = {
        "phase_id": "p1",
        "output": {"ok": True},
        "duration_ms": 10,
        "cost_usd": "0.01",
    }
    arguments.update(kwargs)
    with pytest.raises(InvalidInput) as info:
        sm.save_phase_completion(sid, **arguments)  # type: ignore[arg-type]
    assert info.value.field == field
    assert sm.get_completed_phases(sid) == []
    session = sm.get_session(sid)
    assert session is not None and session.cost_usd == 0
    assert [e.event_type for e in sm.get_events(sid)] == ["session.created"]


def test_json_backslash_before_u0000_is_not_a_nul(sm: StateManager) -> None:
    sid = sm.create_session()
    sm.save_phase_completion(sid, "p", {"path": "C:\\u0000dir"}, 1, 0)
    assert sm.get_completed_phases(sid)[0].output == {"path": "C:\\u0000dir"}


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda sm, sid: sm.save_context(sid, [1, 2]), "data"),
        (lambda sm, sid: sm.save_context(sid, {"f": lambda: 1}), "data"),
        (lambda sm, sid: sm.save_context(sid, {"x": float("inf")}), "data"),
        (lambda sm, sid: sm.create_session(metadata={"d": object()}), "metadata"),
        (lambda sm, sid: sm.create_session(metadata=[1]), "metadata"),
        (lambda sm, sid: sm.create_session(session_id=""), "session_id"),
        (lambda sm, sid: sm.create_session(kind=""), "kind"),
        (lambda sm, sid: sm.create_session(kind="k" * 65), "kind"),
        (lambda sm, sid: sm.create_session("nul\x00"), "subject"),
        (lambda sm, sid: sm.create_session(subject=5), "subject"),
        (lambda sm, sid: sm.update_session_status(sid, "failed", error_message=3), "error_message"),
        (lambda sm, sid: sm.save_markdown_output(sid, None), "markdown"),
        (lambda sm, sid: sm.get_cost_trends(0), "days"),
        (lambda sm, sid: sm.record_event("", "x"), "event_type"),
        (lambda sm, sid: sm.update_session_status("", "failed"), "session_id"),
    ],
)
def test_other_bad_inputs(sm: StateManager, call, field: str) -> None:
    sid = sm.create_session("baseline")
    before = sm.get_session(sid)
    with pytest.raises(InvalidInput) as info:
        call(sm, sid)
    assert info.value.field == field
    assert sm.get_total_sessions() == 1
    assert sm.get_session(sid) == before
    assert sm.load_context(sid) is None
