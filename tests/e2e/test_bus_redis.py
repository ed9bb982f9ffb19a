"""The Redis Streams bus against a real redis-server: delivery, deduplication, capabilities,
deadlines, reconnection. The stages do trivial work here; test_scaleout.py runs real models."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace

import numpy as np
import pytest

from pipeline.bus import Job, JobResult
from pipeline.capabilities import STAGES, WorkerInfo, advertisement, stamped
from pipeline.cascade import Utterance
from pipeline.events import CaptionFinal, TranslationStatus, UtteranceFailed
from pipeline.live import PartialRequest
from pipeline.redis_bus import RedisBus
from pipeline.segmenter import Segment
from pipeline.settings import Settings
from pipeline.streams import GROUP, asr_stream, worker_key
from pipeline.wire import (
    JobHeader,
    WireError,
    decode_pcm,
    encode_pcm,
    job_fields,
    read_job,
    read_result,
)
from pipeline.worker import Worker
from testkit.fakes import FakeRecognizer, Script, fake_cascade
from testkit.redis_server import LocalRedis

pytestmark = pytest.mark.redis


def job(index: int, targets: tuple[str, ...] = ("pt",), speech_ratio: float = 1.0) -> Job:
    samples = np.full(8000, 0.1, dtype=np.float32)
    segment = Segment(index=index, start_s=float(index), samples=samples, speech_ratio=speech_ratio)
    return Job("room", Utterance(f"room/ana/{index}", "ana", index, "en", segment), targets)


@dataclass
class Inbox:
    """What the gateway side received, per (utterance, target)."""

    results: list[JobResult] = field(default_factory=list)
    captions: list[tuple[str, str]] = field(default_factory=list)
    statuses: list[TranslationStatus] = field(default_factory=list)

    async def on_result(self, result: JobResult) -> None:
        self.results.append(result)

    def on_caption(self, job: Job, caption: CaptionFinal) -> None:
        self.captions.append((caption.utterance_id, caption.target_language))

    def finals(self) -> list[tuple[str, str]]:
        keys = []
        for done in self.results:
            for target in done.job.targets:
                keys.append((done.job.utterance.utterance_id, target))
        return keys

    def events(self, target: str) -> list[CaptionFinal | UtteranceFailed]:
        return [
            r.result.translations[target].event
            for r in self.results
            if target in r.result.translations
        ]

    async def until(self, count: int, timeout_s: float = 10.0) -> None:
        async with asyncio.timeout(timeout_s):
            while len(self.finals()) < count:
                await asyncio.sleep(0.02)


def en_pt_worker(
    url: str, name: str = "w1", recognizer: FakeRecognizer | None = None, **overrides: float
) -> Worker:
    settings = Settings(redis_url=url, bus_heartbeat_s=0.2, **overrides)  # type: ignore[arg-type]
    info = advertisement(name, STAGES, ["en"], [("en", "pt")], {}, "cpu")
    return Worker(settings, fake_cascade(recognizer=recognizer), info)


@contextlib.asynccontextmanager
async def running(*workers: Worker) -> AsyncIterator[None]:
    stop = asyncio.Event()
    tasks = [asyncio.create_task(w.run(stop)) for w in workers]
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks)


@contextlib.asynccontextmanager
async def gateway_bus(url: str, inbox: Inbox, **options: float) -> AsyncIterator[RedisBus]:
    bus = RedisBus(
        url,
        "gw-test",
        inbox.on_result,
        on_caption=inbox.on_caption,
        on_status=inbox.statuses.append,
        heartbeat_s=0.2,
        **options,  # type: ignore[arg-type]
    )
    await bus.start()
    try:
        yield bus
    finally:
        await bus.stop()


async def advertise(bus: RedisBus, info: WorkerInfo, ttl_ms: int = 5000) -> None:
    """A worker's advertisement as its heartbeat writes it, read by the gateway at once."""
    await bus.client.set(worker_key(info.worker_id), stamped(info), px=ttl_ms)
    await bus.workers.refresh(bus.client)


async def until_workers(bus: RedisBus, count: int) -> None:
    async with asyncio.timeout(5):
        while len(bus.workers.workers) < count:
            await bus.workers.refresh(bus.client)
            await asyncio.sleep(0.05)


