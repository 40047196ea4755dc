# Generated from the _async/ twin by scripts/gen_sync.py: edit that one, then run it.
"""Worktree sessions: instances, chat, the legacy object whole, search, legacy JSON files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from statekeeper.api.base import ManagerBase, PathLike, positive
from statekeeper.enums import ChatRole, InstanceStatus, SessionStatus
from statekeeper.errors import InvalidInput
from statekeeper.executor import UnitOfWork
from statekeeper.importers._sync import exporter, importer, validator
from statekeeper.importers.store import Progress
from statekeeper.schemas import (
    ChatMessage,
    ImportStats,
    ValidationReport,
    WorktreeInstance,
    WorktreeSession,
)
from statekeeper.schemas.base import describe
from statekeeper.services import sessions as sessions_service
from statekeeper.services import workspaces, worktree
from statekeeper.values import as_utc, check_non_negative_int, check_size, check_text, utcnow

__all__ = ["WorktreeAPI"]

_TEXT_FIELDS = frozenset(
    {
        "worktree_path",
        "branch",
        "agent_name",
        "tmux_session_id",
        "output",
        "runtime",
        "model",
        "runtime_label",
    }
)
_MAX_LENGTH = {"runtime": 64, "model": 255}
_COUNT_FIELDS = frozenset({"files_changed", "lines_added", "lines_deleted"})
_TIME_FIELDS = frozenset({"start_time", "end_time"})
_REQUIRED = frozenset({"worktree_path", "branch", "agent_name", "tmux_session_id", "status"})


def _instance_values(fields: dict[str, Any], limit: int | None) -> dict[str, Any]:
    """Validated instance columns; unknown names and bad values are InvalidInput.

    `limit` is the most bytes the output may take."""
    unknown = set(fields) - worktree.INSTANCE_FIELDS
    if unknown:
        raise InvalidInput(sorted(unknown)[0], "not an instance field")
    values: dict[str, Any] = {}
    for name, value in fields.items():
        if value is None:
            if name in _REQUIRED:
                raise InvalidInput(name, "must not be None")
            values[name] = None
        elif name == "status":
            try:
                values[name] = InstanceStatus(value).value
            except ValueError:
                allowed = ", ".join(s.value for s in InstanceStatus)
                raise InvalidInput(name, f"unknown status {value!r} (allowed: {allowed})") from None
        elif name in _TEXT_FIELDS:
            values[name] = check_text(value, name, max_length=_MAX_LENGTH.get(name))
            if name == "output":
                check_size(values[name], name, limit)
        elif name in _COUNT_FIELDS:
            values[name] = check_non_negative_int(value, name)
        elif name in _TIME_FIELDS:
            values[name] = as_utc(value, name)
    return values


def _check_sizes(session: WorktreeSession, limit: int | None) -> None:
    """The task, instance outputs and chat contents of a legacy object, each within `limit`."""
    check_size(session.task, "task", limit)
    for index, instance in enumerate(session.instances):
        if instance.output is not None:
            check_size(instance.output, f"instances[{index}].output", limit)
    for index, message in enumerate(session.chat_history):
        check_size(message.content, f"chat_history[{index}].content", limit)


def _instance_number(value: object) -> int:
    number = check_non_negative_int(value, "instance_number")
    if number >= 2**31:
        raise InvalidInput("instance_number", "too large")
    return number


class WorktreeAPI(ManagerBase):
    """Worktree sessions (seed: session-data SQLite migration)."""

    def add_instance(
        self,
        session_id: str,
        instance_number: int,
        *,
        worktree_path: str,
        branch: str,
        agent_name: str,
        tmux_session_id: str,
        status: InstanceStatus | str = InstanceStatus.IDLE,
        **fields: Any,
    ) -> None:
        """Add an agent instance to a session; the number must be new in that session."""
        number = _instance_number(instance_number)
        values = _instance_values(
            {
                "worktree_path": worktree_path,
                "branch": branch,
                "agent_name": agent_name,
                "tmux_session_id": tmux_session_id,
                "status": status,
                **fields,
            },
            self._store.max_value_bytes,
        )
        self._db.run(
            lambda uow: worktree.add_instance(uow, session_id, number, values),
            write=True,
            direct=True,
        )

    def update_instance(self, session_id: str, instance_number: int, **fields: Any) -> None:
        """Change fields of an instance (status, output, end_time, line counts...)."""
        number = _instance_number(instance_number)
        values = _instance_values(fields, self._store.max_value_bytes)
        self._db.run(
            lambda uow: worktree.update_instance(uow, session_id, number, values),
            write=True,
            direct=True,
        )

    def get_instances(self, session_id: str) -> list[WorktreeInstance]:
        """The session's instances by number ([] for an unknown session)."""
        return self._db.run(
            lambda uow: worktree.instances(uow, session_id), write=False, direct=True
        )

    def add_chat_message(
        self,
        session_id: str,
        role: ChatRole | str,
        content: str,
        *,
        instance_number: int | None = None,
    ) -> str:
        """Append a chat message after every earlier one; returns its id."""
        try:
            chat_role = ChatRole(role)
        except ValueError:
            allowed = ", ".join(r.value for r in ChatRole)
            raise InvalidInput("role", f"unknown role {role!r} (allowed: {allowed})") from None
        text = check_size(check_text(content, "content"), "content", self._store.max_value_bytes)
        number = None if instance_number is None else _instance_number(instance_number)
        return self._db.run(
            lambda uow: worktree.add_chat_message(uow, session_id, chat_role, text, number),
            write=True,
            direct=True,
        )

    def get_chat_history(
        self, session_id: str, *, limit: int | None = None, after: str | None = None
    ) -> list[ChatMessage]:
        """Messages in insertion order: the first `limit` after message id `after`."""
        size = None if limit is None else positive(limit, "limit")
        return self._db.run(
            lambda uow: worktree.chat_history(uow, session_id, size, after),
            write=False,
            direct=True,
        )

    def save_worktree_session(
        self, session: WorktreeSession, *, workspace: PathLike | None = None
    ) -> None:
        """Store the whole legacy object: create it, or replace its fields, instances and chat."""
        if not isinstance(session, WorktreeSession):
            raise InvalidInput(
                "session", f"expected a WorktreeSession, not {type(session).__name__}"
            )
        try:  # again: attributes may have been assigned since construction
            record = WorktreeSession.model_validate(session.model_dump())
        except ValidationError as exc:
            raise InvalidInput(*describe(exc)) from None
        _check_sizes(record, self._store.max_value_bytes)

        def save(uow: UnitOfWork) -> None:
            workspace_id = None if workspace is None else workspaces.touch(uow, workspace, utcnow())
            worktree.save(uow, record, workspace_id)

        self._db.run(save, write=True)

    def get_worktree_session(self, session_id: str) -> WorktreeSession | None:
        """The whole legacy object, instances and chat included, or None."""
        return self._db.run(lambda uow: worktree.get(uow, session_id), write=False, direct=True)

    def list_worktree_sessions(
        self,
        workspace: PathLike,
        *,
        type: str | None = None,
        status: SessionStatus | str | None = None,
    ) -> list[WorktreeSession]:
        """A workspace's sessions, newest first, whole; optionally of one type or status."""
        workspace_id = workspaces.workspace_id(workspace)
        wanted = None if status is None else sessions_service.parse_status(status).value
        return self._db.run(
            lambda uow: worktree.list_in_workspace(uow, workspace_id, type, wanted), write=False
        )

    def import_json(
        self,
        path: PathLike,
        *,
        workspace: PathLike | None = None,
        update: bool = False,
        progress: Progress | None = None,
    ) -> ImportStats:
        """Import the legacy editor's session files: one file, or each `*.json` in a directory.

        Bad files and sessions are listed in `errors`. A stored session is skipped, unless
        `update` is true and its legacy copy differs: then it is replaced by that copy,
        instances and chat included, in a transaction of its own (counted in `updated`).
        A session missing from the files is never deleted. `~` is the home directory.
        """
        canonical = None if workspace is None else workspaces.canonical_path(workspace)
        return importer.import_json(
            self._db, Path(path), workspace=canonical, update=update, progress=progress
        )

    def validate_import(self, path: PathLike) -> ValidationReport:
        """Which sessions of legacy files the store lacks or holds differently; unreadable files."""
        return validator.validate_import(self._db, Path(path))

    def export_json(self, workspace: PathLike, path: PathLike) -> int:
        """Write a workspace's sessions as a legacy file, atomically; returns how many.

        Oldest first, as the editor appended them; a leading `~` in `path` is the home
        directory, as in a shell.
        """
        workspace_id = workspaces.workspace_id(workspace)
        return exporter.write_workspace(self._db, workspace_id, Path(path).expanduser())
