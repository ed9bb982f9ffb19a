"""The gateway's side of the Redis Streams bus: submit jobs, route results back to rooms.

The gateway keeps every job it submitted until each target has its terminal event (bounded by
`queue_size`; a job past `job_timeout_s` fails explicitly). That record makes it the last line
of deduplication (a redelivered result is ignored) and lets it resubmit what a restarted
redis-server lost. While Redis is unreachable the call goes on: participants are told that
translation is paused, new jobs wait in the record, and all of it resumes on reconnection.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import redis.asyncio as aioredis

from pipeline.audio import Audio
from pipeline.bus import (
    Bus,
    CaptionHandler,
    Job,
    JobResult,
    ResultHandler,
    failed_result,
    unfinished,
)
from pipeline.capabilities import WorkerDirectory
from pipeline.cascade import CascadeResult, Translation
from pipeline.events import CaptionFinal, TranslationStatus, UtteranceFailed
from pipeline.live import PARTIAL_WAIT_S, PARTIALS, PartialReading, PartialRequest
from pipeline.metrics import BUS_CONNECTED, BUS_HOP_SECONDS, BUS_JOBS, BUS_PENDING
from pipeline.streams import (
    LINK_ERRORS,
    Backoff,
    asr_stream,
    connect,
    entries,
    partial_stream,
    readings_stream,
    results_stream,
    server_run_id,
    text,
)
from pipeline.tasks import cancel_and_wait
from pipeline.wire import (
    JobHeader,
    PartialHeader,
    ResultHeader,
    WireError,
    job_fields,
    partial_fields,
    read_reading,
    read_result,
)

LOG = logging.getLogger(__name__)
# Live-caption requests kept per language: a worker that frees up reads the newest few, and an
# older reading of a segment that has grown since is worth nothing.
PARTIAL_BACKLOG = 4
StatusHandler = Callable[[TranslationStatus], None]


@dataclass
class _Pending:
    """A submitted job until every target has its terminal event."""

    job_id: str
    job: Job
    deadline: float
    submitted_at: float
    remaining: set[str]
    captions: dict[str, CaptionFinal] = field(default_factory=dict)
    dispatched_to: str | None = None  # run id of the redis-server that holds it

    def only(self, *targets: str) -> Job:
        return replace(self.job, targets=targets)


@dataclass
class RedisBus(Bus):
    """Jobs out to ASR streams by source language; results back on this gateway's stream."""

    url: str
    gateway_id: str
    on_result: ResultHandler
    on_caption: CaptionHandler | None = None
    on_status: StatusHandler | None = None
    queue_size: int = 64
    job_timeout_s: float = 30.0
    heartbeat_s: float = 1.0
    stream_maxlen: int = 1000
    workers: WorkerDirectory = field(init=False)
    _pending: dict[str, _Pending] = field(default_factory=dict)
    _client: aioredis.Redis | None = None
    _up: asyncio.Event = field(default_factory=asyncio.Event)
    _run_id: str = ""
    _last_result_id: str = "$"
    _readings: dict[str, asyncio.Future[PartialReading]] = field(default_factory=dict)
    _last_reading_id: str = "0-0"  # old readings are read once and ignored: nobody waits
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _reconnecting: asyncio.Task[None] | None = None
    _closing: bool = False

    def __post_init__(self) -> None:
        self.workers = WorkerDirectory(grace_s=3 * self.heartbeat_s)

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def connected(self) -> bool:
        return self._up.is_set()

    @property
    def client(self) -> aioredis.Redis:
        assert self._client is not None, "start() the bus first"
        return self._client

    async def start(self) -> None:
        self._client = connect(self.url, f"gateway-{self.gateway_id}")
        try:
            await self._connected()
        except LINK_ERRORS as exc:
            LOG.warning("Redis unreachable at start (%s); translation paused until it is", exc)
            self._link_lost(str(exc))
        self._tasks = [
            asyncio.create_task(self._read_results(), name="bus-results"),
            asyncio.create_task(self._maintain(), name="bus-maintenance"),
            asyncio.create_task(self._read_readings(), name="bus-readings"),
        ]

    async def _connected(self) -> None:
        """(Re)connected: learn whether the server restarted, read the workers, resume."""
        run_id = await server_run_id(self.client)
        if self._run_id and run_id != self._run_id:
            LOG.warning("redis-server restarted: resubmitting %d pending job(s)", self.pending)
            self._last_result_id = "0-0"  # a new server's result stream starts afresh
            self._last_reading_id = "0-0"
        self._run_id = run_id
        if self._last_result_id == "$":
            self._last_result_id = await self._stream_tail()
        self.workers.extend_grace()
        await self.workers.refresh(self.client)
        was_paused = not self._up.is_set() and self._reconnecting is not None
        self._up.set()
        BUS_CONNECTED.set(1)
        await self._dispatch_undelivered()
        if was_paused:
            self._status(TranslationStatus(paused=False, reason="pipeline reachable again"))

    async def _stream_tail(self) -> str:
        """Start reading after what is already in our result stream (from a previous run)."""
        last = await self.client.xrevrange(results_stream(self.gateway_id), count=1)
        return text(last[0][0]) if last else "0-0"

    def _link_lost(self, reason: str) -> None:
        if self._closing or (self._reconnecting is not None and not self._reconnecting.done()):
            return
        self._up.clear()
        BUS_CONNECTED.set(0)
        self._status(TranslationStatus(paused=True, reason="pipeline unreachable; reconnecting"))
        LOG.warning("lost Redis (%s); reconnecting", reason)
        self._reconnecting = asyncio.create_task(self._reconnect(), name="bus-reconnect")

    async def _reconnect(self) -> None:
        backoff = Backoff()
        while not self._closing:
            await backoff.wait()
            try:
                # Every pooled connection died with the link: start afresh, not one failure each.
                await self.client.connection_pool.disconnect()
                await self.client.ping()
                await self._connected()
                return
            except LINK_ERRORS:
                continue

    def _status(self, event: TranslationStatus) -> None:
        if self.on_status is not None:
            self.on_status(event)

    async def submit(self, job: Job) -> None:
        if len(self._pending) >= self.queue_size:
            BUS_JOBS.labels("overflow").inc()
            await self.on_result(
                failed_result(job, "overloaded", "pipeline overloaded: job queue full")
            )
            return
        unserved = self.workers.unserved(job.utterance.language, job.targets)
        if unserved:
            await self._fail_unserved(job, unserved)
        targets = tuple(t for t in job.targets if t not in unserved)
        if not targets:
            return
        now = time.monotonic()
        pending = _Pending(
            job_id=uuid.uuid4().hex,
            job=replace(job, targets=targets),
            deadline=now + self.job_timeout_s,
            submitted_at=now,
            remaining=set(targets),
        )
        self._pending[pending.job_id] = pending
        BUS_PENDING.set(len(self._pending))
        if self._up.is_set():
            await self._dispatch(pending)

    async def read_partial(self, request: PartialRequest) -> PartialReading | None:
        """A live caption from an idle worker of the language: sent once, never acknowledged
        or retried (a lost request or worker costs one reading); None when no worker answers
        within PARTIAL_WAIT_S (all busy with final work, gone, or Redis unreachable)."""
        if not self._up.is_set() or not self.workers.hear(request.language):
            PARTIALS.labels("skipped").inc()
            return None
        header = PartialHeader.of(uuid.uuid4().hex, self.gateway_id, request)
        answer: asyncio.Future[PartialReading] = asyncio.get_running_loop().create_future()
        self._readings[header.request_id] = answer
        try:
            await self.client.xadd(
                partial_stream(request.language),
                partial_fields(header, request.samples),
                maxlen=PARTIAL_BACKLOG,
                approximate=False,
            )
            return await asyncio.wait_for(answer, PARTIAL_WAIT_S)
        except TimeoutError:
            PARTIALS.labels("unanswered").inc()
            return None
        except LINK_ERRORS as exc:
            self._link_lost(str(exc))
            return None
        finally:
            self._readings.pop(header.request_id, None)

    async def _read_readings(self) -> None:
        stream = readings_stream(self.gateway_id)
        while not self._closing:
            await self._up.wait()
            if self._closing:
                return
            try:
                reply = await self.client.xread(
                    {stream: self._last_reading_id}, count=64, block=500
                )
            except LINK_ERRORS as exc:
                self._link_lost(str(exc))
                continue
            for _stream, entry_id, fields in entries(reply):
                self._last_reading_id = entry_id
                self._on_reading(fields)

    def _on_reading(self, fields: dict[bytes, bytes]) -> None:
        try:
            header = read_reading(fields)
        except WireError as exc:
            LOG.error("ignoring a malformed reading: %s", exc)
            return
        answer = self._readings.get(header.request_id)
        if answer is not None and not answer.done():  # else it came too late: nobody waits
            answer.set_result(header.reading())

    async def _fail_unserved(self, job: Job, unserved: dict[str, str]) -> None:
        for target, reason in unserved.items():
            BUS_JOBS.labels("unserved").inc()
            await self.on_result(failed_result(replace(job, targets=(target,)), "unserved", reason))

    async def _dispatch(self, pending: _Pending) -> None:
        header = JobHeader.of(
            pending.job_id, self.gateway_id, pending.only(*sorted(pending.remaining))
        )
        fields = job_fields(header, pending.job.utterance.segment.samples)
        try:
            await self.client.xadd(
                asr_stream(header.language), fields, maxlen=self.stream_maxlen, approximate=True
            )
            pending.dispatched_to = self._run_id
        except LINK_ERRORS as exc:
            self._link_lost(str(exc))

    async def _dispatch_undelivered(self) -> None:
        for pending in list(self._pending.values()):
            if pending.dispatched_to != self._run_id and self._up.is_set():
                await self._dispatch(pending)

    async def _read_results(self) -> None:
        stream = results_stream(self.gateway_id)
        while not self._closing:
            await self._up.wait()
            if self._closing:
                return
            try:
                reply = await self.client.xread({stream: self._last_result_id}, count=64, block=500)
            except LINK_ERRORS as exc:
                self._link_lost(str(exc))
                continue
            for _stream, entry_id, fields in entries(reply):
                self._last_result_id = entry_id
                await self._on_entry(fields)

    async def _on_entry(self, fields: dict[bytes, bytes]) -> None:
        try:
            header, speech = read_result(fields)
        except WireError as exc:
            LOG.error("ignoring a malformed result: %s", exc)
            return
        pending = self._pending.get(header.job_id)
        if pending is None or (header.target and header.target not in pending.remaining):
            BUS_JOBS.labels("duplicate_result").inc()
            return  # already final (a redelivered job's second result), or not ours
        try:
            await self._apply(pending, header, speech)
        except Exception:  # a broken handler must not stop result delivery
            LOG.exception("result handler failed for %s", pending.job.utterance.utterance_id)

    async def _apply(self, pending: _Pending, header: ResultHeader, speech: Audio | None) -> None:
        event = header.event
        if header.kind == "caption" and isinstance(event, CaptionFinal):
            if header.target not in pending.captions:
                pending.captions[header.target] = event
                if self.on_caption is not None:
                    self.on_caption(pending.only(header.target), event)
            return
        if header.kind == "dropped":
            result = CascadeResult(pending.job.utterance, asr_s=header.asr_s)
            result.dropped = event  # type: ignore[assignment]
            targets = tuple(sorted(pending.remaining))
            self._finish(pending)
            await self.on_result(JobResult(pending.only(*targets), result))
            return
        if isinstance(event, CaptionFinal | UtteranceFailed):
            await self._final(
                pending,
                header.target,
                Translation(
                    event,
                    speech,
                    delivered=header.target in pending.captions,
                    mt_s=header.mt_s,
                    tts_s=header.tts_s,
                ),
                header.asr_s,
            )

    async def _final(
        self, pending: _Pending, target: str, translation: Translation, asr_s: float = 0.0
    ) -> None:
        pending.remaining.discard(target)
        BUS_HOP_SECONDS.observe(time.monotonic() - pending.submitted_at)
        if not pending.remaining:
            self._finish(pending)
        result = CascadeResult(pending.job.utterance, asr_s=asr_s)
        result.translations[target] = translation
        await self.on_result(JobResult(pending.only(target), result))

    def _finish(self, pending: _Pending) -> None:
        self._pending.pop(pending.job_id, None)
        BUS_PENDING.set(len(self._pending))

    async def _maintain(self) -> None:
        """Each heartbeat: detect a restarted server, refresh the workers, expire late jobs."""
        while not self._closing:
            await asyncio.sleep(self.heartbeat_s)
            await self._expire(time.monotonic())
            if not self._up.is_set():
                continue
            try:
                if await server_run_id(self.client) != self._run_id:
                    await self._connected()
                else:
                    await self.workers.refresh(self.client)
            except LINK_ERRORS as exc:
                self._link_lost(str(exc))

    async def _expire(self, now: float) -> None:
        """Every target without a result by its deadline ends, so no listener waits forever."""
        for pending in [p for p in self._pending.values() if p.deadline <= now]:
            BUS_JOBS.labels("expired").inc()
            reason = f"no result within {self.job_timeout_s:g} s (workers busy or gone)"
            for target in sorted(pending.remaining):
                caption = pending.captions.get(target)
                await self._final(
                    pending, target, unfinished(pending.job, target, "stuck", reason, caption)
                )

    async def stop(self, timeout_s: float | None = None) -> None:
        """Wait (up to `timeout_s`, else the job timeout) for pending results, fail what is
        left, disconnect."""
        deadline = time.monotonic() + (self.job_timeout_s if timeout_s is None else timeout_s)
        while self._pending and time.monotonic() < deadline and self._up.is_set():
            await asyncio.sleep(0.05)
        for pending in self._pending.values():
            pending.deadline = 0.0
        await self._expire(time.monotonic())
        # redis-py may swallow a cancellation during a blocking read, so the reader is stopped
        # by a flag (its reads block at most 0.5 s) rather than by cancel() alone.
        self._closing = True
        self._up.set()
        tasks = [*self._tasks, *([self._reconnecting] if self._reconnecting else [])]
        _done, late = await asyncio.wait(tasks, timeout=2.0) if tasks else (set(), set())
        for task in late:
            await cancel_and_wait(task)
        self._tasks = []
        if self._client is not None:
            await self._client.aclose()
