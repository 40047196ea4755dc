"""Checking a manager's arguments: the URL and the connection settings both managers take."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import URL

from statekeeper.api.base import PathLike
from statekeeper.config import Settings, create_engine, resolve_schema, resolve_url
from statekeeper.db import Database
from statekeeper.errors import InvalidInput, StorageError
from statekeeper.values import check_non_negative_int

__all__ = [
    "ENV_LEGACY_MIRROR",
    "build_engine",
    "mirror_directory",
    "open_database",
    "open_store",
]

ENV_LEGACY_MIRROR = "STATEKEEPER_LEGACY_MIRROR"

E = TypeVar("E")


def open_store(
    url: PathLike | URL | None,
    synchronous: str,
    busy_timeout_ms: int,
    engine_options: dict[str, Any],
    schema: str | None = None,
) -> tuple[URL, Settings]:
    """The resolved URL and checked Settings; engine options are tried by the engine."""
    if synchronous not in ("normal", "full"):
        raise InvalidInput("synchronous", f"expected 'normal' or 'full', got {synchronous!r}")
    resolved = resolve_url(url)
    settings = Settings(
        synchronous=synchronous,  # type: ignore[arg-type]
        busy_timeout_ms=check_non_negative_int(busy_timeout_ms, "busy_timeout_ms"),
        engine_options=engine_options,
        schema=resolve_schema(schema, resolved),
    )
    return resolved, settings


def mirror_directory(legacy_mirror: PathLike | None) -> Path | None:
    """Where the legacy mirror writes: the argument, else $STATEKEEPER_LEGACY_MIRROR."""
    chosen = legacy_mirror if legacy_mirror is not None else os.environ.get(ENV_LEGACY_MIRROR)
    if chosen is None or not os.fspath(chosen):
        return None
    directory = Path(chosen).expanduser()
    if directory.exists() and not directory.is_dir():
        raise InvalidInput("legacy_mirror", f"{directory} is not a directory")
    return directory


def build_engine(factory: Callable[[URL, Settings], E], url: URL, settings: Settings) -> E:
    """An engine from `factory`, with what creating it raised made a StateError."""
    try:
        return factory(url, settings)
    except (TypeError, ValueError, sa.exc.ArgumentError) as exc:
        raise InvalidInput("engine_options", str(exc)) from None
    except ModuleNotFoundError as exc:
        raise StorageError(
            f"{exc.name} is not installed: for PostgreSQL, pip install 'statekeeper[postgres]'"
        ) from None


def open_database(url: URL, settings: Settings) -> Database:
    """The sync unit of work on a new engine: StateManager's, and the async manager's
    worker-thread path on a SQLite file."""
    engine = build_engine(create_engine, url, settings)
    return Database(engine, busy_timeout_ms=settings.busy_timeout_ms)
