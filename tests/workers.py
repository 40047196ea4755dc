"""Real worker subprocesses for the crash and race tests: spawn, read, command, SIGKILL.

A `Forker` is a worker that imports the library once and then forks a child process per
command (`serve` is its side of the protocol): a child starts in milliseconds instead of the
second an import takes, so a test can kill hundreds of them.

On PostgreSQL each worker's server sessions carry an application_name of their own, so a
test can wait, after a kill, until they are gone: a COMMIT the server had received when the
client died is still carried out until then, and a check made earlier could miss it.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from statekeeper import StateManager

__all__ = ["STARTUP_TIMEOUT_S", "Forker", "Worker", "serve", "serve_store"]

ROOT = Path(__file__).resolve().parents[1]
STARTUP_TIMEOUT_S = 60.0
_SPAWNED = itertools.count()
_PR_SET_PDEATHSIG = 1


class Worker:
    """`python -m MODULE ARGS...`, where the argument equal to `url` names the store; its
    complete stdout lines are collected by a thread as they come."""

    def __init__(self, module: str, url: str, *args: str) -> None:
        self.url = url
        self.app = f"sk_worker_{os.getpid()}_{next(_SPAWNED)}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, *_named(url, self.app, args)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.endswith("\n"):  # a line cut short by the kill was never acknowledged
                self.lines.append(line.rstrip("\n"))
                self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def send(self, line: str) -> None:
        """Write one command line to the worker's stdin."""
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def wait_for(self, *prefixes: str, timeout: float = STARTUP_TIMEOUT_S) -> str:
        """The next line starting with one of `prefixes`; fails if the worker exits or stalls."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"worker printed no {prefixes} line within {timeout} s")
            if line is None:
                self.process.wait()
                assert self.process.stderr is not None
                pytest.fail(
                    f"worker exited with {self.process.returncode} before {prefixes}:\n"
                    f"{self.process.stderr.read()}"
                )
            if line.startswith(prefixes):
                return line

    def kill(self) -> list[str]:
        """SIGKILL the worker (if still running); every complete line it printed, once its
        PostgreSQL sessions are gone."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self._reader.join(timeout=10)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                with contextlib.suppress(BrokenPipeError):
                    stream.close()
        if "://" in self.url:
            _wait_for_server_sessions(self.url, self.app)
        return self.lines


class Forker(Worker):
    """`python -m MODULE ARGS...` whose main calls `serve`: it forks a child per `fork`.

    A child's lines are those it printed through its `emit`, prefixed with its number;
    on PostgreSQL its server sessions carry an application_name of their own.
    """

    def __init__(self, module: str, url: str, *args: str) -> None:
        super().__init__(module, url, *args)
        self._children = itertools.count()
        self._reaped: set[int] = set()
        self.pids: dict[int, int] = {}

    def fork(self, *args: str) -> int:
        """Start a child with `args` (the one equal to `url` names the store); its number."""
        child = next(self._children)
        named = _named(self.url, self._child_app(child), args)
        self.send(" ".join(("fork", str(child), *named)))
        self.pids[child] = int(self.wait_for(f"forked {child} ").split()[2])
        return child

    def child_lines(self, child: int) -> list[str]:
        """What child `child` has printed so far, without its prefix."""
        prefix = f"{child} "
        return [line[len(prefix) :] for line in self.lines if line.startswith(prefix)]

    def wait_child(self, child: int, *prefixes: str, timeout: float = STARTUP_TIMEOUT_S) -> str:
        """The child's first line starting with one of `prefixes`, without its prefix: found
        among those already read (waiting for another child may have passed it) or waited for."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.child_lines(child):
                if line.startswith(prefixes):
                    return line
            self.wait_for(f"{child} ", timeout=max(0.0, deadline - time.monotonic()))

    def reap(
        self, child: int, *, kill: bool = False, timeout: float = STARTUP_TIMEOUT_S
    ) -> tuple[int, list[str]]:
        """SIGKILL the child if `kill`, wait for its end; its wait status and every line it
        printed, once its PostgreSQL sessions are gone."""
        if kill:
            os.kill(self.pids[child], signal.SIGKILL)
        self.send(f"reap {child}")
        # The child's lines were all in the pipe before the server learnt that it ended.
        status = int(self.wait_for(f"reaped {child} ", timeout=timeout).split()[2])
        self._reaped.add(child)
        if "://" in self.url:
            _wait_for_server_sessions(self.url, self._child_app(child))
        return status, self.child_lines(child)

    def kill(self) -> list[str]:
        """SIGKILL the children not reaped yet, then the worker itself."""
        for child, pid in self.pids.items():
            if child not in self._reaped:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        return super().kill()

    def _child_app(self, child: int) -> str:
        return f"{self.app}_{child}"


def serve(child: Callable[[list[str], Callable[[str], None]], None]) -> None:
    """The worker side of `Forker`: per stdin line `fork N ARGS...`, fork a process running
    `child(ARGS, emit)`, where emit prints a line prefixed `N ` (and `N error ...` if it
    raises); per `reap N`, wait for child N and print `reaped N STATUS`. Whatever ran before
    (imports, a warm-up) must have closed its connections and threads: none cross a fork.
    """
    pids: dict[str, int] = {}
    _say("ready")
    for line in sys.stdin:
        command, number, *args = line.split()
        if command == "reap":
            _, status = os.waitpid(pids.pop(number), 0)
            _say(f"reaped {number} {status}")
            continue
        assert command == "fork", line
        server = os.getpid()
        pid = os.fork()
        if pid == 0:  # the child: run, then end without unwinding the server's stack
            _die_with(server)
            code = 0

            def emit(text: str, number: str = number) -> None:
                _say(f"{number} {text}")

            try:
                child(args, emit)
            except BaseException as exc:
                traceback.print_exc()
                emit(f"error {exc!r}".replace("\n", " "))
                code = 1
            finally:
                sys.stderr.flush()
                os._exit(code)
        pids[number] = pid
        _say(f"forked {number} {pid}")


def serve_store(child: Callable[[list[str], Callable[[str], None]], None]) -> None:
    """The main of a forking worker run as `python -m MODULE URL`: open the store at URL
    once and close it (every import is then done, no connection is left), then `serve`."""
    (url,) = sys.argv[1:]
    StateManager(url).close()
    serve(child)


def _die_with(server: int) -> None:
    """Have the kernel SIGKILL this child when the server ends (Linux), so that no child
    outlives a failed test holding the pipe the test reads from."""
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != server:  # it ended before that was set
        os._exit(1)


def _say(line: str) -> None:
    """Print a line in one write(2), atomic on a pipe: print's two writes (text, newline)
    could let another process's line, or nothing if killed, come between them."""
    os.write(sys.stdout.fileno(), f"{line}\n".encode())


def _named(url: str, app: str, args: tuple[str, ...]) -> list[str]:
    """`args`, the one equal to a PostgreSQL `url` given `app` as its application_name."""
    named = url
    if "://" in url:
        named = (
            make_url(url)
            .update_query_dict({"application_name": app})
            .render_as_string(hide_password=False)
        )
    return [named if a == url else a for a in args]


def _wait_for_server_sessions(url: str, app: str) -> None:
    engine = sa.create_engine(url)
    query = sa.text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name")
    try:
        deadline = time.monotonic() + 30
        with engine.connect() as connection:
            while connection.execute(query, {"name": app}).scalar():
                assert time.monotonic() < deadline, "the killed worker's sessions stayed"
                connection.rollback()
                time.sleep(0.01)
    finally:
        engine.dispose()
