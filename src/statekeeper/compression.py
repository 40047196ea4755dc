"""Transparent zstd compression of large JSON payloads (agent state, snapshot payloads).

A payload is stored either as JSON, or, when its JSON text is longer than the manager's
threshold and compresses smaller, as zstd-compressed JSON text in a companion binary
column, the JSON column then being NULL. Readers decode either form, whatever the threshold
of the manager that wrote it.
"""

from __future__ import annotations

from typing import Any

import zstandard

from statekeeper.errors import StorageError
from statekeeper.values import JsonText, load_json

__all__ = ["LEVEL", "pack", "unpack"]

LEVEL = 3
"""zstd's default level: most of the gain of higher levels at a fraction of their time."""


def pack(text: JsonText, threshold: int | None) -> tuple[JsonText | None, bytes | None]:
    """The stored form of checked JSON text: (text, None), or (None, compressed bytes).

    Compressed only above `threshold` bytes of UTF-8 (None: never), and only when smaller.
    """
    if threshold is None:
        return text, None
    raw = text.encode()
    if len(raw) <= threshold:
        return text, None
    blob = zstandard.ZstdCompressor(level=LEVEL).compress(raw)
    if len(blob) >= len(raw):
        return text, None
    return None, blob


def unpack(value: Any, blob: bytes | None, what: str = "payload") -> Any:
    """The JSON value of a stored payload: `value` itself, or `blob` decompressed."""
    if blob is None:
        return value
    try:
        return load_json(zstandard.ZstdDecompressor().decompress(bytes(blob)))
    except (zstandard.ZstdError, ValueError) as exc:
        raise StorageError(f"the compressed {what} cannot be decoded: {exc}") from None
