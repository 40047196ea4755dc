"""Real worker subprocesses for the crash and race tests: spawn, read, command, SIGKILL.

On PostgreSQL each worker's server sessions carry an application_name of their own, so a
test can wait, after a kill, until they are gone: a COMMIT the server had received when the
client died is still carried out until then, and a check made earlier could miss it.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

__all__ = ["STARTUP_TIMEOUT_S", "Worker"]

ROOT = Path(__file__).resolve().parents[1]
STARTUP_TIMEOUT_S = 60.0
_SPAWNED = itertools.count()


class Worker:
    """`python -m MODULE ARGS...`, where the argument equal to `url` names the store; its
    complete stdout lines are collected by a thread as they come."""

    def __init__(self, module: str, url: str, *args: str) -> None:
        self.url = url
        self.app = f"sk_worker_{os.getpid()}_{next(_SPAWNED)}"
        named = url
        if "://" in url:
            named = (
                make_url(url)
                .update_query_dict({"application_name": self.app})
                .render_as_string(hide_password=False)
            )
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, *(named if a == url else a for a in args)],
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
