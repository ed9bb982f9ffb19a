"""A pipeline worker on the Redis Streams bus: takes ASR and translate jobs it can serve.

At-least-once with idempotent effects: a job's outputs, its deduplication mark and its XACK are
written in one MULTI/EXEC, so a job is either wholly done or still pending; a job whose worker
died or stalled is reclaimed with XAUTOCLAIM; a redelivered job that was already done is only
acknowledged. While a job runs, the worker re-claims it to itself so a long job on a live worker
is not taken away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from redis.exceptions import ResponseError
from redis.typing import EncodableT

from pipeline.audio import Samples
from pipeline.capabilities import STAGES, WorkerInfo, advertisement, stamped
from pipeline.cascade import Cascade, CascadeResult, Translation
from pipeline.events import CaptionFinal, UtteranceFailed
from pipeline.live import PARTIAL_WAIT_S, PARTIALS
from pipeline.metrics import BUS_JOBS
from pipeline.models import Models
from pipeline.settings import Settings
from pipeline.streams import (
    DEDUP_TTL_S,
    GROUP,
    LINK_ERRORS,
    Backoff,
    Entry,
    Fields,
    asr_stream,
    connect,
    done_key,
    ensure_groups,
    entries,
    partial_stream,
    readings_stream,
    results_stream,
    text,
    translate_stream,
    worker_key,
)
from pipeline.tasks import cancel_and_wait
from pipeline.wire import (
    JobHeader,
    ReadingHeader,
    ResultHeader,
    TextJob,
    WireError,
    read_job,
    read_partial,
    read_text_job,
    reading_fields,
    result_fields,
    text_job_fields,
)

LOG = logging.getLogger(__name__)
T = TypeVar("T")
READINGS_MAXLEN = 256

# KEYS: dedup mark, the job's stream, one stream per output.
# ARGV: group, entry id, mark TTL, MAXLEN, then per output: field count, name, value, ...
COMPLETE_JOB = """
local fresh = redis.call('SET', KEYS[1], 1, 'NX', 'EX', ARGV[3])
if fresh then
  local at = 5
  for i = 3, #KEYS do
    local count = tonumber(ARGV[at])
    at = at + 1
    local command = {'XADD', KEYS[i], 'MAXLEN', '~', ARGV[4], '*'}
    for j = 1, count * 2 do
      command[#command + 1] = ARGV[at]
      at = at + 1
    end
    redis.call(unpack(command))
  end
end
redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
return fresh and 1 or 0
"""


@dataclass(frozen=True)
class Output:
    stream: str
    fields: Fields


def describe(
    models: Models,
    settings: Settings,
    stages: tuple[str, ...],
    languages: frozenset[str] | None,
    device: str,
    worker_id: str,
) -> WorkerInfo:
    """What a worker with these models can serve: ASR languages, and pairs with a voice."""

    def allowed(code: str) -> bool:
        return languages is None or code in languages

    asr_languages: list[str] = []
    if "asr" in stages:
        asr_languages = [c for c in models.recognizer.languages() if allowed(c)]
    pairs: list[tuple[str, str]] = []
    if "translate" in stages:
        voiced = set(models.voices.languages)
        pairs = [
            (s, t)
            for s, t in models.translator.planner.available_pairs()
            if t in voiced and allowed(s) and allowed(t)
        ]
    described = {"asr": settings.asr_model, "mt": ",".join(settings.mt_backends)}
    return advertisement(worker_id, stages, asr_languages, pairs, described, device)


@dataclass(frozen=True)
class _Taken:
    """A job read from a stream: where it came from, what it is, how often it was delivered."""

    stream: str
    entry_id: str
    payload: tuple[JobHeader, Samples] | TextJob
    deliveries: int

    @property
    def header(self) -> JobHeader:
        assert isinstance(self.payload, tuple)
        return self.payload[0]

    @property
    def samples(self) -> Samples:
        assert isinstance(self.payload, tuple)
        return self.payload[1]

    @property
    def text_job(self) -> TextJob:
        assert isinstance(self.payload, TextJob)
        return self.payload


class Worker:
    """Serves the stages and languages it was given, with the models of this process."""

    def __init__(self, settings: Settings, cascade: Cascade, info: WorkerInfo) -> None:
        if settings.redis_url is None:
            raise ValueError("a worker needs DRAGOMAN_REDIS_URL (or --redis-url)")
        self.settings = settings
        self.worker_id = info.worker_id
        self.info = info
        self._cascade = cascade
        self._client = connect(settings.redis_url, self.worker_id)
        self._complete_script = self._client.register_script(COMPLETE_JOB)
        self._executor = ThreadPoolExecutor(
            max_workers=len(info.stages), thread_name_prefix="worker-stage"
        )
        self._live_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="worker-live")
        self._jobs_in_hand = 0  # final work running: live captions are skipped meanwhile
        self.jobs_done = 0

    @classmethod
    def for_models(
        cls,
        settings: Settings,
        models: Models,
        stages: tuple[str, ...] = STAGES,
        languages: frozenset[str] | None = None,
        device: str = "cpu",
        worker_id: str | None = None,
    ) -> Worker:
        """A worker with this process's models, serving `stages` in `languages` (None: all)."""
        info = describe(
            models,
            settings,
            stages,
            languages,
            device,
            worker_id or f"worker-{uuid.uuid4().hex[:8]}",
        )
        cascade = Cascade(
            models.recognizer, models.translator, models.voices, settings.asr_min_speech_ratio
        )
        return cls(settings, cascade, info)

    @property
    def streams(self) -> dict[str, list[str]]:
        """The streams of each stage this worker reads."""
        pairs = [pair.split("-") for pair in self.info.pairs]
        return {
            "asr": [asr_stream(code) for code in self.info.asr_languages],
            "translate": [translate_stream(s, t) for s, t in pairs],
        }

    async def run(self, stop: asyncio.Event) -> None:
        """Work until `stop` is set; then finish the jobs in hand and leave."""
        loops = [
            asyncio.create_task(self._stage_loop(stage, streams, stop), name=f"{stage}-loop")
            for stage, streams in self.streams.items()
            if streams
        ]
        if self.info.asr_languages:
            loops.append(asyncio.create_task(self._live_loop(stop), name="live-loop"))
        heartbeat = asyncio.create_task(self._heartbeat(stop), name="worker-heartbeat")
        try:
            await asyncio.gather(*loops)
        finally:
            await cancel_and_wait(heartbeat)
            for loop in loops:
                with contextlib.suppress(Exception):  # the loop's own failure is already out
                    await cancel_and_wait(loop)
            with contextlib.suppress(*LINK_ERRORS):
                await self._client.delete(worker_key(self.worker_id))
            await self._client.aclose()
            self._executor.shutdown(wait=True)
            self._live_executor.shutdown(wait=True)

    async def _heartbeat(self, stop: asyncio.Event) -> None:
        ttl_ms = int(self.settings.bus_heartbeat_s * 3000)
        while not stop.is_set():
            with contextlib.suppress(*LINK_ERRORS):
                await self._client.set(worker_key(self.worker_id), stamped(self.info), px=ttl_ms)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.bus_heartbeat_s)

    async def _stage_loop(self, stage: str, streams: list[str], stop: asyncio.Event) -> None:
        reclaim_every = max(0.2, self.settings.bus_claim_idle_s / 2)
        next_reclaim = 0.0
        loop = asyncio.get_running_loop()

        async def serve() -> None:
            nonlocal next_reclaim
            # Jobs this worker took but did not finish (a lost link, or a restart with the
            # same --worker-id) come first, without waiting for another worker to reclaim.
            own_pending = True
            while not stop.is_set():
                batch: list[Entry] = []
                if own_pending:
                    batch = await self._read(streams, own_pending=True)
                    own_pending = bool(batch)
                if not batch and loop.time() >= next_reclaim:
                    batch = await self._reclaim(streams)
                    next_reclaim = loop.time() + reclaim_every
                reclaimed = bool(batch)
                if not batch:
                    batch = await self._read(streams)
                if batch:
                    await self._handle(stage, batch, reclaimed)

        await self._resilient(stage, streams, serve, stop)

    async def _live_loop(self, stop: asyncio.Event) -> None:
        """Live-caption requests of this worker's languages, read without acknowledgement (a
        restart loses only them), one at a time, and skipped while final work is in hand."""
        streams = [partial_stream(code) for code in self.info.asr_languages]

        async def serve() -> None:
            while not stop.is_set():
                reply = await self._client.xreadgroup(
                    GROUP,
                    self.worker_id,
                    dict.fromkeys(streams, ">"),
                    count=1,
                    block=500,
                    noack=True,
                )
                for _stream, _entry_id, fields in entries(reply):
                    await self._serve_partial(fields)

        await self._resilient("live", streams, serve, stop)

    async def _resilient(
        self,
        label: str,
        streams: list[str],
        serve: Callable[[], Awaitable[None]],
        stop: asyncio.Event,
    ) -> None:
        """`serve` the streams until `stop`, through lost links and a restarted Redis."""
        backoff = Backoff()
        while not stop.is_set():
            try:
                await ensure_groups(self._client, streams)
                backoff.reset()
                await serve()
            except LINK_ERRORS as exc:
                LOG.warning("%s: Redis unreachable (%s); retrying", self.worker_id, exc)
                with contextlib.suppress(*LINK_ERRORS):
                    # Every pooled connection died with the link: start afresh.
                    await self._client.connection_pool.disconnect()
                await backoff.wait()
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                LOG.warning("%s: consumer group gone (Redis restarted?); recreating", label)

    async def _serve_partial(self, fields: dict[bytes, bytes]) -> None:
        try:
            header, samples = read_partial(fields)
        except WireError as exc:
            LOG.error("dropping a malformed partial request: %s", exc)
            return
        if self._jobs_in_hand or time.time() - header.sent_at > PARTIAL_WAIT_S:
            PARTIALS.labels("skipped").inc()  # final work first; a stale one helps nobody
            return
        loop = asyncio.get_running_loop()
        request = header.request(samples)
        try:
            reading = await loop.run_in_executor(
                self._live_executor, self._cascade.read_partial, request
            )
        except Exception as exc:  # best effort: the final tells what failed
            PARTIALS.labels("failed").inc()
            LOG.debug("partial reading of %s failed: %s", header.utterance_id, exc)
            return
        PARTIALS.labels("done").inc()
        await self._client.xadd(
            readings_stream(header.gateway),
            reading_fields(ReadingHeader.of(header.request_id, reading)),
            maxlen=READINGS_MAXLEN,
            approximate=True,
        )

    async def _read(self, streams: list[str], own_pending: bool = False) -> list[Entry]:
        """New jobs (blocking up to 0.5 s), or with `own_pending` the ones taken but unfinished."""
        reply = await self._client.xreadgroup(
            GROUP,
            self.worker_id,
            dict.fromkeys(streams, "0" if own_pending else ">"),
            count=self.settings.worker_batch,
            block=None if own_pending else 500,
        )
        return entries(reply)

    async def _reclaim(self, streams: list[str]) -> list[Entry]:
        """Jobs idle for bus_claim_idle_s on another (dead or stalled) worker."""
        idle_ms = int(self.settings.bus_claim_idle_s * 1000)
        claimed: list[Entry] = []
        for stream in streams:
            reply = await self._client.xautoclaim(
                stream, GROUP, self.worker_id, idle_ms, "0-0", count=self.settings.worker_batch
            )
            for entry_id, fields in reply[1]:
                if fields is not None:
                    claimed.append((stream, text(entry_id), fields))
        if claimed:
            LOG.info("%s reclaimed %d job(s)", self.worker_id, len(claimed))
            BUS_JOBS.labels("reclaimed").inc(len(claimed))
        return claimed

    async def _handle(self, stage: str, batch: list[Entry], reclaimed: bool) -> None:
        jobs: list[_Taken] = []
        for stream, entry_id, fields in batch:
            try:
                deliveries = await self._deliveries(stream, entry_id) if reclaimed else 1
                parse = read_job if stage == "asr" else read_text_job
                jobs.append(_Taken(stream, entry_id, parse(fields), deliveries))
            except WireError as exc:
                LOG.error("dropping malformed entry %s on %s: %s", entry_id, stream, exc)
                BUS_JOBS.labels("malformed").inc()
                await self._client.xack(stream, GROUP, entry_id)
        if not jobs:
            return
        self._jobs_in_hand += 1
        try:
            async with self._holding(jobs):
                if stage == "asr":
                    await self._recognize(jobs)
                else:
                    for job in jobs:
                        await self._translate(job)
            self.jobs_done += len(jobs)
        except LINK_ERRORS:
            raise
        except Exception:  # left pending: reclaimed, and failed once delivered too often
            LOG.exception("%s failed on %d job(s) of %s", self.worker_id, len(jobs), stage)
        finally:
            self._jobs_in_hand -= 1

    async def _deliveries(self, stream: str, entry_id: str) -> int:
        pending = await self._client.xpending_range(stream, GROUP, entry_id, entry_id, 1)
        return int(pending[0]["times_delivered"]) if pending else 1

    @contextlib.asynccontextmanager
    async def _holding(self, jobs: list[_Taken]) -> AsyncIterator[None]:
        """Keep the jobs' idle time low while they run, so no other worker reclaims them."""

        async def keep() -> None:
            while True:
                await asyncio.sleep(self.settings.bus_claim_idle_s / 3)
                for job in jobs:
                    with contextlib.suppress(*LINK_ERRORS):
                        await self._client.xclaim(
                            job.stream, GROUP, self.worker_id, 0, [job.entry_id], justid=True
                        )

        task = asyncio.create_task(keep(), name="hold-jobs")
        try:
            yield
        finally:
            await cancel_and_wait(task)

    async def _in_thread(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, work)

    async def _recognize(self, jobs: list[_Taken]) -> None:
        """ASR for a batch (one model call where the recognizer batches), then each completes."""
        limit = self.settings.bus_max_deliveries
        live = [job for job in jobs if job.deliveries <= limit]
        work = [(job.header.utterance(job.samples), job.header.targets) for job in live]
        results = await self._in_thread(lambda: self._cascade.recognize_many(work)) if work else []
        outcome = {id(job): result for job, result in zip(live, results, strict=True)}
        for job in jobs:
            header = job.header
            result = outcome.get(id(job))
            outputs = (
                self._given_up(header, header.targets, job.deliveries)
                if result is None
                else self._after_recognition(header, result)
            )
            dedup = done_key(header.job_id, "asr", header.language)
            await self._complete(job.stream, job.entry_id, dedup, outputs)

    def _after_recognition(self, header: JobHeader, result: CascadeResult) -> list[Output]:
        reply_to = results_stream(header.gateway)
        if result.dropped is not None:
            dropped = ResultHeader(
                kind="dropped", job_id=header.job_id, event=result.dropped, asr_s=result.asr_s
            )
            return [Output(reply_to, result_fields(dropped))]
        if result.translations:  # ASR failed: a failure for every target
            return [
                Output(reply_to, self._final(header.job_id, target, t, result.asr_s))
                for target, t in result.translations.items()
            ]
        assert result.transcript is not None
        said = result.utterance.said
        outputs: list[Output] = []
        for target in header.targets:
            if target == header.language:  # the original's caption needs no translate worker
                original = self._cascade.translate(said, result.transcript.text, target)
                outputs.append(Output(reply_to, self._final(header.job_id, target, original)))
                continue
            job = TextJob(
                job=header,
                said=said,
                text=result.transcript.text,
                target=target,
                asr_s=result.asr_s,
            )
            outputs.append(Output(translate_stream(header.language, target), text_job_fields(job)))
        return outputs

    async def _translate(self, taken: _Taken) -> None:
        job = taken.text_job
        header, target = job.job, job.target
        stream, entry_id = taken.stream, taken.entry_id
        dedup = done_key(header.job_id, "translate", target)
        if taken.deliveries > self.settings.bus_max_deliveries:
            outputs = self._given_up(header, (target,), taken.deliveries)
            await self._complete(stream, entry_id, dedup, outputs)
            return
        said = job.said
        translation = await self._in_thread(lambda: self._cascade.translate(said, job.text, target))
        reply_to = results_stream(header.gateway)
        if isinstance(translation.event, CaptionFinal):
            early = ResultHeader(
                kind="caption", job_id=header.job_id, target=target, event=translation.event
            )
            await self._client.xadd(
                reply_to,
                result_fields(early),
                maxlen=self.settings.bus_stream_maxlen,
                approximate=True,
            )
            voice = header.voices.get(target)
            await self._in_thread(lambda: self._cascade.dub(said, translation, voice))
        final = self._final(header.job_id, target, translation, job.asr_s)
        await self._complete(stream, entry_id, dedup, [Output(reply_to, final)])

    @staticmethod
    def _final(job_id: str, target: str, translation: Translation, asr_s: float = 0.0) -> Fields:
        speech = translation.speech
        header = ResultHeader(
            kind="final",
            job_id=job_id,
            target=target,
            event=translation.event,
            asr_s=asr_s,
            mt_s=translation.mt_s,
            tts_s=translation.tts_s,
            speech_rate=speech.sample_rate if speech is not None else 0,
        )
        return result_fields(header, speech)

    def _given_up(
        self, header: JobHeader, targets: tuple[str, ...], deliveries: int
    ) -> list[Output]:
        """A job that was delivered too often (it kills or stalls workers) fails explicitly."""
        LOG.error("job %s delivered %d times; failing it", header.job_id, deliveries)
        BUS_JOBS.labels("poison").inc()
        reply_to = results_stream(header.gateway)
        outputs = []
        for target in targets:
            event = UtteranceFailed(
                utterance_id=header.utterance_id,
                target_language=target,
                stage="bus",
                reason=f"the job failed on {deliveries - 1} workers; given up",
                cause="poison",
            )
            outputs.append(Output(reply_to, self._final(header.job_id, target, Translation(event))))
        return outputs

    async def _complete(
        self, stream: str, entry_id: str, dedup: str, outputs: list[Output]
    ) -> None:
        """Outputs, dedup mark and XACK in one atomic script; a job already done is only acked."""
        args: list[EncodableT] = [GROUP, entry_id, DEDUP_TTL_S, self.settings.bus_stream_maxlen]
        for output in outputs:
            args.append(len(output.fields))
            for name, value in output.fields.items():
                args += [name, value]
        keys = [dedup, stream, *(output.stream for output in outputs)]
        fresh = await self._complete_script(keys=keys, args=args)
        BUS_JOBS.labels("done" if fresh else "duplicate").inc()
