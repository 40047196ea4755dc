"""Tasks: saved whole (insert or replace), read by id, listed by status and assignee."""

from __future__ import annotations

from statekeeper.enums import TaskStatus
from statekeeper.executor import UnitOfWork
from statekeeper.queries import tasks as q
from statekeeper.schemas import Task
from statekeeper.values import JsonText, utcnow

__all__ = ["get", "listing", "save"]


def save(
    uow: UnitOfWork,
    *,
    task_id: str,
    title: str,
    description: str | None,
    status: TaskStatus,
    assigned_to: str | None,
    metadata: JsonText,
) -> Task:
    """Store the task; a task saved again keeps its creation time. Returns it as stored."""
    now = utcnow()
    row = uow.execute(
        q.save(uow.dialect.name),
        {
            "id": task_id,
            "title": title,
            "description": description,
            "status": status.value,
            "assigned_to": assigned_to,
            "metadata": metadata,
            "created_at": now,
            "updated_at": now,
        },
    ).one()
    return Task.model_validate(row)


def get(uow: UnitOfWork, task_id: str) -> Task | None:
    """The task, or None."""
    row = uow.execute(q.BY_ID, {"tid": task_id}).first()
    return None if row is None else Task.model_validate(row)


def listing(uow: UnitOfWork, status: TaskStatus | None, assigned_to: str | None) -> list[Task]:
    """Tasks oldest first, filtered by status and assignee when given."""
    statement = q.listing(status=status is not None, assigned_to=assigned_to is not None)
    params = {"status": None if status is None else status.value, "who": assigned_to}
    return [Task.model_validate(row) for row in uow.execute(statement, params)]
