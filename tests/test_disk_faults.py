"""Disk faults made real: a full file system, a file size limit, a read-only store.

A full disk is a small tmpfs this test mounts (root only: elsewhere it skips, saying so);
the file size limit (RLIMIT_FSIZE, any user) and the read-only store (a file this process
may not write: root drops its privileges in the worker) run in worker processes. Each time:
the failing write is a StateError naming the store's file, everything committed before it
is kept, nothing is corrupted, and writing resumes once the fault is gone.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from statekeeper import InvalidInput, StateError, StateManager, StorageError
from tests.crash_worker import context_for, cost_for, output_for
from tests.disk_worker import checkpoint
from tests.workers import Worker

DISK_BYTES = 3 * 1024 * 1024
MAX_SAVES = 2_000
RESERVE_BYTES = 256 * 1024


def _fill(directory: Path) -> Path:
    """Write a file into `directory` until the file system has no room left; returns it."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_CREAT | os.O_WRONLY, 0o600)
    try:
        for size in (65536, 4096, 1):  # big steps, then what is left, to the last byte
            while True:
                try:
                    os.write(fd, b"\0" * size)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)
    return filler


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A directory on a tmpfs of DISK_BYTES, mounted for the test and unmounted after."""
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES},mode=0700", "tmpfs", str(mountpoint)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {result.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def _save_until_it_fails(sm: StateManager, session_id: str, start: int) -> tuple[int, StateError]:
    """Save phases from `start` until one fails; how many are saved then, and the error."""
    for i in range(start, MAX_SAVES):
        try:
            checkpoint(sm, session_id, i)
        except StateError as exc:
            return i, exc
    raise AssertionError(f"{MAX_SAVES} saves and the disk never filled up")


def _verify(sm: StateManager, session_id: str, count: int) -> None:
    """Phases p0..p{count-1} are stored whole, with the context of the last one."""
    phases = sm.get_completed_phases(session_id)
    assert [p.phase_id for p in phases] == [f"p{i}" for i in range(count)]
    for i, phase in enumerate(phases):
        assert phase.output == output_for(i)
        assert phase.cost_usd == cost_for(i)
    session = sm.get_session(session_id)
    assert session is not None
    assert session.cost_usd == sum((cost_for(i) for i in range(count)), Decimal(0))
    context = sm.load_context(session_id)
    assert context is not None and context.data == context_for(count - 1)
    assert sm.integrity_check().ok


def test_a_full_disk_fails_the_write_keeps_the_rest_and_resumes(
    small_disk: Path, sqlite_template: Path
) -> None:
    path = small_disk / "state.db"
    shutil.copy2(sqlite_template, path)
    with StateManager(path) as sm:
        sid = sm.create_session("disk")
        checkpoint(sm, sid, 0)
        reserve = small_disk / "reserve"
        reserve.write_bytes(b"\0" * RESERVE_BYTES)
        filler = _fill(small_disk)
        reserve.unlink()  # RESERVE_BYTES left: some saves fit, then one does not
        acked, error = _save_until_it_fails(sm, sid, 1)
        assert acked > 1, "no save fitted in the room left"
        message = str(error)
        assert isinstance(error, StorageError)
        assert str(path) in message and "disk is full" in message and "free some space" in message
        _verify(sm, sid, acked)

        # Other writes on the full disk: refused alike, nothing half-made.
        with pytest.raises(StorageError, match="disk is full"):
            sm.create_session("no room", metadata={"blob": "x" * 100_000})
        backup = small_disk / "backup.db"
        with pytest.raises(StorageError) as refused:
            sm.backup(backup)
        assert str(backup) in str(refused.value) and "free some space" in str(refused.value)
        assert not backup.exists()
        assert [p.name for p in small_disk.iterdir() if p.name.startswith(".")] == []
        export = small_disk / "run.json"
        with pytest.raises(StorageError) as refused:
            sm.export_session(sid, export)
        assert str(export) in str(refused.value) and "no room" in str(refused.value)
        assert not export.exists()

        filler.unlink()  # room again: writing resumes where it stopped
        for i in range(acked, acked + 5):
            checkpoint(sm, sid, i)
        _verify(sm, sid, acked + 5)
    with StateManager(path) as reopened:
        _verify(reopened, sid, acked + 5)
    print(f"{acked} phases saved before the disk was full, 5 after room was made")


def test_a_restore_that_fills_the_disk_leaves_the_old_store(
    small_disk: Path, sqlite_template: Path, tmp_path: Path
) -> None:
    """The rows are replaced in one transaction: when the disk fills up midway, after every
    old row was deleted, the old rows are all still there."""
    path = small_disk / "state.db"
    shutil.copy2(sqlite_template, path)
    backup = tmp_path / "big.db"
    with StateManager(tmp_path / "big-source.db") as big:
        for i in range(40):
            big.create_session(f"big {i}", metadata={"blob": "y" * 60_000})
        big.backup(backup)
    with StateManager(path) as sm:
        sid = sm.create_session("small")
        checkpoint(sm, sid, 0)
        filler = _fill(small_disk)
        with pytest.raises(StorageError, match="disk is full"):
            sm.restore_backup(backup, overwrite=True)
        _verify(sm, sid, 1)
        assert sm.get_total_sessions() == 1
        filler.unlink()


def test_a_file_size_limit_fails_the_write_keeps_the_rest_and_resumes(
    sqlite_template: Path, tmp_path: Path, workers: list[Worker]
) -> None:
    store_url = str(tmp_path / "state.db")
    shutil.copy2(sqlite_template, store_url)
    with StateManager(store_url) as sm:
        sid = sm.create_session("limit")
        sm.checkpoint()
    worker = Worker("tests.disk_worker", store_url, "fsize", store_url, sid)
    workers.append(worker)
    failure = worker.wait_for("error ")
    resumed = worker.wait_for("resumed ")
    acked = [line.split()[1] for line in worker.lines if line.startswith("ack ")]
    worker.process.wait(timeout=60)
    assert worker.process.returncode == 0, worker.process.stderr
    assert acked, "nothing was saved before the limit was reached"
    kind, message = failure.split(" ", 2)[1:]
    assert kind == "StorageError"
    assert store_url in message
    assert "file size limit" in message or "disk is full" in message
    assert resumed == f"resumed p{len(acked)}"
    with StateManager(store_url) as sm:
        _verify(sm, sid, len(acked) + 1)
    print(f"{len(acked)} phases saved under the limit, then: {message}")


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory any user may write (a dropped-privilege worker creates SQLite's -shm)."""
    directory = Path(tempfile.mkdtemp(prefix="statekeeper-ro-"))
    directory.chmod(0o777)
    try:
        yield directory
    finally:
        shutil.rmtree(directory)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_read_only_store_reads_and_refuses_writes(
    shared_dir: Path, sqlite_template: Path, workers: list[Worker]
) -> None:
    path = shared_dir / "state.db"
    shutil.copy2(sqlite_template, path)
    with StateManager(path) as sm:
        sid = sm.create_session("read only")
        for i in range(3):
            checkpoint(sm, sid, i)
        sm.checkpoint()
    path.chmod(0o444)
    digest = _digest(path)
    # Root writes any file whatever its mode: the worker drops to nobody to be refused.
    options = ["--as-nobody"] if os.geteuid() == 0 else []
    worker = Worker("tests.disk_worker", str(path), "readonly", str(path), sid, *options)
    workers.append(worker)
    read = worker.wait_for("read ", "open-error ")
    assert read == "read p0,p1,p2"
    failure = worker.wait_for("error ", "wrote")
    kind, message = failure.split(" ", 2)[1:]
    assert kind == "StorageError"
    assert str(path) in message and "read-only" in message
    worker.process.wait(timeout=60)
    assert worker.process.returncode == 0
    assert _digest(path) == digest
    path.chmod(0o600)
    with StateManager(path) as sm:
        _verify(sm, sid, 3)
        checkpoint(sm, sid, 3)  # writable again: writing resumes
        _verify(sm, sid, 4)


