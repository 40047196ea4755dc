"""The ORM surface: models navigable from a session, minimal rows, read-only sessions, and
the application's own mapped objects committing with a `transaction()` block."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from statekeeper import ReadOnlyError, SessionNotFound, StateManager
from statekeeper.models import (
    ChatMessageRow,
    ContextRow,
    EventRow,
    InstanceRow,
    PhaseRow,
    SessionRow,
    WorkspaceRow,
)


class AppBase(DeclarativeBase):
    """An application's own models, in the same database as statekeeper's tables."""


class Note(AppBase):
    __tablename__ = "app_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[str] = mapped_column(
        sa.String(255), sa.ForeignKey(SessionRow.id, ondelete="CASCADE")
    )
    text: Mapped[str]


@pytest.fixture
def app_sm(sync_sm: StateManager) -> Iterator[StateManager]:
    """A manager whose database also holds the application's `app_notes` table."""
    AppBase.metadata.create_all(sync_sm.engine)
    yield sync_sm
    AppBase.metadata.drop_all(sync_sm.engine)


def _populated(sm: StateManager, workspace: Path) -> str:
    sid = sm.create_session("TechCorp", workspace=workspace)
    sm.save_phase_completion(sid, "research", {"r": 1}, 10, "0.10", context={"step": 1})
    sm.save_phase_completion(sid, "draft", {"d": 2}, 20, "0.20")
    sm.save_phase_completion(sid, "research", {"r": 3}, 30, "0.30")  # keeps its place
    for number in (2, 1):
        sm.add_instance(
            sid, number, worktree_path=f"/w/{number}", branch="b", agent_name="a",
            tmux_session_id="t",
        )  # fmt: skip
    for text in ("first", "second", "third"):
        sm.add_chat_message(sid, "user", text)
    return sid


def test_a_session_navigates_to_everything_that_belongs_to_it(
    sync_sm: StateManager, tmp_path: Path
) -> None:
    sid = _populated(sync_sm, tmp_path)
    with sync_sm.session() as s:
        row = s.get(SessionRow, sid)
        assert row is not None and row.subject == "TechCorp"
        assert [p.phase_id for p in row.phases] == ["research", "draft"]
        assert row.phases[0].output == {"r": 3}
        assert row.cost_usd == Decimal("0.50000000") == sum(p.cost_usd for p in row.phases)
        assert row.context is not None and row.context.data == {"step": 1}
        assert [i.instance_number for i in row.instances] == [1, 2]
        assert [m.content for m in row.chat_messages] == ["first", "second", "third"]
        assert [e.event_type for e in row.events] == [
            "session.created",
            "phase.completed",
            "phase.completed",
            "phase.completed",
        ]
        assert row.workspace is not None and row.workspace.path == str(tmp_path.resolve())
        assert row.workspace.sessions == [row]
        assert row.context.session is row
        assert all(phase.session is row for phase in row.phases)
        assert all(instance.session is row for instance in row.instances)
        assert all(message.session is row for message in row.chat_messages)
        assert all(event.session is row for event in row.events)
        assert row.created_at.tzinfo is UTC


def test_messages_and_events_are_found_by_their_ids(sync_sm: StateManager) -> None:
    sid = sync_sm.create_session("ids")
    message_id = sync_sm.add_chat_message(sid, "assistant", "hello")
    event_id = sync_sm.record_event("note", "a note", session_id=sid)
    with sync_sm.session() as s:
        message = s.get(ChatMessageRow, message_id)
        event = s.get(EventRow, event_id)
        assert message is not None and message.content == "hello"
        assert event is not None and event.content == "a note"
        assert s.get(SessionRow, "no such session") is None
        assert repr(message) == f"ChatMessageRow({message_id!r})"


def test_joins_and_aggregates_over_the_models(sync_sm: StateManager) -> None:
    for subject, cost in (("a", "0.25"), ("b", "0.50")):
        sid = sync_sm.create_session(subject)
        sync_sm.save_phase_completion(sid, "p1", {}, 100, cost)
        sync_sm.save_phase_completion(sid, "p2", {}, 300, cost)
    with sync_sm.session() as s:
        query = (
            sa.select(SessionRow.subject, sa.func.avg(PhaseRow.duration_ms))
            .join(SessionRow.phases)
            .group_by(SessionRow.subject)
            .order_by(SessionRow.subject)
        )
        assert [(subject, float(avg)) for subject, avg in s.execute(query)] == [
            ("a", 200.0),
            ("b", 200.0),
        ]


def test_minimal_rows_take_their_defaults(app_sm: StateManager) -> None:
    """Each model needs only what has no sensible default; the rest is filled in on flush."""
    with app_sm.transaction() as s:
        session = SessionRow(subject="built by hand")
        s.add(session)
        s.flush()
        s.add_all(
            [
                WorkspaceRow(id="0" * 16, path="/somewhere"),
                PhaseRow(session_id=session.id, phase_id="p", output=None),
                ContextRow(session_id=session.id),
                InstanceRow(
                    session_id=session.id,
                    instance_number=1,
                    worktree_path="/w",
                    branch="b",
                    agent_name="a",
                    tmux_session_id="t",
                ),
                ChatMessageRow(session_id=session.id, role="user", content="hi"),
                EventRow(session_id=session.id, event_type="note", content="n"),
            ]
        )
        s.flush()
        sid = session.id
    stored = app_sm.get_session(sid)
    assert stored is not None
    assert (stored.status, stored.kind, stored.cost_usd) == ("running", "workflow", Decimal(0))
    assert stored.created_at.tzinfo is UTC and stored.metadata == {}
    context = app_sm.load_context(sid)
    assert context is not None and context.data == {} and context.last_completed_phase == "p"
    assert [i.status for i in app_sm.get_instances(sid)] == ["idle"]
    assert [m.content for m in app_sm.get_chat_history(sid)] == ["hi"]
    assert [e.actor_id for e in app_sm.get_events(sid)] == ["statekeeper"]


