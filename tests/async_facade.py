"""Drive an AsyncStateManager from the synchronous behaviour suite.

Every call runs in one long-lived task on an event loop of its own thread, so a
`transaction()` block spans the calls made inside it exactly as it does for an async
application. `engine` is a synchronous engine on the same store, for the suite's raw checks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from typing import Any

import sqlalchemy as sa

from statekeeper import AsyncStateManager
from statekeeper.config import create_engine

Call = tuple[Callable[[], Awaitable[Any]], "concurrent.futures.Future[Any]"]


class AsyncFacade:
    """An AsyncStateManager whose coroutine methods are called like StateManager's."""

    def __init__(self, url: Any, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._queue: asyncio.Queue[Call] | None = None
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result()
        self.manager = AsyncStateManager(url, **options)
        self._engine: sa.Engine | None = None
        try:
            self.run(self.manager.open)
        except BaseException:
            self._stop()
            raise

    async def _start(self) -> None:
        self._queue = asyncio.Queue()
        self._worker = asyncio.get_running_loop().create_task(self._work())

    async def _work(self) -> None:
        assert self._queue is not None
        while True:
            fn, future = await self._queue.get()
            try:
                future.set_result(await fn())
            except BaseException as exc:
                future.set_exception(exc)

    def run(self, fn: Callable[[], Awaitable[Any]]) -> Any:
        """Await `fn()` in the manager's one task and return its result."""
        assert self._queue is not None
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._loop.call_soon_threadsafe(self._queue.put_nowait, (fn, future))
        return future.result()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.manager, name)
        if not inspect.iscoroutinefunction(attribute):
            return attribute
        return lambda *args, **kwargs: self.run(lambda: attribute(*args, **kwargs))

    @property
    def engine(self) -> sa.Engine:
        """A synchronous engine on the same store."""
        if self._engine is None:
            self._engine = create_engine(self.manager.url)
        return self._engine

    @contextmanager
    def _enter(self, manager: AbstractAsyncContextManager[Any]) -> Iterator[Any]:
        value = self.run(manager.__aenter__)
        try:
            yield value
        except BaseException as exc:
            error = exc
            if not self.run(lambda: manager.__aexit__(type(error), error, error.__traceback__)):
                raise
        else:
            self.run(lambda: manager.__aexit__(None, None, None))

    def transaction(self) -> Any:
        """The manager's `transaction()` block, entered and left in its task."""
        return self._enter(self.manager.transaction())

    def session(self) -> Any:
        """The manager's read-only `session()`, entered and left in its task."""
        return self._enter(self.manager.session())

    def close(self) -> None:
        """Close the manager, then stop the loop."""
        try:
            self.run(self.manager.close)
        finally:
            self._stop()

    async def _finish(self) -> None:
        self._worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._worker
        await self._loop.shutdown_default_executor()

    def _stop(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
        asyncio.run_coroutine_threadsafe(self._finish(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def __enter__(self) -> AsyncFacade:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
