"""A thread that owns thread-bound native objects: every call on them runs on it."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

T = TypeVar("T")
_Job = tuple[Callable[[], object], "Future[object]"]


class OwnerThread:
    """Runs submitted calls one by one on a single daemon thread, until stop().

    Unlike a ThreadPoolExecutor it keeps working inside atexit handlers, so objects bound
    to it can still be released on it while the interpreter shuts down.
    """

    def __init__(self, name: str, max_pending: int = 256) -> None:
        self._jobs: queue.Queue[_Job | None] = queue.Queue(maxsize=max_pending)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            call, future = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(call())
            except BaseException as exc:
                future.set_exception(exc)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def submit(self, call: Callable[[], T]) -> Future[T]:
        if not self._thread.is_alive():
            raise RuntimeError(f"{self._thread.name} is stopped")
        future: Future[T] = Future()
        self._jobs.put((call, future))  # type: ignore[arg-type]
        return future

    def stop(self, timeout_s: float = 5.0) -> None:
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join(timeout_s)
