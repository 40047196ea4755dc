"""JSON files in and out: atomic, private writes and strict reads."""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from statekeeper.errors import ImportFailed, InvalidInput, StateError, StorageError

__all__ = ["file_error", "read_json", "writable_target", "write_json_atomic", "writing"]

_NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def writable_target(path: Path, field: str = "path") -> None:
    """Refuse, before anything is written, a file path that cannot be one.

    A directory at `path`, or a file where one of its parent directories should be, is
    a bad value (InvalidInput naming `field`), not an OSError halfway through a write.
    """
    if path.is_dir():
        raise InvalidInput(field, f"{path} is a directory; give the path of a file")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InvalidInput(
                    field, f"{parent} is a file, not a directory; choose another path"
                )
            return


def file_error(path: Path, exc: OSError, doing: str = "write") -> StateError:
    """An OSError met while working on `path`: a StateError naming the path, what is wrong
    and what to do. The OS's own words stay in the exception's cause."""
    code = exc.errno
    reason = exc.strerror or str(exc)
    if code == errno.EISDIR:
        return InvalidInput("path", f"{path} is a directory; give the path of a file")
    if code in (errno.ENOTDIR, errno.EEXIST):
        return InvalidInput(
            "path", f"{path}: {reason} in the way; choose another path or remove it"
        )
    if code in (errno.EACCES, errno.EPERM):
        hint = "choose a location you may write to, or change its permissions"
    elif code == errno.EROFS:
        hint = "the file system is read-only; choose another location"
    elif code in _NO_SPACE:
        hint = "there is no room for it; free some space and run it again"
    elif code == errno.ENOENT:
        hint = "check that its directory exists"
    else:
        hint = "nothing was replaced"
    return StorageError(f"cannot {doing} {path}: {reason}; {hint}")


@contextmanager
def writing(path: Path, doing: str = "write") -> Iterator[None]:
    """Turn any OSError raised in the block into the StateError `file_error` makes."""
    try:
        yield
    except OSError as exc:
        raise file_error(path, exc, doing) from exc


def write_json_atomic(path: Path, document: Any) -> None:
    """Write `document` so readers see the old file or the whole new one, never a torn one.

    An OSError (no room, no permission, a directory in the way) is a StateError naming
    `path`, and the old file, if any, is left as it was.
    """
    writable_target(path)
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(document, handle, ensure_ascii=False, indent=2, allow_nan=False)
                handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())
            Path(temp).replace(path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable across power loss, where the OS allows it."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on a directory; the rename itself is atomic
    finally:
        os.close(fd)


def read_json(path: Path) -> Any:
    """Parse a JSON file, or raise ImportFailed saying what is wrong with it."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ImportFailed(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ImportFailed(f"{path}: not UTF-8 text") from None
    if not text.strip():
        raise ImportFailed(f"{path}: empty file")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportFailed(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    except RecursionError:  # the parser recurses per level: deep nesting exhausts the stack
        raise ImportFailed(f"{path}: invalid JSON: nested too deeply") from None
