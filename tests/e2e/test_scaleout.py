"""Scale-out with real processes: a gateway, two `dragoman worker` processes with the real
models, and redis-server, all on 127.0.0.1. Workers are killed, Redis is restarted mid-call."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis

from pipeline.audio import ASR_SAMPLE_RATE, read_file
from pipeline.bus import Job, JobResult
from pipeline.cascade import Utterance
from pipeline.events import CaptionFinal
from pipeline.models import Models
from pipeline.redis_bus import RedisBus
from pipeline.segmenter import Segment
from pipeline.settings import Settings
from pipeline.streams import GROUP, asr_stream, translate_stream, worker_key
from testkit.fixtures import Clip, clip_named, speech_48k
from testkit.harness import free_port, serving
from testkit.peer import Participant, join_all, leave_all
from testkit.redis_server import LocalRedis
from testkit.waiting import until

pytestmark = [pytest.mark.redis, pytest.mark.slow]
WORKERS = {"full": [], "en-pt": ["--languages", "en,pt"]}


@dataclass
class Cluster:
    """redis-server and the worker processes; a killed worker can be started again."""

    redis: LocalRedis
    settings: Settings
    logs: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    metrics_port: int = field(default_factory=free_port)

    def start_worker(self, name: str) -> None:
        env = {
            **os.environ,
            "DRAGOMAN_REDIS_URL": self.redis.url,
            "DRAGOMAN_CACHE_DIR": str(self.settings.cache_dir),
            "DRAGOMAN_BUS_CLAIM_IDLE_S": "2",
            "DRAGOMAN_BUS_HEARTBEAT_S": "0.5",
            "DRAGOMAN_INFERENCE_THREADS": "1",
        }
        command = [
            str(Path(sys.executable).with_name("dragoman")),
            "worker",
            "--worker-id",
            name,
            *WORKERS[name],
            *(["--metrics-port", str(self.metrics_port)] if name == "full" else []),
        ]
        with (self.logs / f"{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT
            )

    def wait_advertised(self, timeout_s: float = 120) -> None:
        client = redis.Redis.from_url(self.redis.url)
        deadline = time.monotonic() + timeout_s
        try:
            while not all(client.exists(worker_key(name)) for name in self.processes):
                for name, process in self.processes.items():
                    if process.poll() is not None:
                        log = (self.logs / f"{name}.log").read_text()[-2000:]
                        raise RuntimeError(f"worker {name} exited:\n{log}")
                if time.monotonic() > deadline:
                    raise RuntimeError("workers did not advertise in time")
                time.sleep(0.2)
        finally:
            client.close()

    def ensure_running(self) -> None:
        for name in WORKERS:
            process = self.processes.get(name)
            if process is None or process.poll() is not None:
                self.start_worker(name)
        self.wait_advertised()

    def kill(self, name: str) -> None:
        self.processes[name].send_signal(signal.SIGKILL)
        self.processes[name].wait()

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, settings: Settings, models: Models
) -> Iterator[Cluster]:
    models.recognizer  # noqa: B018 - joins Whisper base into the shared cache once
    folder = tmp_path_factory.mktemp("cluster")
    with LocalRedis(folder / "redis", password="cluster-secret") as server:
        group = Cluster(server, settings, folder)
        try:
            group.ensure_running()
            yield group
        finally:
            group.stop_all()


@pytest.fixture
def running(cluster: Cluster) -> Cluster:
    cluster.ensure_running()
    return cluster


@pytest.fixture
async def cluster_gateway(
    running: Cluster, settings: Settings, models: Models
) -> AsyncIterator[str]:
    gateway = settings.model_copy(
        update={"redis_url": running.redis.url, "bus_heartbeat_s": 0.5, "gateway_id": "gw-main"}
    )
    async with serving(gateway, models) as url:
        yield url


def finals_by_language(listener: Participant) -> dict[int, str]:
    return {int(c["sequence"]): str(c["target_text"]) for c in listener.captions()}


async def test_two_workers_translate_a_rooms_speech_end_to_end(
    cluster_gateway: str, running: Cluster, http: httpx.AsyncClient, clips: list[Clip]
) -> None:
    ana, bel, cai = (
        Participant(cluster_gateway, "scaled", n, lang)
        for n, lang in [("ana", "en"), ("bel", "pt"), ("cai", "es")]
    )
    await join_all(http, ana, bel, cai, speakers=(ana,))
    assert ana.microphone is not None
    ana.microphone.say(speech_48k(clips, "en_jfk_inaugural_1961"))
    await until(lambda: not ana.microphone.speaking, 20)  # type: ignore[union-attr]
    await until(lambda: len(bel.captions()) >= 3 and len(cai.captions()) >= 3, 30)
    await asyncio.sleep(1.0)
    for listener in (bel, cai):
        sequences = [c["sequence"] for c in listener.captions()]
        # One final each, none lost. Two workers finish out of order at times, and the gateway
        # passes captions on as they come: putting them in order is the outcome stream's work.
        assert sorted(sequences) == list(range(len(sequences)))
        assert not listener.of_type("utterance.failed")
    said = " ".join(c["source_text"] for c in cai.captions()).lower()
    assert "what your country can do" in said
    await until(lambda: bool(bel.heard.onsets()) and bool(cai.heard.onsets()), 20)
    client = redis.Redis.from_url(running.redis.url)
    try:  # the en,pt worker never took a Spanish job; both took work
        consumers = client.xinfo_consumers(translate_stream("en", "es"), GROUP)
        assert {c["name"].decode() for c in consumers} <= {"full"}
        assert consumers, "the Spanish translations were made by the full worker"
    finally:
        client.close()
    metrics = (await http.get(f"http://127.0.0.1:{running.metrics_port}/metrics")).text
    assert 'dragoman_bus_jobs_total{outcome="done"}' in metrics
    # Which stages this worker ran depends on which worker read first; it ran some.
    timed = r'dragoman_stage_seconds_count\{backend="[^"]+",stage="(asr|mt|tts)"\}'
    assert re.search(timed, metrics)
    await leave_all(http, ana, bel, cai)


def speech_job(clips: list[Clip], name: str, targets: tuple[str, ...]) -> Job:
    samples = read_file(clip_named(clips, name).path, ASR_SAMPLE_RATE).samples
    segment = Segment(index=0, start_s=0.0, samples=samples, speech_ratio=0.9)
    return Job("kill-test", Utterance("kill-test/ana/0", "ana", 0, "en", segment), targets)


async def test_a_worker_killed_mid_job_its_job_completes_on_the_other_once(
    running: Cluster, clips: list[Clip]
) -> None:
    results: list[JobResult] = []

    async def collect(result: JobResult) -> None:
        results.append(result)

    bus = RedisBus(running.redis.url, "gw-kill", collect, heartbeat_s=0.5, job_timeout_s=60)
    await bus.start()
    probe = redis.asyncio.Redis.from_url(running.redis.url)
    try:
        await until(lambda: len(bus.workers.workers) == 2, 10)
        await bus.submit(speech_job(clips, "en_fleurs_005", ("pt",)))
        holder = None
        async with asyncio.timeout(10):
            while holder is None:  # the worker that took the ASR job
                pending = await probe.xpending_range(asr_stream("en"), GROUP, "-", "+", 10)
                holder = pending[0]["consumer"].decode() if pending else None
                await asyncio.sleep(0.01)
        running.kill(holder)  # SIGKILL, mid-ASR of an 11 s segment
        await until(lambda: bool(results), 40)
        await asyncio.sleep(2.5)  # more than the claim idle time: any duplicate would be here
    finally:
        await probe.aclose()
        await bus.stop()
    survivor = next(name for name in WORKERS if name != holder)
    assert f"{survivor} reclaimed 1 job" in (running.logs / f"{survivor}.log").read_text()
    assert len(results) == 1 and results[0].job.targets == ("pt",)
    caption = results[0].result.translations["pt"].event
    assert isinstance(caption, CaptionFinal) and "hospital" in caption.source_text.lower()
    assert results[0].result.translations["pt"].speech is not None


async def test_redis_restart_mid_call_loses_and_duplicates_no_final(
    cluster_gateway: str, running: Cluster, http: httpx.AsyncClient, clips: list[Clip]
) -> None:
    ana, bel = (
        Participant(cluster_gateway, "restart", n, lang)
        for n, lang in [("ana", "en"), ("bel", "pt")]
    )
    await join_all(http, ana, bel, speakers=(ana,))
    assert ana.microphone is not None
    ana.microphone.say(speech_48k(clips, "en_commonvoice_platforms"))
    await until(lambda: len(bel.captions()) >= 1, 30)
    ana.microphone.say(speech_48k(clips, "en_librispeech_1272-128104-0000"))
    await asyncio.sleep(2.0)  # mid-utterance
    await asyncio.to_thread(running.redis.restart, 0.5)
    await until(lambda: not ana.microphone.speaking, 20)  # type: ignore[union-attr]
    ana.microphone.say(speech_48k(clips, "en_ljspeech_LJ001-0004"))
    await until(lambda: not ana.microphone.speaking, 20)  # type: ignore[union-attr]
    await until(lambda: any("books" in c["source_text"] for c in bel.captions()), 60)
    await asyncio.sleep(3.0)  # late duplicates, if any, would arrive now
    sequences = [c["sequence"] for c in bel.captions()]
    assert sequences == list(range(len(sequences))), sequences
    assert not bel.of_type("utterance.failed")
    said = " ".join(c["source_text"] for c in bel.captions()).lower()
    assert "platforms" in said and "quilter" in said and "books" in said
    statuses = [e["paused"] for e in bel.of_type("translation.status")]
    assert statuses[:1] == [True] and statuses[-1] is False
    await leave_all(http, ana, bel)
