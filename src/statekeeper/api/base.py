"""What every API mixin shares: the Database and the argument checks used across them."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from typing import Any

from statekeeper.asyncdb import AsyncDatabase
from statekeeper.db import Database
from statekeeper.errors import InvalidInput
from statekeeper.values import JsonText, check_non_negative_int, check_text, dump_json

__all__ = [
    "AsyncManagerBase",
    "ManagerBase",
    "PathLike",
    "await_result",
    "call_result",
    "json_object",
    "optional_text",
    "positive",
]

PathLike = str | os.PathLike[str]


class ManagerBase:
    """The state every mixin works through: one Database (engine, scope, unit of work)."""

    _db: Database


class AsyncManagerBase:
    """The state every async mixin works through: one AsyncDatabase.

    The async mixins in `api/_async/` are the source; `scripts/gen_sync.py` writes their
    synchronous twins in `api/_sync/` for StateManager, so each operation exists once.
    """

    _db: AsyncDatabase


async def await_result(fn: Callable[[], Any]) -> Any:
    """Call a user's callback, awaiting what it returns when that is awaitable."""
    result = fn()
    if inspect.isawaitable(result):
        return await result
    return result


def call_result(fn: Callable[[], Any]) -> Any:
    """Call a user's callback (the sync twin of `await_result`)."""
    return fn()


def optional_text(value: str | None, field: str) -> str | None:
    return None if value is None else check_text(value, field)


def json_object(value: Any, field: str) -> JsonText:
    """A dict checked and serialized once, ready to store."""
    if not isinstance(value, dict):
        raise InvalidInput(field, f"expected a JSON object, got {type(value).__name__}")
    return dump_json(value, field)


def positive(value: object, field: str) -> int:
    number = check_non_negative_int(value, field)
    if number == 0:
        raise InvalidInput(field, "must be at least 1")
    return number
