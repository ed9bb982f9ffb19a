"""The room directory: which gateway holds each room, so any gateway can send a join there.

Each gateway advertises its public URL under an expiring key. A room is claimed with HSETNX on
its first join; a claim held by a gateway whose key expired (it died) is taken over. Without
Redis the gateway serves every room itself: a directory outage never stops a call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import redis.asyncio as aioredis

from pipeline.streams import LINK_ERRORS, ROOMS, connect, gateway_key, text

LOG = logging.getLogger(__name__)


class RoomDirectory:
    def __init__(self, url: str, gateway_id: str, public_url: str, heartbeat_s: float) -> None:
        self.gateway_id = gateway_id
        self.public_url = public_url.rstrip("/")
        self._heartbeat_s = heartbeat_s
        self._client: aioredis.Redis = connect(url, f"directory-{gateway_id}")
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._advertise()
        self._task = asyncio.create_task(self._heartbeat(), name="directory-heartbeat")

    async def _advertise(self) -> None:
        ttl_ms = int(self._heartbeat_s * 3000)
        with contextlib.suppress(*LINK_ERRORS):
            await self._client.set(gateway_key(self.gateway_id), self.public_url, px=ttl_ms)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self._heartbeat_s)
            await self._advertise()

    async def elsewhere(self, room_id: str) -> str | None:
        """The URL of the live gateway that holds the room, or None when it is (now) ours."""
        try:
            if await self._client.hsetnx(ROOMS, room_id, self.gateway_id):
                return None
            owner = await self._client.hget(ROOMS, room_id)
            if owner is None or text(owner) == self.gateway_id:
                await self._client.hset(ROOMS, room_id, self.gateway_id)
                return None
            url = await self._client.get(gateway_key(text(owner)))
            if url is None:  # its gateway is gone: the room starts again here
                LOG.info("taking over room %s from %s", room_id, text(owner))
                await self._client.hset(ROOMS, room_id, self.gateway_id)
                return None
            return text(url)
        except LINK_ERRORS as exc:
            LOG.warning("room directory unreachable (%s); serving room %s here", exc, room_id)
            return None

    async def release(self, room_id: str) -> None:
        """Forget a closed room (only if this gateway still holds it)."""
        with contextlib.suppress(*LINK_ERRORS):
            owner = await self._client.hget(ROOMS, room_id)
            if owner is not None and text(owner) == self.gateway_id:
                await self._client.hdel(ROOMS, room_id)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(*LINK_ERRORS):
            await self._client.delete(gateway_key(self.gateway_id))
        await self._client.aclose()