async def test_each_target_gets_one_final_and_its_caption_first(redis_url: str) -> None:
    inbox = Inbox()
    async with running(en_pt_worker(redis_url)), gateway_bus(redis_url, inbox) as bus:
        await until_workers(bus, 1)
        for index in range(5):
            await bus.submit(job(index, ("en", "pt")))
        await inbox.until(10)
        await asyncio.sleep(0.3)  # nothing more arrives
    assert sorted(inbox.finals()) == sorted(
        (f"room/ana/{i}", t) for i in range(5) for t in ("en", "pt")
    )
    assert sorted(inbox.captions) == sorted((f"room/ana/{i}", "pt") for i in range(5))
    assert all(isinstance(e, CaptionFinal) and e.target_text == "hello" for e in inbox.events("pt"))
    original = inbox.events("en")
    assert all(isinstance(e, CaptionFinal) and e.route == "original" for e in original)
    speech = [r.result.translations["pt"].speech for r in inbox.results if "pt" in r.job.targets]
    assert all(s is not None and s.sample_rate == 48000 for s in speech)
    assert bus.pending == 0


async def test_a_worker_takes_jobs_in_batches_and_finishes_each_once(redis_url: str) -> None:
    inbox = Inbox()
    batching = en_pt_worker(redis_url, worker_batch=4)
    async with gateway_bus(redis_url, inbox) as bus:
        await advertise(bus, batching.info)
        for index in range(6):  # queued before the worker reads: it takes 4, then 2
            await bus.submit(job(index))
        async with running(batching):
            await inbox.until(6)
    assert sorted(inbox.finals()) == [(f"room/ana/{i}", "pt") for i in range(6)]


async def test_a_segment_without_speech_is_dropped_once_for_all_targets(redis_url: str) -> None:
    inbox = Inbox()
    async with running(en_pt_worker(redis_url)), gateway_bus(redis_url, inbox) as bus:
        await until_workers(bus, 1)
        await bus.submit(job(0, ("en", "pt"), speech_ratio=0.0))
        await inbox.until(2)
    assert len(inbox.results) == 1
    assert inbox.results[0].result.dropped is not None
    assert set(inbox.results[0].job.targets) == {"en", "pt"}


async def test_a_redelivered_job_yields_no_second_final(redis_url: str) -> None:
    """Two workers complete the same entry (as after a stall): the second only acknowledges."""
    inbox = Inbox()
    first, second = en_pt_worker(redis_url, "w1"), en_pt_worker(redis_url, "w2")
    async with gateway_bus(redis_url, inbox, job_timeout_s=1.0) as bus:
        client = bus.client
        await advertise(bus, first.info)
        await bus.submit(job(0))
        stream = asr_stream("en")
        await first._client.xgroup_create(stream, GROUP, id="0", mkstream=True)
        read = await first._read([stream])
        assert len(read) == 1
        await first._handle("asr", read, reclaimed=False)
        # The same entry again, as a reclaiming worker would see it.
        await second._handle("asr", read, reclaimed=True)
        for worker in (first, second):
            await worker._client.aclose()
        assert await client.xlen("dragoman:translate:en:pt") == 1
        assert (await client.xpending(stream, GROUP))["pending"] == 0


async def test_a_stalled_job_is_reclaimed_by_another_worker(redis_url: str) -> None:
    inbox = Inbox()
    async with gateway_bus(redis_url, inbox) as bus:
        stalled = en_pt_worker(redis_url, "stalled")
        await advertise(bus, stalled.info)
        await bus.submit(job(0))
        await stalled._client.xgroup_create(asr_stream("en"), GROUP, id="0", mkstream=True)
        assert len(await stalled._read([asr_stream("en")])) == 1  # taken, never finished
        await stalled._client.aclose()
        async with running(en_pt_worker(redis_url, "rescuer", bus_claim_idle_s=0.5)):
            await inbox.until(1)
    assert inbox.finals() == [("room/ana/0", "pt")]
    assert isinstance(inbox.events("pt")[0], CaptionFinal)


async def test_a_worker_restarted_under_its_name_finishes_its_own_jobs_first(
    redis_url: str,
) -> None:
    inbox = Inbox()
    async with gateway_bus(redis_url, inbox) as bus:
        before = en_pt_worker(redis_url, "steady")
        await advertise(bus, before.info)
        await bus.submit(job(0))
        await before._client.xgroup_create(asr_stream("en"), GROUP, id="0", mkstream=True)
        assert len(await before._read([asr_stream("en")])) == 1  # taken, then the process died
        await before._client.aclose()
        # Another worker would wait a minute to reclaim it; the same name takes it back at once.
        async with running(en_pt_worker(redis_url, "steady", bus_claim_idle_s=60)):
            await inbox.until(1, timeout_s=5)
    assert inbox.finals() == [("room/ana/0", "pt")]


