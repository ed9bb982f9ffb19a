"""The Redis layout shared by gateways and workers: stream and key names, connections, backoff.

dragoman:asr:{src}              ASR jobs (header + 16-bit PCM), consumer group "workers"
dragoman:translate:{src}:{tgt}  MT+TTS jobs for one target language, consumer group "workers"
dragoman:results:{gateway}      results for the gateway that owns the room (read with XREAD)
dragoman:worker:{id}            a worker's capabilities, expiring unless its heartbeat renews them
dragoman:gateway:{id}           a gateway's public URL, expiring likewise
dragoman:rooms                  hash room → gateway id (the room directory)
dragoman:done:{job}:{stage}:{language}   deduplication marks (expire after an hour)
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.typing import EncodableT, FieldT

GROUP = "workers"
DEDUP_TTL_S = 3600
LINK_ERRORS = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)
Fields = dict[FieldT, EncodableT]
Entry = tuple[str, str, dict[bytes, bytes]]  # stream, entry id, fields


def text(value: object) -> str:
    """A reply item as text (replies are bytes; names we passed in may come back as str)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def entries(reply: Any) -> list[Entry]:
    """XREAD/XREADGROUP replies as (stream, id, fields); entries deleted meanwhile are skipped."""
    found: list[Entry] = []
    for stream, messages in reply or []:
        for entry_id, fields in messages:
            if fields is not None:
                found.append((text(stream), text(entry_id), fields))
    return found


def asr_stream(language: str) -> str:
    return f"dragoman:asr:{language}"


def translate_stream(source: str, target: str) -> str:
    return f"dragoman:translate:{source}:{target}"


def results_stream(gateway: str) -> str:
    return f"dragoman:results:{gateway}"


def partial_stream(language: str) -> str:
    """Live-caption requests of one source language: a few at most, the newest kept."""
    return f"dragoman:partial:{language}"


def readings_stream(gateway: str) -> str:
    """Live-caption readings for one gateway."""
    return f"dragoman:readings:{gateway}"


def worker_key(worker: str) -> str:
    return f"dragoman:worker:{worker}"


def gateway_key(gateway: str) -> str:
    return f"dragoman:gateway:{gateway}"


def done_key(job_id: str, stage: str, language: str) -> str:
    return f"dragoman:done:{job_id}:{stage}:{language}"


def connect(url: str, name: str) -> aioredis.Redis:
    """A client that fails fast on a lost link; callers own reconnection (with backoff)."""
    return aioredis.Redis.from_url(
        url,
        socket_connect_timeout=2.0,
        socket_timeout=10.0,
        retry_on_error=[],
        retry=None,
        client_name=name,
        health_check_interval=5,
    )


async def ensure_groups(client: aioredis.Redis, streams: list[str]) -> None:
    """Create the consumer group on each stream (and the stream), if it is not there yet."""
    for stream in streams:
        try:
            await client.xgroup_create(stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise


async def server_run_id(client: aioredis.Redis) -> str:
    """Changes when redis-server restarts: a restarted server may have lost every stream."""
    info = await client.info("server")
    return str(info.get("run_id", ""))


@dataclass
class Backoff:
    """Exponential backoff with jitter for reconnection: 0.1 s doubling up to `ceiling_s`."""

    floor_s: float = 0.1
    ceiling_s: float = 5.0
    _next_s: float = 0.0

    async def wait(self) -> None:
        self._next_s = min(self.ceiling_s, max(self.floor_s, self._next_s * 2))
        await asyncio.sleep(self._next_s * random.uniform(0.8, 1.2))

    def reset(self) -> None:
        self._next_s = 0.0