def test_the_read_only_session_refuses_every_write(sync_sm: StateManager) -> None:
    sid = sync_sm.create_session("keep me")
    with sync_sm.session() as s:
        s.add(SessionRow(subject="sneaked in"))
        with pytest.raises(ReadOnlyError, match="read-only"):
            s.flush()
        s.rollback()
        row = s.get(SessionRow, sid)
        assert row is not None
        row.subject = "changed"
        with pytest.raises(ReadOnlyError):
            s.flush()
        s.rollback()
        s.delete(s.get(SessionRow, sid))
        with pytest.raises(ReadOnlyError):
            s.flush()
        s.rollback()
        # Statements that bypass the flush are refused by the database itself.
        with pytest.raises(sa.exc.DBAPIError):
            s.execute(sa.delete(SessionRow))
    session = sync_sm.get_session(sid)
    assert session is not None and session.subject == "keep me"
    assert sync_sm.get_total_sessions() == 1
    sync_sm.create_session("the connection writes again once returned to the pool")
    assert sync_sm.get_total_sessions() == 2
    probe = (
        "PRAGMA query_only"
        if sync_sm.engine.dialect.name == "sqlite"
        else ("SHOW transaction_read_only")
    )
    for _ in range(12):  # every pooled connection in turn: none is left read-only
        with sync_sm.engine.connect() as connection:
            assert str(connection.exec_driver_sql(probe).scalar()) in ("0", "off")


def test_the_applications_rows_commit_with_the_block(app_sm: StateManager) -> None:
    with app_sm.transaction() as s:
        sid = app_sm.create_session("with a note")
        s.add(Note(session_id=sid, text="written with the session"))
        app_sm.save_context(sid, {"noted": True})
    with app_sm.session() as s:
        assert s.scalars(sa.select(Note.text)).all() == ["written with the session"]


class Abandoned(Exception):
    """Raised inside a block to roll it back."""


def _abandon_with_a_note(sm: StateManager) -> None:
    with sm.transaction() as s:
        sid = sm.create_session("rolled back")
        s.add(Note(session_id=sid, text="never stored"))
        s.flush()
        raise Abandoned


def test_the_applications_rows_roll_back_with_the_block(app_sm: StateManager) -> None:
    with pytest.raises(Abandoned):
        _abandon_with_a_note(app_sm)
    assert app_sm.get_total_sessions() == 0
    with app_sm.session() as s:
        assert s.scalars(sa.select(Note)).all() == []


def test_calls_in_a_block_see_the_applications_pending_rows(app_sm: StateManager) -> None:
    """Pending objects are flushed before a statekeeper call, so it finds them."""
    with app_sm.transaction() as s:
        s.add(SessionRow(id="made-with-the-orm", subject="pending"))
        app_sm.save_phase_completion("made-with-the-orm", "p", {}, 1, "1")
    session = app_sm.get_session("made-with-the-orm")
    assert session is not None and session.cost_usd == Decimal(1)


def test_a_rejected_call_in_a_block_keeps_the_applications_rows(app_sm: StateManager) -> None:
    with app_sm.transaction() as s:
        sid = app_sm.create_session("kept")
        s.add(Note(session_id=sid, text="kept too"))
        with pytest.raises(SessionNotFound):
            app_sm.save_context("missing", {})
    with app_sm.session() as s:
        assert s.scalars(sa.select(Note.text)).all() == ["kept too"]


def test_nested_blocks_share_one_session(sync_sm: StateManager) -> None:
    with sync_sm.transaction() as outer, sync_sm.transaction() as inner:
        assert inner is outer


def test_committing_the_blocks_session_only_flushes(app_sm: StateManager) -> None:
    """The block stays one transaction: `s.commit()` inside it sends, but commits nothing."""

    def commit_then_abandon() -> None:
        with app_sm.transaction() as s:
            sid = app_sm.create_session("not yet")
            s.add(Note(session_id=sid, text="flushed, not committed"))
            s.commit()
            assert app_sm.get_total_sessions() == 1  # the block sees it
            raise Abandoned

    with pytest.raises(Abandoned):
        commit_then_abandon()
    assert app_sm.get_total_sessions() == 0
    with app_sm.session() as s:
        assert s.scalars(sa.select(Note)).all() == []


def test_selects_give_the_same_python_types_on_both_engines(sync_sm: StateManager) -> None:
    """What `pandas.read_sql(select(...), sm.engine)` receives: processed by the models."""
    sid = sync_sm.create_session("types", metadata={"team": "a"})
    sync_sm.save_phase_completion(sid, "p", {"k": [1]}, 5, "0.125")
    query = sa.select(
        SessionRow.created_at, SessionRow.metadata_, SessionRow.cost_usd, PhaseRow.output
    ).join(SessionRow.phases)
    with sync_sm.engine.connect() as connection:
        created_at, metadata, cost, output = connection.execute(query).one()
    assert created_at.tzinfo is UTC
    assert metadata == {"team": "a"} and output == {"k": [1]}
    assert cost == Decimal("0.125") and isinstance(cost, Decimal)
