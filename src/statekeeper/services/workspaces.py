"""Workspaces: the directory a session ran in, keyed like the legacy editor keys its files."""

from __future__ import annotations

import hashlib
import os
from datetime import datetime
from pathlib import Path

from statekeeper.dialects import upsert
from statekeeper.errors import InvalidInput
from statekeeper.executor import UnitOfWork
from statekeeper.models import Base
from statekeeper.values import check_text

__all__ = ["canonical_path", "touch", "touch_hashed", "workspace_id"]

_WORKSPACES = Base.metadata.tables["workspaces"]


def canonical_path(path: str | os.PathLike[str]) -> str:
    """The resolved path when it exists, else the path as given without trailing slashes."""
    text = check_text(os.fspath(path), "workspace")
    if not text:
        raise InvalidInput("workspace", "empty path")
    try:
        return str(Path(text).resolve(strict=True))
    except OSError:
        return text.rstrip("/") or "/"


def _hash(canonical: str) -> str:
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def workspace_id(path: str | os.PathLike[str]) -> str:
    """The first 16 hex characters of sha256 of the canonical path."""
    return _hash(canonical_path(path))


def touch(uow: UnitOfWork, path: str | os.PathLike[str], now: datetime) -> str:
    """Record the workspace (or refresh its path and last_accessed) and return its id."""
    canonical = canonical_path(path)
    key = _hash(canonical)
    statement = upsert(uow.dialect.name, _WORKSPACES, ("id",), ("path", "last_accessed"))
    uow.execute(statement, {"id": key, "path": canonical, "last_accessed": now})
    return key


def touch_hashed(uow: UnitOfWork, key: str, now: datetime) -> str:
    """Record a workspace known only by the hash in a file name (its path stays unknown)."""
    statement = upsert(uow.dialect.name, _WORKSPACES, ("id",), ("last_accessed",))
    uow.execute(statement, {"id": key, "path": None, "last_accessed": now})
    return key
