# Generated from the _async/ twin by scripts/gen_sync.py: edit that one, then run it.
"""Tasks: saved whole, read by id, listed by status and assignee."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from statekeeper.api.base import ManagerBase, json_object, payload_text
from statekeeper.enums import TaskStatus
from statekeeper.errors import InvalidInput
from statekeeper.schemas import Task
from statekeeper.schemas.base import describe
from statekeeper.services import tasks
from statekeeper.values import check_id, check_text, parse_choice

__all__ = ["TasksAPI"]


class TasksAPI(ManagerBase):
    """Tasks of the agent store (shared by every namespace)."""

    def save_task(self, task: Task | Mapping[str, Any]) -> Task:
        """Insert the task, or replace the one with its id (keeping its creation time)."""
        if not isinstance(task, Task):
            try:
                task = Task.model_validate(task)
            except ValidationError as exc:
                raise InvalidInput(*describe(exc)) from None
        task_id = check_id(task.id, "id")
        title = check_text(task.title, "title")
        limit = self._store.max_value_bytes
        description = (
            None
            if task.description is None
            else payload_text(task.description, "description", limit)
        )
        assignee = None if task.assigned_to is None else check_id(task.assigned_to, "assigned_to")
        status = parse_choice(TaskStatus, task.status)
        metadata = json_object(task.metadata, "metadata", limit=limit)
        return self._db.run(
            lambda uow: tasks.save(
                uow,
                task_id=task_id,
                title=title,
                description=description,
                status=status,
                assigned_to=assignee,
                metadata=metadata,
            ),
            write=True,
            direct=True,
        )

    def get_task(self, task_id: str) -> Task | None:
        """The task, or None."""
        return self._db.run(lambda uow: tasks.get(uow, task_id), write=False, direct=True)

    def get_tasks(
        self, *, status: TaskStatus | str | None = None, assigned_to: str | None = None
    ) -> list[Task]:
        """Tasks oldest first, of one status and/or assignee when given."""
        wanted = None if status is None else parse_choice(TaskStatus, status)
        return self._db.run(
            lambda uow: tasks.listing(uow, wanted, assigned_to), write=False, direct=True
        )
