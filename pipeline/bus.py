"""The bus between gateways and pipeline workers. In-process by default.

Whatever the transport, every submitted job ends in one result: the cascade's terminal events,
or a `bus` failure per target language when the job could not be taken.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from pipeline.audio import Audio
from pipeline.cascade import Cascade, CascadeResult, Translation, Utterance
from pipeline.events import CaptionFinal, FailureCause, UtteranceFailed
from pipeline.live import PARTIALS, PartialReading, PartialRequest
from pipeline.metrics import ABANDONED_THREADS, STAGE_FAILURES, TTS_FALLBACKS
from pipeline.tasks import cancel_and_wait

LOG = logging.getLogger(__name__)
HEARD_WAIT_S = 5.0  # a final waits this long for the live reading that covers its speech


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
    # In process only: the transcript a live-caption reading in flight will give (its whole
    # speech), or "" when that reading is skipped; the final then needs no decode of its own.
    heard_soon: asyncio.Future[str] | None = field(default=None, compare=False)

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

    async def read_partial(self, request: PartialRequest) -> PartialReading | None:
        """A live caption of a segment still being spoken, best effort: None when skipped
        (final work is running, or the transport has no live captions)."""
        return None

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
class _Run:
    """One job through the stages: the captions it handed out, and whether its deadline passed
    (a stuck stage's thread that wakes up later must not speak for it)."""

    job: Job
    sent: dict[str, CaptionFinal] = field(default_factory=dict)
    over: bool = False


@dataclass
class InProcessBus(Bus):
    """Bounded queues and worker tasks; inference runs on a thread pool, never the loop.

    Two stages, so that captions never wait for voices: reading (ASR and MT; captions go out
    at once) and speaking (TTS, one job at a time in the order read, so dubs and results keep
    the speaker's order). While one segment is being dubbed the next one is already read.

    Each stage run has `job_timeout_s` to finish. A stage that never returns cannot be
    interrupted in its thread, so the job fails on time and its thread is abandoned with the
    pool it was in: later jobs get a fresh pool, and the room goes on.
    """

    cascade: Cascade
    on_result: ResultHandler
    workers: int = 1  # reading tasks (speaking is one, to keep the order)
    queue_size: int = 64
    threads: int = 2
    on_caption: CaptionHandler | None = None
    on_clause: ClauseHandler | None = None
    job_timeout_s: float = 30.0
    fallback_voices: dict[str, str] = field(default_factory=dict)  # language → its fast voice
    fallback_lag_s: float = 0.0  # a job this late when its speech starts takes them (0: never)
    abandoned_threads: int = 0
    cut_off: int = 0  # jobs stopped mid-run by stop()
    _queue: asyncio.Queue[Job] = field(init=False)
    _read: asyncio.Queue[tuple[_Run, CascadeResult]] = field(init=False)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _executor: ThreadPoolExecutor = field(init=False)
    _live_pool: ThreadPoolExecutor = field(init=False)
    _reading_now: int = 0
    _speaking_now: bool = False
    _live_now: bool = False

    def __post_init__(self) -> None:
        self._queue = asyncio.Queue(maxsize=self.queue_size)
        self._read = asyncio.Queue(maxsize=self.queue_size)
        self._executor = self._new_pool()
        self._live_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="live-captions")

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._reading(), name=f"bus-reader-{i}")
            for i in range(self.workers)
        ]
        self._tasks.append(asyncio.create_task(self._speaking(), name="bus-speaker"))

    async def submit(self, job: Job) -> None:
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            await self.on_result(
                failed_result(job, "overloaded", "pipeline overloaded: job queue full")
            )

    async def _reading(self) -> None:
        while True:
            job = await self._queue.get()
            run = _Run(job)
            self._reading_now += 1
            try:
                read = await self._stage(run, self._read_job(run))
                if isinstance(read, JobResult):
                    await self._finish(read)
                else:
                    await self._read.put((run, read))
            except asyncio.CancelledError:  # stopped mid-job: its listeners still hear of it
                await self._cut_off(run)
                raise
            finally:
                self._reading_now -= 1
                self._queue.task_done()

    async def _speaking(self) -> None:
        while True:
            run, read = await self._read.get()
            run.job = self._in_time(run.job)
            self._speaking_now = True
            try:
                spoken = await self._stage(run, self._speak_job(run, read))
                await self._finish(
                    spoken if isinstance(spoken, JobResult) else JobResult(run.job, spoken)
                )
            except asyncio.CancelledError:
                await self._cut_off(run)
                raise
            finally:
                self._speaking_now = False
                self._read.task_done()

    async def read_partial(self, request: PartialRequest) -> PartialReading | None:
        """Run at once or not at all: skipped while final work (reading or speaking) runs or
        waits, and while the previous partial still runs. Finals never queue behind live
        captions, and on a machine short of cores live captions never take their CPU: a 2×3
        load test with them taking turns with TTS lost a final and read caption p50 13 s."""
        busy = self._reading_now or self._speaking_now or self._queue.qsize() or self._read.qsize()
        if self._live_now or busy:
            PARTIALS.labels("skipped").inc()
            return None
        self._live_now = True
        try:
            loop = asyncio.get_running_loop()
            work = loop.run_in_executor(self._live_pool, self.cascade.read_partial, request)
            reading = await asyncio.wait_for(work, self.job_timeout_s)
        except Exception as exc:  # a timeout too; best effort: the final tells what failed
            PARTIALS.labels("failed").inc()
            LOG.debug("partial reading of %s failed: %s", request.utterance_id, exc)
            return None
        finally:
            self._live_now = False
        PARTIALS.labels("done").inc()
        return reading

    def _in_time(self, job: Job) -> Job:
        """`job`, with its languages' fast voices when it is running late: under a CPU that
        cannot keep up, a plainer voice now beats a natural one ever later."""
        lag = time.time() - job.speech_end_at
        if not self.fallback_lag_s or not job.speech_end_at or lag < self.fallback_lag_s:
            return job
        voices = {**job.voice_map}
        for language in job.targets:
            if language in self.fallback_voices and language != job.utterance.language:
                voices[language] = self.fallback_voices[language]
                TTS_FALLBACKS.labels(language).inc()
        return dataclasses.replace(job, voices=tuple(voices.items()))

    def _read_job(self, run: _Run) -> Awaitable[CascadeResult]:
        def send_caption(caption: CaptionFinal) -> None:
            if run.over:  # a stuck job's thread woke up after its deadline: its result is gone
                return
            run.sent[caption.target_language] = caption
            if self.on_caption is not None:
                self.on_caption(run.job, caption)

        return self._read_heard(run, send_caption)

    async def _read_heard(
        self, run: _Run, send_caption: Callable[[CaptionFinal], None]
    ) -> CascadeResult:
        job = run.job
        utterance = job.utterance
        if job.heard_soon is not None:
            with contextlib.suppress(TimeoutError):  # then it is decoded here after all
                heard = await asyncio.wait_for(asyncio.shield(job.heard_soon), HEARD_WAIT_S)
                if heard:
                    utterance = dataclasses.replace(utterance, heard=heard)
        return await self.cascade.read_async(utterance, job.targets, self._executor, send_caption)

    def _speak_job(self, run: _Run, read: CascadeResult) -> Awaitable[CascadeResult]:
        def send_clause(language: str, clause: Audio) -> None:
            if not run.over and self.on_clause is not None:
                self.on_clause(run.job, language, clause)

        job = run.job
        return self.cascade.speak_async(
            job.utterance, read, self._executor, job.voice_map, send_clause
        )

    async def _stage(self, run: _Run, work: Awaitable[CascadeResult]) -> CascadeResult | JobResult:
        """A stage's result, or the job's failed result when the stage broke or got stuck."""
        try:
            return await asyncio.wait_for(work, self.job_timeout_s)
        except asyncio.CancelledError:
            run.over = True
            raise
        except TimeoutError:
            run.over = True
            LOG.error(
                "job %s: no result within %g s", run.job.utterance.utterance_id, self.job_timeout_s
            )
            self._abandon_pool()
            reason = f"no result within {self.job_timeout_s:g} s (a pipeline stage is stuck)"
            return failed_result(run.job, "stuck", reason, run.sent)
        except Exception as exc:
            return failed_result(run.job, "stage_error", f"worker error: {exc}", run.sent)

    async def _finish(self, done: JobResult) -> None:
        try:
            await self.on_result(done)
        except Exception:  # a broken handler must not stop the worker
            LOG.exception("result handler failed for %s", done.job.utterance.utterance_id)

    async def _cut_off(self, run: _Run) -> None:
        self.cut_off += 1  # its thread may run on: stop() will not wait for it
        await self.on_result(
            failed_result(run.job, "shutdown", "the server shut down mid-job", run.sent)
        )

    def _abandon_pool(self) -> None:
        """Leave the stuck thread to its pool; new jobs go to a new one."""
        stuck, self._executor = self._executor, self._new_pool()
        stuck.shutdown(wait=False, cancel_futures=True)
        self.abandoned_threads += 1
        ABANDONED_THREADS.inc()
        LOG.error(
            "a pipeline stage is stuck; its thread is abandoned (%d so far)", self.abandoned_threads
        )

    async def _drained(self) -> None:
        await self._queue.join()
        await self._read.join()

    def _new_pool(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="inference")

    async def stop(self, timeout_s: float | None = None) -> None:
        """Process what is queued, for at most `timeout_s`; then what is left fails, and the
        workers stop."""
        if self._tasks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained(), timeout_s)
        while not self._queue.empty():
            job = self._queue.get_nowait()
            await self.on_result(
                failed_result(job, "shutdown", "the server shut down before this job ran")
            )
            self._queue.task_done()
        while not self._read.empty():
            run, _ = self._read.get_nowait()
            await self.on_result(
                failed_result(
                    run.job, "shutdown", "the server shut down before its speech", run.sent
                )
            )
            self._read.task_done()
        for task in self._tasks:
            await cancel_and_wait(task)
        self._tasks = []
        self._executor.shutdown(wait=self.abandoned_threads == 0 and self.cut_off == 0)
        self._live_pool.shutdown(wait=False, cancel_futures=True)
