# Generated from the _async/ twin by scripts/gen_sync.py: edit that one, then run it.
"""Agent states with versions, their status transitions, soft delete and purge."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from statekeeper.api.base import (
    ManagerBase,
    json_object,
    optional_label,
    optional_text,
    positive,
)
from statekeeper.enums import AgentStatus
from statekeeper.errors import InvalidInput
from statekeeper.schemas import AgentState, StateTransition
from statekeeper.schemas.base import describe
from statekeeper.services import agents
from statekeeper.values import (
    check_days,
    check_id,
    check_non_negative_int,
    check_text,
    dump_json,
    parse_choice,
)

__all__ = ["AgentsAPI"]


class AgentsAPI(ManagerBase):
    """The agent store (seeds: SQLite StateStore, State Management System), one namespace."""

    @property
    def namespace(self) -> str:
        """The namespace whose agents this manager sees and changes."""
        return self._store.namespace

    def save_agent_state(
        self, state: AgentState | Mapping[str, Any], *, expected_version: int | None = None
    ) -> AgentState:
        """Create the agent (version 1) or save over it (version + 1); return it as stored.

        With `expected_version`, save only if the stored version is still that one (0: only
        if the agent does not exist yet), else raise VersionConflict and write nothing.
        A status change records a transition and an event.
        """
        if not isinstance(state, AgentState):
            try:
                state = AgentState.model_validate(state)
            except ValidationError as exc:
                raise InvalidInput(*describe(exc)) from None
        agent_id = check_id(state.agent_id, "agent_id")
        if state.namespace is not None and state.namespace != self._store.namespace:
            raise InvalidInput(
                "namespace",
                f"{state.namespace!r} is not this manager's namespace {self._store.namespace!r}",
            )
        name = check_text(agent_id if state.name is None else state.name, "name")
        status = parse_choice(AgentStatus, state.status)
        limit = self._store.max_value_bytes
        metadata = json_object(state.metadata, "metadata", limit=limit)
        data = dump_json(state.state_data, "state_data", limit=limit)
        expected = (
            None
            if expected_version is None
            else check_non_negative_int(expected_version, "expected_version")
        )
        store = self._store
        return self._db.run(
            lambda uow: agents.save(
                uow,
                store.namespace,
                agent_id=agent_id,
                name=name,
                status=status,
                metadata=metadata,
                state=data,
                threshold=store.compress_threshold,
                expected_version=expected,
            ),
            write=True,
            direct=True,
        )

    def load_agent_state(self, agent_id: str) -> AgentState | None:
        """The agent's saved state, or None (unknown here, or soft-deleted)."""
        namespace = self._store.namespace
        return self._db.run(
            lambda uow: agents.load(uow, namespace, agent_id), write=False, direct=True
        )

    def list_agents(
        self, *, status: AgentStatus | str | None = None, include_deleted: bool = False
    ) -> list[AgentState]:
        """This namespace's agents by id, optionally of one status, deleted ones on request."""
        wanted = None if status is None else parse_choice(AgentStatus, status)
        namespace = self._store.namespace
        return self._db.run(
            lambda uow: agents.listing(uow, namespace, wanted, bool(include_deleted)),
            write=False,
            direct=True,
        )

    def update_agent_status(
        self, agent_id: str, status: AgentStatus | str, *, reason: str | None = None
    ) -> None:
        """Move the agent to `status` (a new version), recording a transition and an event."""
        agent_id = check_id(agent_id, "agent_id")
        target = parse_choice(AgentStatus, status)
        why = optional_text(reason, "reason")
        namespace = self._store.namespace
        self._db.run(
            lambda uow: agents.update_status(uow, namespace, agent_id, target, why),
            write=True,
            direct=True,
        )

    def delete_agent(self, agent_id: str) -> None:
        """Soft-delete the agent: hidden until restore_agent, or purge_deleted removes it."""
        agent_id = check_id(agent_id, "agent_id")
        namespace = self._store.namespace
        self._db.run(lambda uow: agents.delete(uow, namespace, agent_id), write=True, direct=True)

    def restore_agent(self, agent_id: str) -> None:
        """Bring back a soft-deleted agent."""
        agent_id = check_id(agent_id, "agent_id")
        namespace = self._store.namespace
        self._db.run(lambda uow: agents.restore(uow, namespace, agent_id), write=True, direct=True)

    def purge_deleted(self, older_than_days: int) -> int:
        """Remove for good the agents deleted more than `older_than_days` days ago, with their
        transitions and snapshots; return how many."""
        days = check_days(older_than_days, "older_than_days")
        namespace = self._store.namespace
        return self._db.run(lambda uow: agents.purge(uow, namespace, days), write=True)

    def record_state_transition(
        self,
        agent_id: str,
        before: str | None,
        after: str,
        reason: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Add a transition to the agent's history (its status is left as it is)."""
        agent_id = check_id(agent_id, "agent_id")
        state_before = optional_label(before, "before")
        state_after = optional_label(after, "after")
        if state_after is None:
            raise InvalidInput("after", "expected a state, got None")
        why = optional_text(reason, "reason")
        data = json_object(
            {} if metadata is None else metadata, "metadata", limit=self._store.max_value_bytes
        )
        namespace = self._store.namespace
        self._db.run(
            lambda uow: agents.record_transition(
                uow, namespace, agent_id, state_before, state_after, why, data
            ),
            write=True,
            direct=True,
        )

    def get_state_history(self, agent_id: str, limit: int = 50) -> list[StateTransition]:
        """The agent's transitions, newest first."""
        size = positive(limit, "limit")
        namespace = self._store.namespace
        return self._db.run(
            lambda uow: agents.history(uow, namespace, agent_id, size), write=False, direct=True
        )
