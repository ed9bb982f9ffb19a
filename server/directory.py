"""The room directory: which gateway holds each room, so any gateway can send a join there.

Each gateway advertises its public URL under an expiring key. A room is claimed only by a join,
as its own key (`dragoman:room:<id>` → gateway id) with a TTL that the holding gateway renews
with its heartbeat: when a room closes its claim is deleted, and when a gateway dies its claims
expire with its advertisement, so nothing outlives the gateway. Looking a room up never claims
it. Without Redis the gateway serves every room itself: a directory outage never stops a call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import redis.asyncio as aioredis

from pipeline.streams import LINK_ERRORS, connect, gateway_key, text
from pipeline.tasks import cancel_and_wait

LOG = logging.getLogger(__name__)

# KEYS[1] the room's claim; ARGV: this gateway, TTL in ms, the advertisement keys' prefix.
# A claim of a gateway whose advertisement expired is taken over.
CLAIM = """
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] and redis.call('EXISTS', ARGV[3] .. owner) == 1 then
  return owner
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
"""
# Renew a claim that is still ours (or re-take one that lapsed during an outage).
RENEW = """
local owner = redis.call('GET', KEYS[1])
if owner == ARGV[1] or not owner then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def room_key(room_id: str) -> str:
    return f"dragoman:room:{room_id}"


class RoomDirectory:
    def __init__(self, url: str, gateway_id: str, public_url: str, heartbeat_s: float) -> None:
        self.gateway_id = gateway_id
        self.public_url = public_url.rstrip("/")
        self._heartbeat_s = heartbeat_s
        self._client: aioredis.Redis = connect(url, f"directory-{gateway_id}")
        self._task: asyncio.Task[None] | None = None
        self.held: set[str] = set()

    @property
    def _ttl_ms(self) -> int:
        return int(self._heartbeat_s * 3000)

    async def start(self) -> None:
        await self._advertise()
        self._task = asyncio.create_task(self._heartbeat(), name="directory-heartbeat")

    async def _advertise(self) -> None:
        with contextlib.suppress(*LINK_ERRORS):
            await self._client.set(gateway_key(self.gateway_id), self.public_url, px=self._ttl_ms)
            for room_id in list(self.held):
                renewed = await self._client.eval(
                    RENEW, 1, room_key(room_id), self.gateway_id, self._ttl_ms
                )
                if not renewed:
                    LOG.warning("room %s was claimed by another gateway", room_id)
                    self.held.discard(room_id)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self._heartbeat_s)
            await self._advertise()

    async def elsewhere(self, room_id: str) -> str | None:
        """The URL of another live gateway holding the room; None when nobody (else) does."""
        try:
            owner = await self._client.get(room_key(room_id))
            if owner is None or text(owner) == self.gateway_id:
                return None
            url = await self._client.get(gateway_key(text(owner)))
            return None if url is None else text(url)
        except LINK_ERRORS as exc:
            LOG.warning("room directory unreachable (%s); serving room %s here", exc, room_id)
            return None

    async def claim(self, room_id: str) -> str | None:
        """Claim the room for a join here; the URL of the live gateway holding it instead."""
        try:
            owner = await self._client.eval(
                CLAIM, 1, room_key(room_id), self.gateway_id, self._ttl_ms, gateway_key("")
            )
            if owner is None:
                self.held.add(room_id)
                return None
            url = await self._client.get(gateway_key(text(owner)))
        except LINK_ERRORS as exc:
            LOG.warning("room directory unreachable (%s); serving room %s here", exc, room_id)
            self.held.add(room_id)  # claimed by the next heartbeat that reaches Redis
            return None
        return None if url is None else text(url)

    async def release(self, room_id: str) -> None:
        """Forget a closed room (only if this gateway still holds it)."""
        self.held.discard(room_id)
        with contextlib.suppress(*LINK_ERRORS):
            await self._client.eval(RELEASE, 1, room_key(room_id), self.gateway_id)

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        for room_id in list(self.held):
            await self.release(room_id)
        with contextlib.suppress(*LINK_ERRORS):
            await self._client.delete(gateway_key(self.gateway_id))
        await self._client.aclose()
