"""Owning asyncio tasks: cancel one and wait for it, keep a set of them, run a loop between
start() and stop(), serialise work per key. The bottom layer: the gateway, the buses, the
workers and the test kit all use these instead of retyping the idiom."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any


async def cancel_and_wait(task: asyncio.Future[Any] | None) -> None:
    """Cancel a task and wait until it has really finished. Its own cancellation is expected
    and swallowed; a cancellation aimed at the caller meanwhile is re-raised, as are the
    errors the task ended with."""
    if task is None:
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        caller = asyncio.current_task()
        if caller is not None and caller.cancelling():
            raise


class TaskSet:
    """The tasks one object started: named, forgotten once done, stopped together."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, work: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def __len__(self) -> int:
        return len(self._tasks)

    def __iter__(self) -> Iterator[asyncio.Task[Any]]:
        return iter(list(self._tasks))

    async def finish(self, timeout_s: float) -> None:
        """Let the tasks end by themselves for up to `timeout_s`, then cancel the rest."""
        pending = list(self._tasks)
        if pending and timeout_s > 0:
            _, pending_set = await asyncio.wait(pending, timeout=timeout_s)
            pending = list(pending_set)
        for task in pending:
            await cancel_and_wait(task)

    async def cancel_all(self) -> None:
        """Cancel every task but the caller's own (a task may stop the set that owns it)."""
        for task in list(self._tasks):
            if task is not asyncio.current_task():
                await cancel_and_wait(task)


class BackgroundLoop:
    """Something that runs `_run()` as one task between start() and stop()."""

    name = "loop"

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None

    def _run(self) -> Coroutine[Any, Any, None]:
        raise NotImplementedError

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)


class KeyedLocks:
    """One asyncio.Lock per key (e.g. an identity), forgotten when nobody holds or awaits it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)
