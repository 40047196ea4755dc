"""The legacy editor's session files: finding, reading, parsing, archiving and writing them.

A file is a JSON array of WorktreeSession objects, named after its workspace
(`~/.ait42/sessions/<16 hex chars>.json`). Nothing here touches the database.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.alias_generators import to_camel, to_snake

from statekeeper.errors import ImportFailed
from statekeeper.schemas import ChatMessage, WorktreeInstance, WorktreeSession
from statekeeper.schemas.base import STORABLE

__all__ = [
    "LegacyFile",
    "LegacyFileError",
    "Rejected",
    "archive",
    "dump",
    "legacy_files",
    "normalized",
    "parse",
    "read",
    "workspace_key",
]

_HASH_NAME = re.compile(r"[0-9a-f]{16}")
# Lone surrogates can only come from \uD800-\uDFFF escapes, since the bytes are strict UTF-8.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_JSON_TYPES = {dict: "an object", str: "a string", bool: "a boolean", type(None): "null"}


def _keys(model: type[BaseModel]) -> frozenset[str]:
    """The snake_case names and camelCase aliases a legacy object may use."""
    return frozenset(
        key for name, field in model.model_fields.items() for key in (name, field.alias or name)
    )


_SESSION_KEYS = _keys(WorktreeSession)
_INSTANCE_KEYS = _keys(WorktreeInstance)
_MESSAGE_KEYS = _keys(ChatMessage)
_CHILD_KEYS = {
    "instances": _INSTANCE_KEYS,
    "chat_history": _MESSAGE_KEYS,
    "chatHistory": _MESSAGE_KEYS,
}


class LegacyFileError(ImportFailed):
    """A file that is not a readable JSON array; `reason` says why, without the path."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class LegacyFile:
    """The raw items of one file, and whether its text escapes surrogates or NUL (rarely)."""

    path: Path
    items: list[Any]
    escapes_surrogates: bool
    escapes_nul: bool


@dataclass(frozen=True)
class Rejected:
    """An item of a file that is not a valid session; `session_id` if it had a usable one."""

    index: int
    session_id: str | None
    reason: str

    @property
    def label(self) -> str:
        """How errors and reports name the item: its id, else its place in the file."""
        return self.session_id if self.session_id is not None else f"at index {self.index}"


def legacy_files(path: Path) -> list[Path]:
    """The file itself, or the `*.json` files directly inside a directory, sorted by name.

    A leading `~` is the user's home directory, as in a shell.
    """
    path = path.expanduser()
    try:
        if path.is_dir():
            return sorted(p for p in path.iterdir() if p.name.endswith(".json") and p.is_file())
    except OSError as exc:
        raise ImportFailed(f"{path}: cannot list: {exc.strerror or exc}") from None
    if not path.exists():
        raise ImportFailed(f"{path}: no such file or directory")
    return [path]


def workspace_key(path: Path) -> str | None:
    """The workspace id the editor put in the file name (before the first dot), if any."""
    stem = path.name.partition(".")[0]
    return stem if _HASH_NAME.fullmatch(stem) else None


def read(path: Path) -> LegacyFile:
    """Read a whole file as a JSON array, or raise LegacyFileError saying what is wrong."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise LegacyFileError(path, f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise LegacyFileError(path, f"not UTF-8 text (byte {exc.start})") from None
    if not text.strip():
        raise LegacyFileError(path, "empty file")
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LegacyFileError(
            path, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:
        raise LegacyFileError(path, "invalid JSON: nested too deeply") from None
    if not isinstance(items, list):
        found = _JSON_TYPES.get(type(items), "a number")
        raise LegacyFileError(path, f"expected a JSON array of sessions, found {found}")
    # JSON can hold NUL only as an escape: a literal control character is invalid JSON.
    return LegacyFile(path, items, bool(_SURROGATE_ESCAPE.search(text)), "\\u0000" in text)


def parse(item: Any, index: int, document: LegacyFile) -> WorktreeSession | Rejected:
    """One item as a session (unknown keys dropped, both key styles), or why it is not one.

    The DTOs' own scan of every string runs only for a file whose text escapes NUL: the
    times and (where escaped) surrogates are checked here, once per session.
    """
    raw_id = item.get("id") if isinstance(item, dict) else None
    session_id = raw_id if isinstance(raw_id, str) and raw_id else None
    known = _known_session(item)
    try:
        context = None if document.escapes_nul else STORABLE
        session = WorktreeSession.model_validate(known, context=context)
        _check_storable(session, known if document.escapes_surrogates else None)
    except ValidationError as exc:
        return Rejected(index, session_id, _problems(exc, item))
    except ValueError as exc:
        return Rejected(index, session_id, str(exc))
    return session


def _problems(error: ValidationError, item: Any) -> str:
    """Every problem of an item, each at its path in the key style the file itself uses."""
    camel = isinstance(item, dict) and any(
        isinstance(key, str) and key != key.lower() for key in item
    )
    problems = []
    for problem in error.errors(include_url=False):
        path = ".".join(
            str(part)
            if isinstance(part, int)
            else (to_camel if camel else to_snake)(to_snake(part))
            for part in problem["loc"]
        )
        problems.append(f"{path or 'value'}: {problem['msg']}")
    return "; ".join(problems)


def _known(item: Any, keys: frozenset[str]) -> Any:
    """The item without the keys a legacy object does not have (non-objects as they are)."""
    return {k: v for k, v in item.items() if k in keys} if isinstance(item, dict) else item


def _known_session(item: Any) -> Any:
    """The session item without unknown keys, in its instances and chat messages too."""
    kept = _known(item, _SESSION_KEYS)
    if isinstance(kept, dict):
        for key, child_keys in _CHILD_KEYS.items():
            children = kept.get(key)
            if isinstance(children, list):
                kept[key] = [_known(child, child_keys) for child in children]
    return kept


def _check_storable(session: WorktreeSession, known: Any) -> None:
    """Reject what the DTOs let through but no engine can store: lone surrogates, year 10000."""
    moments: list[datetime | None] = [session.created_at, session.updated_at, session.completed_at]
    moments += [t for i in session.instances for t in (i.start_time, i.end_time)]
    moments += [m.timestamp for m in session.chat_history]
    for moment in moments:
        if moment is not None:
            try:
                moment.astimezone(UTC)
            except OverflowError:
                raise ValueError(f"timestamp {moment.isoformat()} is out of range") from None
    if known is not None:
        try:
            json.dumps(known, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("text contains a lone UTF-16 surrogate (not valid Unicode)") from None


def normalized(session: WorktreeSession) -> WorktreeSession:
    """The session as the store gives it back: instances ordered by number."""
    ordered = sorted(session.instances, key=lambda instance: instance.instance_id)
    if ordered == session.instances:
        return session
    return session.model_copy(update={"instances": ordered})


def dump(session: WorktreeSession) -> dict[str, Any]:
    """A session in the editor's format: snake_case keys, RFC 3339 timestamps, nulls kept."""
    return session.model_dump(mode="json")


def archive(path: Path) -> Path:
    """Rename `<name>.json` to `<name>.json.archive` (never over an existing archive)."""
    target = path.with_name(f"{path.name}.archive")
    if target.exists():
        raise ImportFailed(f"{target} already exists")
    try:
        path.rename(target)
    except OSError as exc:
        raise ImportFailed(f"{path}: cannot rename: {exc.strerror or exc}") from None
    return target