def test_a_store_on_a_read_only_file_system_is_refused_by_name(
    small_disk: Path, sqlite_template: Path
) -> None:
    """A read-only mount: SQLite cannot make the WAL index beside the file, so the store is
    refused with its path (a StateError, not an OSError), and is left as it was."""
    path = small_disk / "state.db"
    shutil.copy2(sqlite_template, path)
    with StateManager(path) as sm:
        sid = sm.create_session("ro mount")
        checkpoint(sm, sid, 0)
    digest = _digest(path)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    try:
        with pytest.raises(StateError) as info, StateManager(path) as sm:
            checkpoint(sm, sid, 1)
        assert str(path) in str(info.value)
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    assert _digest(path) == digest
    with StateManager(path) as sm:
        _verify(sm, sid, 1)


@pytest.mark.parametrize("kind", ["directory", "parent_is_a_file"])
def test_file_writes_onto_an_impossible_path_are_refused(
    sm: StateManager, tmp_path: Path, kind: str
) -> None:
    """backup, export_session, export_json and copy_to onto a directory, or below a file:
    InvalidInput naming the path, and nothing written."""
    sid = sm.create_session("x", workspace=str(tmp_path))
    blocker = tmp_path / "blocker"
    if kind == "directory":
        blocker.mkdir()
        target, fragment = blocker, "is a directory"
    else:
        blocker.write_text("keep me")
        target, fragment = blocker / "out.file", "is a file, not a directory"
    before = sorted(p.name for p in tmp_path.iterdir())
    calls: dict[str, Callable[[], object]] = {
        "backup": lambda: sm.backup(target),
        "export_session": lambda: sm.export_session(sid, target),
        "export_json": lambda: sm.export_json(str(tmp_path), target),
        "copy_to": lambda: sm.copy_to(str(target)),
    }
    for name, call in calls.items():
        with pytest.raises(InvalidInput) as info:
            call()
        assert str(blocker) in str(info.value), name
        assert fragment in str(info.value), name
        assert "choose another path" in str(info.value) or "give the path" in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    if kind == "parent_is_a_file":
        assert blocker.read_text() == "keep me"
    else:
        assert list(blocker.iterdir()) == []


def test_a_write_the_os_refuses_names_the_path(sm: StateManager, tmp_path: Path) -> None:
    """An OSError below the path checks (here: no directory can be made under /proc) is a
    StorageError naming the path, never a raw OSError."""
    sid = sm.create_session("x")
    calls: list[Callable[[Path], object]] = [
        lambda p: sm.backup(p),
        lambda p: sm.export_session(sid, p),
    ]
    for call in calls:
        target = Path("/proc/statekeeper-test/out.db")
        with pytest.raises(StorageError) as info:
            call(target)
        assert str(target) in str(info.value)
    assert stat.S_ISDIR(os.stat("/proc").st_mode)


def test_stats_plot_onto_a_directory_is_one_line(store_url: str, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from tests.test_cli import assert_fails, cli

    with StateManager(store_url) as sm:
        sm.create_session("x")
    assert_fails(cli(store_url, "stats", "--plot", str(tmp_path)), 1, "is a directory")
    (tmp_path / "file").write_text("x")
    assert_fails(
        cli(store_url, "stats", "--plot", str(tmp_path / "file" / "p.png")), 1, "not a directory"
    )
