"""Tasks: saved whole, updated in place, listed by status and assignee."""

from __future__ import annotations

from typing import Any

import pytest

from statekeeper import InvalidInput, StateManager, Task, TaskStatus


def test_save_get_update_and_list(sm: StateManager) -> None:
    first = sm.save_task(Task(title="write tests", assigned_to="agent-1", metadata={"p": 1}))
    assert first.status == "pending" and first.created_at is not None
    assert sm.get_task(first.id) == first
    second = sm.save_task({"id": "t2", "title": "review", "assigned_to": "agent-2"})
    third = sm.save_task(Task(id="t3", title="ship", status="in_progress", assigned_to="agent-1"))
    updated = sm.save_task(first.model_copy(update={"status": TaskStatus.COMPLETED}))
    assert updated.created_at == first.created_at
    assert updated.updated_at is not None and first.updated_at is not None
    assert updated.updated_at >= first.updated_at and updated.status == "completed"
    assert [t.id for t in sm.get_tasks()] == [first.id, second.id, third.id]
    assert [t.id for t in sm.get_tasks(assigned_to="agent-1")] == [first.id, third.id]
    assert [t.id for t in sm.get_tasks(status="completed")] == [first.id]
    assert [t.id for t in sm.get_tasks(status="in_progress", assigned_to="agent-1")] == ["t3"]
    assert sm.get_tasks(status="failed") == []
    assert sm.get_task("missing") is None


@pytest.mark.parametrize(
    ("task", "field"),
    [
        ({"title": "x", "id": ""}, "id"),
        ({"title": 3}, "title"),
        ({"title": "nul\x00"}, "title"),
        ({"title": "x", "status": "done"}, "status"),
        ({"title": "x", "assigned_to": " a"}, "assigned_to"),
        ({"title": "x", "metadata": {"bad": {1, 2}}}, "metadata"),
        ({"id": "t"}, "title"),
    ],
)
def test_bad_tasks_name_the_field_and_write_nothing(
    sm: StateManager, task: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        sm.save_task(task)
    assert caught.value.field == field
    assert sm.get_tasks() == []
    with pytest.raises(InvalidInput):
        sm.get_tasks(status="done")
