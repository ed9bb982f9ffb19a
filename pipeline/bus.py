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

from pipeline.audio import Audio
from pipeline.cascade import Cascade, CascadeResult, Translation, Utterance
from pipeline.events import CaptionFinal, FailureCause, UtteranceFailed
from pipeline.metrics import ABANDONED_THREADS, STAGE_FAILURES
from pipeline.tasks import cancel_and_wait

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
    voices: tuple[tuple[str, str], ...] = ()  # (language, voice) chosen for this speaker

    @property
    def voice_map(self) -> dict[str, str]:
        return dict(self.voices)


@dataclass
class JobResult:
    job: Job
    result: CascadeResult


ResultHandler = Callable[[JobResult], Awaitable[None]]
CaptionHandler = Callable[[Job, CaptionFinal], None]
ClauseHandler = Callable[[Job, str, Audio], None]  # a clause of a target's speech, as it is made


class Bus(ABC):
    """Takes jobs; results reach the handler given to the implementation."""

    @abstractmethod
    async def submit(self, job: Job) -> None:
        """Queue a job. Never drops it silently: a job that cannot be taken fails explicitly."""

    async def start(self) -> None:  # noqa: B027 - transports without a lifecycle need nothing
        """Start workers or connections."""

    async def stop(self, timeout_s: float | None = None) -> None:  # noqa: B027
        """Finish (within `timeout_s`) or fail every queued job, then stop."""


def unfinished(
    job: Job, target: str, cause: FailureCause, reason: str, caption: CaptionFinal | None
) -> Translation:
    """The terminal event of a target the bus could not finish: its caption, when that already
    went out (only speech is missing), else a failure at the bus stage."""
    if caption is not None:
        return Translation(caption, delivered=True)
    event = UtteranceFailed(
        utterance_id=job.utterance.utterance_id,
        target_language=target,
        stage="bus",
        reason=reason,
        cause=cause,
    )
    return Translation(event)


def failed_result(
    job: Job, cause: FailureCause, reason: str, captions: dict[str, CaptionFinal] | None = None
) -> JobResult:
    """A result that ends every target of the job at the bus stage (see `unfinished`)."""
    result = CascadeResult(job.utterance)
    for target in job.targets:
        caption = (captions or {}).get(target)
        result.translations[target] = unfinished(job, target, cause, reason, caption)
    STAGE_FAILURES.labels("bus").inc()
    return JobResult(job, result)


@dataclass
class InProcessBus(Bus):
    """A bounded queue and worker tasks; inference runs on a thread pool, never the loop.

    A job has `job_timeout_s` to finish. A stage that never returns cannot be interrupted in
    its thread, so the job fails on time and its thread is abandoned with the pool it was in:
    later jobs get a fresh pool, and the room goes on.
    """

    cascade: Cascade
    on_result: ResultHandler
    workers: int = 1
    queue_size: int = 64
    threads: int = 2
    on_caption: CaptionHandler | None = None
    on_clause: ClauseHandler | None = None
    job_timeout_s: float = 30.0
    abandoned_threads: int = 0
    cut_off: int = 0  # jobs stopped mid-run by stop()
    _queue: asyncio.Queue[Job] = field(init=False)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _executor: ThreadPoolExecutor = field(init=False)

    def __post_init__(self) -> None:
        self._queue = asyncio.Queue(maxsize=self.queue_size)
        self._executor = self._new_pool()

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
            await self.on_result(
                failed_result(job, "overloaded", "pipeline overloaded: job queue full")
            )

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                done = await self._process(job)
            except asyncio.CancelledError:  # stopped mid-job: its listeners still hear of it
                self.cut_off += 1  # its thread may run on: stop() will not wait for it
                await self.on_result(failed_result(job, "shutdown", "the server shut down mid-job"))
                self._queue.task_done()
                raise
            try:
                await self.on_result(done)
            except Exception:  # a broken handler must not stop the worker
                LOG.exception("result handler failed for %s", job.utterance.utterance_id)
            finally:
                self._queue.task_done()

    async def _process(self, job: Job) -> JobResult:
        sent: dict[str, CaptionFinal] = {}
        over = False

        def send_caption(caption: CaptionFinal) -> None:
            if over:  # a stuck job's thread woke up after its deadline: its result is gone
                return
            sent[caption.target_language] = caption
            if self.on_caption is not None:
                self.on_caption(job, caption)

        def send_clause(language: str, clause: Audio) -> None:
            if not over and self.on_clause is not None:
                self.on_clause(job, language, clause)

        work = self.cascade.process_async(
            job.utterance, job.targets, self._executor, send_caption, job.voice_map, send_clause
        )
        try:
            result = await asyncio.wait_for(work, self.job_timeout_s)
        except asyncio.CancelledError:
            over = True
            raise
        except TimeoutError:
            over = True
            self._abandon_pool()
            reason = f"no result within {self.job_timeout_s:g} s (a pipeline stage is stuck)"
            return failed_result(job, "stuck", reason, sent)
        except Exception as exc:
            return failed_result(job, "stage_error", f"worker error: {exc}")
        return JobResult(job, result)

    def _abandon_pool(self) -> None:
        """Leave the stuck thread to its pool; new jobs go to a new one."""
        stuck, self._executor = self._executor, self._new_pool()
        stuck.shutdown(wait=False, cancel_futures=True)
        self.abandoned_threads += 1
        ABANDONED_THREADS.inc()
        LOG.error(
            "a pipeline stage is stuck; its thread is abandoned (%d so far)", self.abandoned_threads
        )

    def _new_pool(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="inference")

    async def stop(self, timeout_s: float | None = None) -> None:
        """Process what is queued, for at most `timeout_s`; then what is left fails, and the
        workers stop."""
        if self._tasks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), timeout_s)
        while not self._queue.empty():
            job = self._queue.get_nowait()
            await self.on_result(
                failed_result(job, "shutdown", "the server shut down before this job ran")
            )
            self._queue.task_done()
        for task in self._tasks:
            await cancel_and_wait(task)
        self._tasks = []
        self._executor.shutdown(wait=self.abandoned_threads == 0 and self.cut_off == 0)
