"""StatekeeperSaver: a LangGraph checkpointer whose threads are statekeeper sessions.

Checkpoints and pending writes go to statekeeper's own tables (revision 0006), in the
managers' units of work, so they share its retries, error translation and `transaction()`
blocks on SQLite and PostgreSQL alike. Needs `pip install 'statekeeper[langgraph]'`.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

from sqlalchemy.engine import URL

try:
    from langchain_core.runnables import RunnableConfig
    from langgraph.checkpoint.base import (
        WRITES_IDX_MAP,
        BaseCheckpointSaver,
        ChannelVersions,
        Checkpoint,
        CheckpointMetadata,
        CheckpointTuple,
        get_checkpoint_id,
        get_serializable_checkpoint_metadata,
        writes_sort_key,
    )
    from langgraph.checkpoint.serde.base import SerializerProtocol
except ImportError as exc:
    raise ImportError(
        "statekeeper.integrations.langgraph needs LangGraph's checkpoint package: "
        "pip install 'statekeeper[langgraph]'"
    ) from exc

from statekeeper.aio import AsyncStateManager
from statekeeper.errors import InvalidInput
from statekeeper.executor import UnitOfWork
from statekeeper.manager import StateManager
from statekeeper.services import graph, sessions
from statekeeper.values import dump_json

__all__ = ["StatekeeperSaver"]

T = TypeVar("T")
Store = str | os.PathLike[str] | URL
Rows = tuple[Any, Sequence[Any]]
Refreshed = tuple[str, float | None]
"""A put's thread id, and its start (Refreshes.due) if it refreshes the thread's session."""


def _config(thread_id: str, namespace: str, checkpoint_id: str) -> RunnableConfig:
    return {
        "configurable": {
            "thread_id": thread_id,
            "checkpoint_ns": namespace,
            "checkpoint_id": checkpoint_id,
        }
    }


class StatekeeperSaver(BaseCheckpointSaver[int]):
    """A LangGraph checkpointer on a statekeeper store; each thread is a session of kind
    `langgraph`, named by the thread id, made on its first checkpoint.

    `conn` is a store URL or path (the saver opens its managers and closes them), a
    StateManager (sync methods; async ones run it in a worker thread) or an
    AsyncStateManager (async methods only). `strict=True` refuses, with VersionConflict, a
    checkpoint whose parent is no longer its namespace's newest, instead of forking.
    `options` go to the managers the saver opens (e.g. `auto_migrate=False`).
    """

    def __init__(
        self,
        conn: Store | StateManager | AsyncStateManager,
        *,
        strict: bool = False,
        serde: SerializerProtocol | None = None,
        **options: Any,
    ) -> None:
        super().__init__(serde=serde)
        self.strict = strict
        self._store: Store | None = None
        self._sync: StateManager | None = None
        self._async: AsyncStateManager | None = None
        if isinstance(conn, StateManager):
            self._sync = conn
        elif isinstance(conn, AsyncStateManager):
            self._async = conn
        else:
            self._store = conn
        self._options = options
        self._opening = threading.Lock()
        self._refreshes = sessions.Refreshes()

    @classmethod
    def from_conn_string(cls, url: Store, *, strict: bool = False, **options: Any) -> Self:
        """A saver on its own managers, closed on leaving `with` (or `async with`) it."""
        return cls(url, strict=strict, **options)

    def _manager(self) -> StateManager:
        with self._opening:
            if self._sync is None:
                if self._store is None:
                    raise InvalidInput(
                        "conn", "an AsyncStateManager serves the async methods only (ainvoke)"
                    )
                self._sync = StateManager(self._store, **self._options)
            return self._sync

    def _run(self, fn: Callable[[UnitOfWork], T], *, write: bool) -> T:
        return self._manager()._db.run(fn, write=write, direct=True)

    async def _arun(self, fn: Callable[[UnitOfWork], T], *, write: bool) -> T:
        if self._async is None:
            if self._store is None:
                return await asyncio.to_thread(self._run, fn, write=write)
            self._async = AsyncStateManager(self._store, **self._options)
        return await self._async._db.run(fn, write=write, direct=True)

    def setup(self) -> None:
        """Migrate the store to head (the graph tables are part of the chain); no-op at head."""
        if self._store is not None:
            with StateManager(self._store, **{**self._options, "check_schema": False}) as sm:
                sm.upgrade_schema("head")
        else:
            self._manager().upgrade_schema("head")

    async def asetup(self) -> None:
        """`setup`, awaited."""
        if self._store is not None:
            options = {**self._options, "check_schema": False}
            async with AsyncStateManager(self._store, **options) as am:
                await am.upgrade_schema("head")
        elif self._async is not None:
            await self._async.upgrade_schema("head")
        else:
            await asyncio.to_thread(self.setup)

    def close(self) -> None:
        """Close the managers the saver opened (one given to it stays open)."""
        if self._store is None:
            return
        if self._sync is not None:
            self._sync.close()
            self._sync = None
        if self._async is not None:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                asyncio.run(self._async.close())
                self._async = None
            else:
                raise InvalidInput("close", "inside an event loop, use `await saver.aclose()`")

    async def aclose(self) -> None:
        """`close`, awaited: what `async with` calls."""
        if self._store is not None and self._async is not None:
            await self._async.close()
            self._async = None
        self.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _tuple(self, found: Rows) -> CheckpointTuple:
        row, writes = found
        thread_id, namespace = row.session_id, row.checkpoint_ns
        parent = row.parent_checkpoint_id
        ordered = sorted(writes, key=lambda w: writes_sort_key(w.task_path, w.task_id, w.idx))
        return CheckpointTuple(
            config=_config(thread_id, namespace, row.checkpoint_id),
            checkpoint=self.serde.loads_typed((row.type, row.checkpoint)),
            metadata=row.metadata,
            parent_config=None if parent is None else _config(thread_id, namespace, parent),
            pending_writes=[
                (w.task_id, w.channel, self.serde.loads_typed((w.type, w.value))) for w in ordered
            ],
        )

    def _put_work(
        self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata
    ) -> tuple[Callable[[UnitOfWork], None], RunnableConfig, Refreshed]:
        """The unit of work of a put, its values serialized up front, the config it returns,
        and the refresh of the thread's session it makes, to remember once it is done."""
        conf = config["configurable"]
        thread_id, namespace = str(conf["thread_id"]), conf.get("checkpoint_ns", "")
        parent_id = conf.get("checkpoint_id")
        typed = self.serde.dumps_typed(checkpoint)
        stored = dump_json(get_serializable_checkpoint_metadata(config, metadata), "metadata")
        key = (thread_id, namespace, checkpoint["id"])
        started = self._refreshes.due(thread_id)

        def work(uow: UnitOfWork) -> None:
            graph.put(
                uow,
                key,
                parent_id=parent_id,
                typed=typed,
                metadata=stored,
                strict=self.strict,
                refresh=started is not None,
            )

        return work, _config(*key), (thread_id, started)

    def _writes_work(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, path: str
    ) -> Callable[[UnitOfWork], None]:
        conf = config["configurable"]
        key = (str(conf["thread_id"]), conf.get("checkpoint_ns", ""), conf["checkpoint_id"])
        rows = [
            (WRITES_IDX_MAP.get(channel, idx), channel, self.serde.dumps_typed(value))
            for idx, (channel, value) in enumerate(writes)
        ]
        replace = all(channel in WRITES_IDX_MAP for channel, _ in writes)
        return lambda uow: graph.put_writes(
            uow, key, task_id=task_id, task_path=path, writes=rows, replace=replace
        )

    @staticmethod
    def _get_work(config: RunnableConfig) -> Callable[[UnitOfWork], Rows | None]:
        conf = config["configurable"]
        key = (str(conf["thread_id"]), conf.get("checkpoint_ns", ""), get_checkpoint_id(config))
        return lambda uow: graph.get(uow, key)

    @staticmethod
    def _list_work(
        config: RunnableConfig | None,
        filter: dict[str, Any] | None,
        before: RunnableConfig | None,
        limit: int | None,
    ) -> Callable[[UnitOfWork], Sequence[Rows]]:
        conf = (config or {}).get("configurable", {})
        thread_id = conf.get("thread_id")
        thread = None if thread_id is None else str(thread_id)
        namespace, checkpoint_id = conf.get("checkpoint_ns"), conf.get("checkpoint_id")
        cursor = None if before is None else get_checkpoint_id(before)
        return lambda uow: graph.listing(
            uow,
            thread_id=thread,
            namespace=namespace,
            checkpoint_id=checkpoint_id,
            before=cursor,
            metadata=filter,
            limit=limit,
        )

    @staticmethod
    def _prune_work(thread_ids: Sequence[str], strategy: str) -> Callable[[UnitOfWork], None]:
        if strategy not in ("keep_latest", "delete"):
            raise InvalidInput("strategy", f"expected 'keep_latest' or 'delete', got {strategy!r}")
        ids = [str(thread_id) for thread_id in thread_ids]
        return lambda uow: graph.prune(uow, ids, keep_latest=strategy == "keep_latest")

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint the config names, or its namespace's newest; None if there is none."""
        found = self._run(self._get_work(config), write=False)
        return None if found is None else self._tuple(found)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first; `filter` keys must equal the metadata's."""
        for found in self._run(self._list_work(config, filter, before, limit), write=False):
            yield self._tuple(found)

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint (whole: `new_versions` is not needed) and return its config."""
        work, stored, refreshed = self._put_work(config, checkpoint, metadata)
        self._run(work, write=True)
        self._refreshes.done(*refreshed)
        return stored

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's pending writes against the config's checkpoint."""
        self._run(self._writes_work(config, writes, task_id, task_path), write=True)

    def delete_thread(self, thread_id: str) -> None:
        """Delete the thread: its session too, unless that session is not of kind langgraph."""
        self._run(lambda uow: graph.delete_thread(uow, str(thread_id)), write=True)

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and their writes) made by these runs."""
        ids = [str(run_id) for run_id in run_ids]
        self._run(lambda uow: graph.delete_for_runs(uow, ids), write=True)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint and write of a thread to another (a new session if need be)."""
        source, target = str(source_thread_id), str(target_thread_id)
        self._run(lambda uow: graph.copy_thread(uow, source, target), write=True)

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """`keep_latest`: keep each namespace's newest checkpoint; `delete`: keep none."""
        self._run(self._prune_work(thread_ids, strategy), write=True)

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """`get_tuple`, awaited."""
        found = await self._arun(self._get_work(config), write=False)
        return None if found is None else self._tuple(found)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """`list`, awaited."""
        for found in await self._arun(self._list_work(config, filter, before, limit), write=False):
            yield self._tuple(found)

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """`put`, awaited."""
        work, stored, refreshed = self._put_work(config, checkpoint, metadata)
        await self._arun(work, write=True)
        self._refreshes.done(*refreshed)
        return stored

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """`put_writes`, awaited."""
        await self._arun(self._writes_work(config, writes, task_id, task_path), write=True)

    async def adelete_thread(self, thread_id: str) -> None:
        """`delete_thread`, awaited."""
        await self._arun(lambda uow: graph.delete_thread(uow, str(thread_id)), write=True)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """`delete_for_runs`, awaited."""
        ids = [str(run_id) for run_id in run_ids]
        await self._arun(lambda uow: graph.delete_for_runs(uow, ids), write=True)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """`copy_thread`, awaited."""
        source, target = str(source_thread_id), str(target_thread_id)
        await self._arun(lambda uow: graph.copy_thread(uow, source, target), write=True)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """`prune`, awaited."""
        await self._arun(self._prune_work(thread_ids, strategy), write=True)
