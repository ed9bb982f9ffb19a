"""`dragoman bench bus`: the Redis hop's added latency and the bus's throughput, trivial work.

A gateway-side RedisBus and a Worker whose stages do (almost) nothing share one process and a
private redis-server. Each job carries 20 KB of audio (0.625 s of 16-bit PCM at 16 kHz) and
travels the whole path: ASR stream → worker → translate stream → worker → result stream.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.steps import Step
from pipeline.bus import Job, JobResult
from pipeline.capabilities import STAGES, advertisement
from pipeline.cascade import Utterance
from pipeline.events import CaptionFinal
from pipeline.redis_bus import RedisBus
from pipeline.segmenter import Segment
from pipeline.settings import Settings
from pipeline.worker import Worker
from testkit.fakes import fake_cascade
from testkit.redis_server import LocalRedis
from testkit.stats import quantile


def _job(index: int, payload_bytes: int) -> Job:
    samples = np.full(payload_bytes // 2, 0.1, dtype=np.float32)
    segment = Segment(index=index, start_s=0.0, samples=samples, speech_ratio=1.0)
    utterance = Utterance(f"bench/{index}", "speaker", index, "en", segment)
    return Job("bench", utterance, ("pt",))


async def _run(url: str, jobs: int, burst: int, payload_bytes: int, step: Step) -> dict[str, float]:
    maxlen = 4 * (burst + 10)  # streams hold the whole burst: trimming would drop unread jobs
    settings = Settings(
        redis_url=url,
        bus_heartbeat_s=0.2,
        worker_batch=16,
        bus_queue_size=burst + 10,
        bus_stream_maxlen=maxlen,
    )
    info = advertisement("bench-worker", STAGES, ["en"], [("en", "pt")], {}, "cpu")
    worker = Worker(settings, fake_cascade(), info)
    done: dict[str, float] = {}
    failed: list[str] = []
    arrived = asyncio.Event()

    async def on_result(result: JobResult) -> None:
        utterance_id = result.job.utterance.utterance_id
        done[utterance_id] = time.perf_counter()
        if not all(isinstance(t.event, CaptionFinal) for t in result.result.translations.values()):
            failed.append(utterance_id)
        arrived.set()

    bus = RedisBus(
        url,
        "bench-gateway",
        on_result,
        queue_size=burst + 10,
        heartbeat_s=0.2,
        stream_maxlen=maxlen,
    )
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    await bus.start()
    try:
        while not bus.workers.workers:
            await asyncio.sleep(0.05)
        for index in range(20):  # warm-up: connections, scripts, code paths
            await _one(bus, _job(jobs + burst + index, payload_bytes), done, arrived)
        step(f"latency: {jobs} jobs one at a time")
        hops = [await _one(bus, _job(i, payload_bytes), done, arrived) for i in range(jobs)]
        step(f"throughput: {burst} jobs at once")
        start = time.perf_counter()
        for index in range(burst):
            await bus.submit(_job(jobs + index, payload_bytes))
        while len(done) < 20 + jobs + burst:
            arrived.clear()
            await asyncio.wait_for(arrived.wait(), timeout=30)
        elapsed = time.perf_counter() - start
    finally:
        await bus.stop()
        stop.set()
        await running
    return {
        "hop_p50_ms": statistics.median(hops) * 1000,
        "hop_p99_ms": (quantile(hops, 0.99) or 0.0) * 1000,
        "jobs_per_s": burst / elapsed,
        "failed_jobs": float(len(failed)),
        "payload_bytes": float(payload_bytes),
        "jobs_timed": float(jobs),
    }


async def _one(bus: RedisBus, job: Job, done: dict[str, float], arrived: asyncio.Event) -> float:
    start = time.perf_counter()
    await bus.submit(job)
    while job.utterance.utterance_id not in done:
        arrived.clear()
        await asyncio.wait_for(arrived.wait(), timeout=10)
    return done[job.utterance.utterance_id] - start


def bench_bus(
    redis_url: str | None, step: Step, jobs: int = 500, burst: int = 2000, payload_kb: int = 20
) -> dict[str, float]:
    """Figures of the bus; starts a private redis-server unless `redis_url` is given."""
    payload = payload_kb * 1000
    if redis_url is not None:
        return asyncio.run(_run(redis_url, jobs, burst, payload, step))
    with tempfile.TemporaryDirectory() as folder, LocalRedis(Path(folder)) as redis:
        step(f"redis-server on 127.0.0.1:{redis.port}")
        return asyncio.run(_run(redis.url, jobs, burst, payload, step))