async def test_no_worker_for_a_language_fails_with_a_clear_reason(redis_url: str) -> None:
    inbox = Inbox()
    worker = en_pt_worker(redis_url)
    assert not any("es" in stream for streams in worker.streams.values() for stream in streams)
    async with running(worker), gateway_bus(redis_url, inbox) as bus:
        await until_workers(bus, 1)
        await bus.submit(job(0, ("pt", "es")))
        await inbox.until(2)
        french = job(1).utterance
        await bus.submit(Job("room", replace(french, language="fr"), ("pt",)))
        await inbox.until(3)
    es = inbox.events("es")[0]
    assert isinstance(es, UtteranceFailed) and es.stage == "bus"
    assert es.reason == "no worker serves translation en→es"
    assert isinstance(inbox.events("pt")[0], CaptionFinal)
    failed = inbox.results[-1].result.translations["pt"].event
    assert isinstance(failed, UtteranceFailed)
    assert failed.reason == "no worker serves speech recognition in 'fr'"


async def test_a_job_nobody_takes_fails_at_its_deadline(redis_url: str) -> None:
    inbox = Inbox()
    async with gateway_bus(redis_url, inbox, job_timeout_s=0.5) as bus:
        ghost = advertisement("ghost", STAGES, ["en"], [("en", "pt")], {}, "cpu")
        await advertise(bus, ghost)
        await bus.submit(job(0))
        await inbox.until(1, timeout_s=3)
    failed = inbox.events("pt")[0]
    assert isinstance(failed, UtteranceFailed) and failed.stage == "bus"
    assert "no result within 0.5 s" in failed.reason


async def test_a_full_queue_fails_the_job_explicitly(redis_url: str) -> None:
    inbox = Inbox()
    async with gateway_bus(redis_url, inbox, queue_size=1, job_timeout_s=1.0) as bus:
        ghost = advertisement("ghost", STAGES, ["en"], [("en", "pt")], {}, "cpu")
        await advertise(bus, ghost)
        await bus.submit(job(0))
        await bus.submit(job(1))
        failed = inbox.events("pt")[0]
        assert isinstance(failed, UtteranceFailed) and "queue full" in failed.reason


