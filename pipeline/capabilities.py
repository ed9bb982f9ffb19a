"""What each worker serves (advertised with its heartbeat), and the gateway's view of them."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Iterable

import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict, ValidationError

from pipeline.streams import worker_key

LOG = logging.getLogger(__name__)
STAGES = ("asr", "translate")


class WorkerInfo(BaseModel):
    """A worker's advertisement: stages, languages, models and device."""

    model_config = ConfigDict(frozen=True)

    worker_id: str
    stages: tuple[str, ...]
    asr_languages: tuple[str, ...] = ()
    pairs: tuple[str, ...] = ()  # "src-tgt": translated and voiced
    models: dict[str, str] = {}
    device: str = "cpu"
    host: str = ""
    pid: int = 0
    seen_at: float = 0.0

    def serves_asr(self, language: str) -> bool:
        return "asr" in self.stages and language in self.asr_languages

    def serves_translation(self, source: str, target: str) -> bool:
        return "translate" in self.stages and f"{source}-{target}" in self.pairs


def advertisement(
    worker_id: str,
    stages: Iterable[str],
    asr_languages: Iterable[str],
    pairs: Iterable[tuple[str, str]],
    models: dict[str, str],
    device: str,
) -> WorkerInfo:
    stages = tuple(stages)
    return WorkerInfo(
        worker_id=worker_id,
        stages=stages,
        asr_languages=tuple(asr_languages) if "asr" in stages else (),
        pairs=tuple(f"{s}-{t}" for s, t in pairs) if "translate" in stages else (),
        models=models,
        device=device,
        host=socket.gethostname(),
        pid=os.getpid(),
    )


class WorkerDirectory:
    """The live workers as a gateway last read them (refreshed with each heartbeat).

    A worker stays known for `grace_s` after its advertisement was last read, so the moment
    between a redis-server restart and the workers' next heartbeat fails no job.
    """

    def __init__(self, grace_s: float = 3.0) -> None:
        self.workers: dict[str, WorkerInfo] = {}
        self.loaded = False
        self._grace_s = grace_s
        self._last_read: dict[str, float] = {}

    def extend_grace(self) -> None:
        """The link is back: give every known worker a fresh grace to advertise again."""
        now = time.monotonic()
        self._last_read = dict.fromkeys(self.workers, now)

    async def refresh(self, client: aioredis.Redis) -> None:
        keys = [key async for key in client.scan_iter(match=worker_key("*"), count=100)]
        values = await client.mget(keys) if keys else []
        now = time.monotonic()
        workers = {
            worker_id: info
            for worker_id, info in self.workers.items()
            if now - self._last_read.get(worker_id, 0.0) <= self._grace_s
        }
        for raw in values:
            if raw is None:
                continue  # expired between SCAN and MGET
            try:
                info = WorkerInfo.model_validate_json(raw)
            except ValidationError:
                LOG.warning("ignoring a malformed worker advertisement")
                continue
            workers[info.worker_id] = info
            self._last_read[info.worker_id] = now
        self.workers = workers
        self.loaded = True

    def hear(self, source: str) -> bool:
        """Whether a live worker serves speech recognition in `source` (unknown: no)."""
        return any(w.serves_asr(source) for w in self.workers.values())

    def unserved(self, source: str, targets: Iterable[str]) -> dict[str, str]:
        """Targets no live worker can serve, each with the reason participants will read."""
        if not self.loaded:
            return {}  # not known yet (Redis unreachable): the job waits instead of failing
        live = self.workers.values()
        if not self.hear(source):
            reason = f"no worker serves speech recognition in {source!r}"
            return {target: reason for target in targets}
        return {
            target: f"no worker serves translation {source}→{target}"
            for target in targets
            if target != source and not any(w.serves_translation(source, target) for w in live)
        }


def stamped(info: WorkerInfo) -> str:
    return info.model_copy(update={"seen_at": time.time()}).model_dump_json()
