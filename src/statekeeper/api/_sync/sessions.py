# Generated from the _async/ twin by scripts/gen_sync.py: edit that one, then run it.
"""Sessions, phase checkpoints, workflow context, run_phase and reporting."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from statekeeper.api.base import (
    ManagerBase,
    PathLike,
    call_result,
    json_object,
    optional_text,
    payload_text,
    positive,
)
from statekeeper.enums import SessionStatus
from statekeeper.errors import InvalidInput, SessionCompleted, SessionNotFound
from statekeeper.schemas import (
    CostTrend,
    PhaseCompletion,
    PhaseResult,
    Session,
    SessionStatistics,
    SessionSummary,
    WorkflowContext,
)
from statekeeper.services import phases, stats
from statekeeper.services import sessions as sessions_service
from statekeeper.values import (
    check_days,
    check_id,
    check_json,
    check_non_negative_int,
    check_text,
    dump_json,
    money,
)

__all__ = ["SessionsAPI"]


class SessionsAPI(ManagerBase):
    """Sessions and workflow checkpoints (seed: StateManager component design)."""

    def create_session(
        self,
        subject: str | None = None,
        *,
        kind: str = "workflow",
        task: str | None = None,
        workspace: PathLike | None = None,
        model: str | None = None,
        session_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> str:
        """Start a session: `running`, no cost yet. Returns its id (a new UUID by default)."""
        new_id = str(uuid.uuid4()) if session_id is None else check_id(session_id, "session_id")
        kind = check_id(kind, "kind")
        if len(kind) > 64:
            raise InvalidInput("kind", "longer than 64 characters")
        limit = self._store.max_value_bytes
        subject = optional_text(subject, "subject")
        task = None if task is None else payload_text(task, "task", limit)
        model = None if model is None else check_text(model, "model", max_length=255)
        data = json_object({} if metadata is None else metadata, "metadata", limit=limit)
        return self._db.run(
            lambda uow: sessions_service.create(
                uow,
                session_id=new_id,
                kind=kind,
                subject=subject,
                task=task,
                workspace=workspace,
                model=model,
                metadata=data,
            ),
            write=True,
            direct=True,
        )

    def get_session(self, session_id: str) -> Session | None:
        """The session, or None if there is none with that id."""
        return self._db.run(
            lambda uow: sessions_service.get(uow, session_id), write=False, direct=True
        )

    def update_session_status(
        self, session_id: str, status: SessionStatus | str, error_message: str | None = None
    ) -> None:
        """Move the session to `status`, setting `error_message` (None clears it)."""
        target = sessions_service.parse_status(status)
        message = optional_text(error_message, "error_message")
        self._db.run(
            lambda uow: sessions_service.update_status(uow, session_id, target, message),
            write=True,
            direct=True,
        )

    def save_markdown_output(self, session_id: str, markdown: str) -> None:
        """Store the session's final report."""
        text = payload_text(markdown, "markdown", self._store.max_value_bytes)
        self._db.run(
            lambda uow: sessions_service.save_markdown(uow, session_id, text),
            write=True,
            direct=True,
        )

    def get_session_history(
        self,
        limit: int = 50,
        *,
        status: SessionStatus | str | None = None,
        kind: str | None = None,
        workspace: PathLike | None = None,
        before: str | None = None,
    ) -> list[SessionSummary]:
        """Newest first; pass the last id of a page as `before` to get the next page."""
        size = positive(limit, "limit")
        wanted = None if status is None else sessions_service.parse_status(status)
        return self._db.run(
            lambda uow: sessions_service.history(
                uow, size, status=wanted, kind=kind, workspace=workspace, before=before
            ),
            write=False,
            direct=True,
        )

    def calculate_duration(self, session_id: str) -> int:
        """Milliseconds from creation to completion (or to now while still open)."""
        return self._db.run(
            lambda uow: sessions_service.calculate_duration(uow, session_id),
            write=False,
            direct=True,
        )

    def get_total_sessions(self) -> int:
        """How many sessions are stored."""
        total, parts = self._db.run(sessions_service.count, write=False, direct=True)
        self._fold_tally_past(parts)
        return total

    def delete_session(self, session_id: str) -> None:
        """Delete the session and everything that belongs to it."""
        self._db.run(lambda uow: sessions_service.delete(uow, session_id), write=True, direct=True)

    def cleanup_old_sessions(self, days: int) -> int:
        """Delete completed and failed sessions finished more than `days` days ago."""
        age = check_days(days, "days")
        return self._db.run(lambda uow: sessions_service.cleanup(uow, age), write=True)

    # Phases and context -----------------------------------------------------------------

    def save_phase_completion(
        self,
        session_id: str,
        phase_id: str,
        output: Any,
        duration_ms: int,
        cost_usd: Any,
        *,
        context: dict[str, Any] | None = None,
        tokens_in: int = 0,
        tokens_out: int = 0,
    ) -> None:
        """Checkpoint a completed phase; re-saving replaces it. `context` commits with it."""
        limit = self._store.max_value_bytes
        stored = dump_json(output, "output", limit=limit)
        duration = check_non_negative_int(duration_ms, "duration_ms")
        cost = money(cost_usd, "cost_usd")
        tokens = (
            check_non_negative_int(tokens_in, "tokens_in"),
            check_non_negative_int(tokens_out, "tokens_out"),
        )
        saved_context = None if context is None else json_object(context, "context", limit=limit)
        phase = check_id(phase_id, "phase_id")
        self._db.run(
            lambda uow: phases.save_phase(
                uow,
                session_id,
                phase,
                output=stored,
                duration_ms=duration,
                cost_usd=cost,
                tokens_in=tokens[0],
                tokens_out=tokens[1],
                context=saved_context,
            ),
            write=True,
            direct=True,
        )

    def get_completed_phases(self, session_id: str) -> list[PhaseCompletion]:
        """The session's completed phases, oldest first ([] for an unknown session)."""
        return self._db.run(
            lambda uow: phases.completed_phases(uow, session_id), write=False, direct=True
        )

    def is_phase_completed(self, session_id: str, phase_id: str) -> bool:
        """Whether the phase has been checkpointed."""
        return self._db.run(
            lambda uow: phases.is_completed(uow, session_id, phase_id), write=False, direct=True
        )

    def save_context(self, session_id: str, data: dict[str, Any]) -> None:
        """Replace the session's workflow context (a JSON object)."""
        context = json_object(data, "data", limit=self._store.max_value_bytes)
        self._db.run(
            lambda uow: phases.save_context(uow, session_id, context), write=True, direct=True
        )

    def load_context(self, session_id: str) -> WorkflowContext | None:
        """The saved context with last completed phase and cost so far; None if never saved."""
        return self._db.run(
            lambda uow: phases.load_context(uow, session_id), write=False, direct=True
        )

    def resume_session(self, session_id: str) -> WorkflowContext | None:
        """What a restarted run continues from; raises for unknown or completed sessions.

        None only when the session has neither a saved context nor a completed phase.
        """
        return self._db.run(lambda uow: phases.resume(uow, session_id), write=False, direct=True)

    def run_phase(self, session_id: str, phase_id: str, fn: Callable[[], Any]) -> Any:
        """Run `fn` unless the phase is already completed; either way return its output.

        `fn` returns the output, or a PhaseResult carrying cost, tokens and context too (an
        async manager also awaits what it returns, so `fn` may be a coroutine function). The
        output returned is always the stored JSON form, so a first run and a resumed run see
        the same value. A phase interrupted before its checkpoint runs again on resume.
        """
        done = self._db.run(
            lambda uow: phases.get_phase(uow, session_id, phase_id), write=False, direct=True
        )
        if done is not None:
            return done.output
        session = self.get_session(session_id)
        if session is None:
            raise SessionNotFound(session_id)
        if session.status == SessionStatus.COMPLETED:
            raise SessionCompleted(session_id)
        started = time.monotonic()
        result = call_result(fn)
        elapsed_ms = round((time.monotonic() - started) * 1000)
        if not isinstance(result, PhaseResult):
            result = PhaseResult(output=result)
        self.save_phase_completion(
            session_id,
            phase_id,
            result.output,
            elapsed_ms,
            result.cost_usd,
            context=result.context,
            tokens_in=result.tokens_in,
            tokens_out=result.tokens_out,
        )
        return check_json(result.output, "output")

    # Reporting --------------------------------------------------------------------------

    def get_statistics(self) -> SessionStatistics:
        """Counts of all sessions; average cost and duration of completed ones."""
        statistics, parts = self._db.run(stats.statistics, write=False, direct=True)
        self._fold_tally_past(parts)
        return statistics

    def _fold_tally_past(self, parts: int) -> None:
        """Fold the session tally (revision 0008) once a read summed too many of its rows."""
        if parts > stats.FOLD_AT:
            self._db.run(stats.fold_tally, write=True)

    def get_cost_trends(self, days: int) -> list[CostTrend]:
        """Cost and session count per UTC day for the last `days` days, oldest first."""
        span = check_days(days, "days", minimum=1)
        return self._db.run(lambda uow: stats.cost_trends(uow, span), write=False)
