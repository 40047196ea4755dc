"""Statistics, cost trends and the event log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from statekeeper import StateManager
from statekeeper.models import SessionRow


def _set(sm: StateManager, sid: str, **values: object) -> None:
    with sm.engine.begin() as connection:
        connection.execute(sa.update(SessionRow).where(SessionRow.id == sid).values(**values))


def test_statistics_average_completed_sessions_only(sm: StateManager) -> None:
    empty = sm.get_statistics()
    assert (empty.total_sessions, empty.completed_sessions, empty.failed_sessions) == (0, 0, 0)
    assert empty.avg_cost_usd == 0 and empty.avg_duration_ms == 0
    a, b, c, d = (sm.create_session(str(i)) for i in range(4))
    sm.save_phase_completion(a, "p", {}, 1, "0.10")
    sm.save_phase_completion(b, "p", {}, 1, "0.25")
    sm.save_phase_completion(c, "p", {}, 1, "9.00")
    sm.update_session_status(a, "completed")
    sm.update_session_status(b, "completed")
    sm.update_session_status(c, "failed")
    _set(sm, a, duration_ms=1000)
    _set(sm, b, duration_ms=2001)
    stats = sm.get_statistics()
    assert (stats.total_sessions, stats.completed_sessions, stats.failed_sessions) == (4, 2, 1)
    assert stats.avg_cost_usd == Decimal("0.175")
    assert stats.avg_duration_ms == 1500
    assert d


def test_cost_trends_fill_every_day(sm: StateManager) -> None:
    now = datetime.now(UTC)
    today, yesterday, old = (sm.create_session(n) for n in ("today", "yesterday", "old"))
    sm.save_phase_completion(today, "p", {}, 1, "0.01")
    sm.save_phase_completion(yesterday, "p", {}, 1, "0.02")
    sm.save_phase_completion(old, "p", {}, 1, "5")
    _set(sm, yesterday, created_at=now - timedelta(days=1))
    _set(sm, old, created_at=now - timedelta(days=30))
    trends = sm.get_cost_trends(3)
    assert [t.day for t in trends] == [(now - timedelta(days=n)).date() for n in (2, 1, 0)]
    assert [(t.cost_usd, t.sessions) for t in trends] == [
        (Decimal(0), 0),
        (Decimal("0.02"), 1),
        (Decimal("0.01"), 1),
    ]
    assert sum(t.sessions for t in sm.get_cost_trends(31)) == 3


def test_cost_trends_use_utc_days(store_url: str, engine_name: str) -> None:
    # The connection's time zone is UTC+14, where 23:30 UTC is already the next day.
    options: dict[str, Any] = {"connect_args": {"options": "-c timezone=Pacific/Kiritimati"}}
    with StateManager(store_url, **(options if engine_name == "postgresql" else {})) as sm:
        sid = sm.create_session()
        sm.save_phase_completion(sid, "p", {}, 1, "1")
        late = datetime.now(UTC).replace(hour=23, minute=30) - timedelta(days=1)
        _set(sm, sid, created_at=late)
        session = sm.get_session(sid)
        assert session is not None and session.created_at == late
        trends = sm.get_cost_trends(2)
        assert [(t.day, t.sessions) for t in trends] == [
            (late.date(), 1),
            (late.date() + timedelta(days=1), 0),
        ]


def test_events_record_and_filter(sm: StateManager) -> None:
    sid = sm.create_session()
    first = sm.record_event(
        "note",
        "operator paused",
        session_id=sid,
        actor_type="user",
        actor_id="ana",
        metadata={"why": "budget"},
    )
    sm.record_event("note", "global note")
    sm.save_phase_completion(sid, "p", {}, 1, 0)
    events = sm.get_events(sid)
    assert [e.event_type for e in events] == ["session.created", "note", "phase.completed"]
    note = events[1]
    assert note.id == first and note.actor_type == "user" and note.actor_id == "ana"
    assert note.metadata == {"why": "budget"} and note.content == "operator paused"
    assert note.created_at.tzinfo is not None
    assert [e.content for e in sm.get_events_by_type("note")] == [
        "operator paused",
        "global note",
    ]
