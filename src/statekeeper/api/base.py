"""What every API mixin shares: the Database and the argument checks used across them."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from statekeeper.asyncdb import AsyncDatabase
from statekeeper.db import Database
from statekeeper.errors import InvalidInput
from statekeeper.values import (
    JsonText,
    as_utc,
    check_id,
    check_non_negative_int,
    check_size,
    check_text,
    dump_json,
    utcnow,
)

__all__ = [
    "DEFAULT_MAX_VALUE_BYTES",
    "AsyncManagerBase",
    "ManagerBase",
    "PathLike",
    "StoreOptions",
    "await_result",
    "call_result",
    "future_time",
    "json_object",
    "optional_label",
    "optional_text",
    "payload_text",
    "positive",
    "store_options",
]

PathLike = str | os.PathLike[str]

DEFAULT_MAX_VALUE_BYTES = 16 * 1024 * 1024
"""A manager's default `max_value_bytes`: 16 MiB."""


@dataclass(frozen=True, slots=True)
class StoreOptions:
    """A manager's store settings: whose agents it sees, rotation, compression, size limit."""

    namespace: str = "default"
    max_snapshots: int | None = 10
    """Snapshots kept per owner; the oldest beyond are pruned on create (None: all kept)."""
    compress_threshold: int | None = None
    """Agent states and snapshot payloads above this many bytes of JSON are stored zstd-
    compressed (None: never)."""
    max_value_bytes: int | None = DEFAULT_MAX_VALUE_BYTES
    """The most bytes one user value may take (a JSON value serialized, a text as UTF-8):
    larger is InvalidInput before anything is written (None: no limit)."""


def store_options(
    namespace: str,
    max_snapshots: int | None,
    compress_threshold: int | None,
    max_value_bytes: int | None = DEFAULT_MAX_VALUE_BYTES,
) -> StoreOptions:
    """Checked store settings of a manager."""
    return StoreOptions(
        namespace=check_id(namespace, "namespace"),
        max_snapshots=None if max_snapshots is None else positive(max_snapshots, "max_snapshots"),
        compress_threshold=None
        if compress_threshold is None
        else check_non_negative_int(compress_threshold, "compress_threshold"),
        max_value_bytes=None
        if max_value_bytes is None
        else positive(max_value_bytes, "max_value_bytes"),
    )


class ManagerBase:
    """The state every mixin works through: one Database (engine, scope, unit of work)."""

    _db: Database
    _store: StoreOptions


class AsyncManagerBase:
    """The state every async mixin works through: one AsyncDatabase.

    The async mixins in `api/_async/` are the source; `scripts/gen_sync.py` writes their
    synchronous twins in `api/_sync/` for StateManager, so each operation exists once.
    """

    _db: AsyncDatabase
    _store: StoreOptions


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


def optional_label(value: str | None, field: str) -> str | None:
    """A short label (a status, a state name): an id of at most 64 characters, or None."""
    if value is None:
        return None
    label = check_id(value, field)
    if len(label) > 64:
        raise InvalidInput(field, "longer than 64 characters")
    return label


def future_time(value: datetime | timedelta | None, field: str) -> datetime | None:
    """An aware datetime, or a positive timedelta from now, that lies in the future."""
    if value is None:
        return None
    now = utcnow()
    if isinstance(value, timedelta):
        if value <= timedelta(0):
            raise InvalidInput(field, f"must be a positive duration, got {value}")
        try:
            return now + value
        except OverflowError:
            raise InvalidInput(field, f"{value} from now is out of range") from None
    when = as_utc(value, field)
    if when <= now:
        raise InvalidInput(field, f"{when.isoformat()} is not in the future")
    return when


def json_object(value: Any, field: str, *, limit: int | None = None) -> JsonText:
    """A dict checked and serialized once, ready to store; at most `limit` bytes of JSON."""
    if not isinstance(value, dict):
        raise InvalidInput(field, f"expected a JSON object, got {type(value).__name__}")
    return dump_json(value, field, limit=limit)


def payload_text(value: object, field: str, limit: int | None) -> str:
    """Free text that is a user payload (chat, output, event content): storable, and at
    most `limit` bytes as UTF-8."""
    return check_size(check_text(value, field), field, limit)


def positive(value: object, field: str) -> int:
    number = check_non_negative_int(value, field)
    if number == 0:
        raise InvalidInput(field, "must be at least 1")
    return number
