"""The bus between gateways and pipeline workers. In-process by default.

Whatever the transport, every submitted job ends in one result: the cascade's terminal events,
or a `bus` failure per target language when the job could not be taken.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from pipeline.cascade import Cascade, CascadeResult, Translation, Utterance
from pipeline.events import CaptionFinal, UtteranceFailed
from pipeline.metrics import STAGE_FAILURES

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """One utterance of a room's floor holder, for these listener languages."""

    room_id: str
    utterance: Utterance
    targets: tuple[str, ...]
    speech_end_at: float = 0.0
    recipient: str | None = None  # all-pairs baseline: this job's events go to one participant
    plays: bool = True  # its translated speech goes to the language's playout


@dataclass
class JobResult:
    job: Job
    result: CascadeResult


ResultHandler = Callable[[JobResult], Awaitable[None]]
CaptionHandler = Callable[[Job, CaptionFinal], None]


class Bus(ABC):
    """Takes jobs; results reach the handler given to the implementation."""

    @abstractmethod
    async def submit(self, job: Job) -> None:
        """Queue a job. Never drops it silently: a job that cannot be taken fails explicitly."""

    async def start(self) -> None:  # noqa: B027 - transports without a lifecycle need nothing
        """Start workers or connections."""

    async def stop(self) -> None:  # noqa: B027
        """Finish or fail every queued job, then stop."""


def failed_result(job: Job, reason: str) -> JobResult:
    """A result that fails every target of the job at the bus stage."""
    result = CascadeResult(job.utterance)
    for target in job.targets:
        event = UtteranceFailed(
            utterance_id=job.utterance.utterance_id,
            target_language=target,
            stage="bus",
            reason=reason,
        )
        result.translations[target] = Translation(event)
    STAGE_FAILURES.labels("bus").inc()
    return JobResult(job, result)


@dataclass
class InProcessBus(Bus):
    """A bounded queue and worker tasks; inference runs on a thread pool, never the loop."""

    cascade: Cascade
    on_result: ResultHandler
    workers: int = 1
    queue_size: int = 64
    threads: int = 2
    on_caption: CaptionHandler | None = None
    _queue: asyncio.Queue[Job] = field(init=False)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _executor: ThreadPoolExecutor = field(init=False)

    def __post_init__(self) -> None:
        self._queue = asyncio.Queue(maxsize=self.queue_size)
        self._executor = ThreadPoolExecutor(
            max_workers=self.threads, thread_name_prefix="inference"
        )

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._work(), name=f"bus-worker-{i}") for i in range(self.workers)
        ]

    async def submit(self, job: Job) -> None:
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            await self.on_result(failed_result(job, "pipeline overloaded: job queue full"))

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                await self.on_result(await self._process(job))
            except Exception:  # a broken handler must not stop the worker
                LOG.exception("result handler failed for %s", job.utterance.utterance_id)
            finally:
                self._queue.task_done()

    async def _process(self, job: Job) -> JobResult:
        try:
            early = None if self.on_caption is None else self._caption_sender(job, self.on_caption)
            result = await self.cascade.process_async(
                job.utterance, job.targets, self._executor, early
            )
        except Exception as exc:
            return failed_result(job, f"worker error: {exc}")
        return JobResult(job, result)

    @staticmethod
    def _caption_sender(job: Job, handler: CaptionHandler) -> Callable[[CaptionFinal], None]:
        return lambda caption: handler(job, caption)

    async def stop(self) -> None:
        """Process what is queued (bounded by the queue size), then stop the workers."""
        if self._tasks:
            await self._queue.join()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self._executor.shutdown(wait=True)