async def test_redis_restart_pauses_then_resumes_without_loss_or_duplicates(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    inbox = Inbox()
    with LocalRedis(tmp_path_factory.mktemp("restart")) as server:
        async with running(en_pt_worker(server.url)), gateway_bus(server.url, inbox) as bus:
            await until_workers(bus, 1)
            await bus.submit(job(0))
            await inbox.until(1)
            server.stop()
            async with asyncio.timeout(5):
                while bus.connected:
                    await asyncio.sleep(0.05)
            await bus.submit(job(1))  # while Redis is down: held, not lost
            server.start()  # a new, empty server on the same port
            await inbox.until(2, timeout_s=15)
            await bus.submit(job(2))
            await inbox.until(3)
            await asyncio.sleep(0.5)
    assert sorted(inbox.finals()) == [(f"room/ana/{i}", "pt") for i in range(3)]
    assert all(isinstance(e, CaptionFinal) for e in inbox.events("pt")), inbox.events("pt")
    assert [s.paused for s in inbox.statuses] == [True, False]


async def test_a_gateway_started_without_redis_is_paused_until_it_comes(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    inbox = Inbox()
    server = LocalRedis(tmp_path_factory.mktemp("late"))
    async with gateway_bus(server.url, inbox) as bus:
        assert not bus.connected and inbox.statuses[0].paused
        server.start()
        try:
            async with asyncio.timeout(10):
                while not bus.connected:
                    await asyncio.sleep(0.05)
        finally:
            server.stop()
    assert [s.paused for s in inbox.statuses][:2] == [True, False]


def test_audio_travels_as_16_bit_pcm() -> None:
    samples = np.sin(np.linspace(0, 100, 16000)).astype(np.float32) * 0.5
    restored = decode_pcm(encode_pcm(samples))
    assert np.max(np.abs(restored - samples)) < 1e-4
    assert len(encode_pcm(samples)) == 32000
    nasty = np.array([np.nan, np.inf, -np.inf, 3.0], dtype=np.float32)
    assert np.all(np.abs(decode_pcm(encode_pcm(nasty))) <= 1.0)


def test_malformed_entries_are_rejected_whole() -> None:
    header = JobHeader.of("j1", "gw", job(0))
    good = job_fields(header, job(0).utterance.segment.samples)
    fields = {
        str(k).encode(): v if isinstance(v, bytes) else str(v).encode() for k, v in good.items()
    }
    assert read_job(fields)[0].job_id == "j1"
    broken = [
        {},
        {b"header": b"{}", b"pcm": b""},
        {b"header": b"not json", b"pcm": b""},
        {**fields, b"pcm": b"\x00"},
        {b"header": fields[b"header"][:-5], b"pcm": fields[b"pcm"]},
    ]
    for entry in broken:
        with pytest.raises(WireError):
            read_job(entry)
    with pytest.raises(WireError):
        read_result({b"header": b'{"kind": "final"}'})


async def test_a_malformed_entry_is_acknowledged_and_skipped(redis_url: str) -> None:
    inbox = Inbox()
    async with running(en_pt_worker(redis_url)), gateway_bus(redis_url, inbox) as bus:
        await until_workers(bus, 1)
        await bus.client.xadd(asr_stream("en"), {"header": "garbage"})
        await bus.submit(job(0))
        await inbox.until(1)
        async with asyncio.timeout(3):
            while (await bus.client.xpending(asr_stream("en"), GROUP))["pending"]:
                await asyncio.sleep(0.05)


async def test_a_worker_that_stops_its_heartbeat_is_forgotten(redis_url: str) -> None:
    inbox = Inbox()
    async with gateway_bus(redis_url, inbox) as bus:
        info = WorkerInfo(worker_id="gone", stages=("asr",), asr_languages=("en",))
        await advertise(bus, info, ttl_ms=300)
        assert bus.workers.unserved("en", ["en"]) == {}
        await asyncio.sleep(1.0)  # the key expired, and the gateway's grace (3 beats) passed
        await bus.workers.refresh(bus.client)
        assert bus.workers.unserved("en", ["en"]) == {
            "en": "no worker serves speech recognition in 'en'"
        }


def partial(previous: str = "") -> PartialRequest:
    samples = np.full(8000, 0.1, dtype=np.float32)
    return PartialRequest("room/ana/0", "en", samples, previous=previous, targets=("pt",))


async def test_a_live_caption_is_read_by_an_idle_worker_and_translated(redis_url: str) -> None:
    inbox = Inbox()
    async with running(en_pt_worker(redis_url)), gateway_bus(redis_url, inbox) as bus:
        await until_workers(bus, 1)
        first = await bus.read_partial(partial())
        second = await bus.read_partial(partial(previous="hello"))
    assert first is not None and first.hypothesis == "hello"
    assert first.agreement.committed == "" and first.agreement.unstable == "hello"
    assert second is not None and second.agreement.committed == "hello"
    assert second.translations == {"pt": "hello"}


async def test_a_worker_with_final_work_in_hand_skips_live_captions(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pipeline.redis_bus.PARTIAL_WAIT_S", 0.4)
    inbox = Inbox()
    recognizer = FakeRecognizer(script=Script(delay_s=1.5))
    busy = en_pt_worker(redis_url, recognizer=recognizer)
    async with running(busy), gateway_bus(redis_url, inbox) as bus:
        await until_workers(bus, 1)
        await bus.submit(job(0))
        await asyncio.sleep(0.2)  # the worker is recognising it
        assert await bus.read_partial(partial()) is None
        await inbox.until(1)
    assert inbox.finals() == [("room/ana/0", "pt")]  # the final never waited for the partial
    assert recognizer.calls == ["en"]  # the partial was skipped, not queued behind the job


async def test_a_lost_live_caption_request_costs_only_that_reading(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pipeline.redis_bus.PARTIAL_WAIT_S", 0.3)
    monkeypatch.setattr("pipeline.worker.PARTIAL_WAIT_S", 0.3)
    inbox = Inbox()
    recognizer = FakeRecognizer()
    absent = en_pt_worker(redis_url, recognizer=recognizer)
    async with gateway_bus(redis_url, inbox) as bus:
        await advertise(bus, absent.info)  # advertised, but not reading: the request is lost
        assert await bus.read_partial(partial()) is None
        async with running(absent):
            await asyncio.sleep(0.3)  # it reads the stale request and skips it
            monkeypatch.setattr("pipeline.redis_bus.PARTIAL_WAIT_S", 3.0)
            reading = await bus.read_partial(partial())
            await bus.submit(job(1))
            await inbox.until(1)
    assert reading is not None and reading.hypothesis == "hello"
    assert recognizer.calls == ["en", "en"]  # the fresh request and the job; the stale skipped
