"""Several gateways over one Redis: the room directory, and TURN REST credentials per join."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time

import httpx
import pytest
import redis.asyncio
from pydantic import SecretStr

from pipeline.models import Models
from pipeline.settings import Settings
from server.directory import RoomDirectory, room_key
from server.turn import turn_credentials
from testkit.harness import serving
from testkit.peer import Participant
from testkit.sdp_corpus import real_offer

pytestmark = pytest.mark.redis


async def test_a_room_belongs_to_the_gateway_that_claimed_it_until_that_one_dies(
    redis_url: str,
) -> None:
    first = RoomDirectory(redis_url, "gw-a", "http://a.example:8000", heartbeat_s=0.2)
    second = RoomDirectory(redis_url, "gw-b", "http://b.example:8000/", heartbeat_s=0.2)
    await first.start()
    await second.start()
    try:
        assert await second.elsewhere("standup") is None  # nobody holds it
        assert await second.elsewhere("standup") is None  # and a lookup claims nothing
        assert await first.claim("standup") is None  # a join at gw-a claims it
        assert await first.claim("standup") is None  # still ours
        assert await second.elsewhere("standup") == "http://a.example:8000"
        assert await second.claim("standup") == "http://a.example:8000"
        await second.release("standup")  # not its room: nothing happens
        assert await second.elsewhere("standup") == "http://a.example:8000"
        await first.release("standup")
        assert await second.claim("standup") is None  # free again: gw-b takes it
        assert await first.elsewhere("standup") == "http://b.example:8000"
        await second.stop()  # gw-b goes away: its claims and advertisement go with it
        assert await first.elsewhere("standup") is None
        assert await first.claim("standup") is None
    finally:
        await first.stop()


async def test_claims_expire_with_a_dead_gateway_and_live_on_while_it_beats(
    redis_url: str,
) -> None:
    client = redis.asyncio.Redis.from_url(redis_url)
    alive = RoomDirectory(redis_url, "gw-alive", "http://alive:1", heartbeat_s=0.2)
    doomed = RoomDirectory(redis_url, "gw-doomed", "http://doomed:1", heartbeat_s=0.2)
    await alive.start()
    await doomed.start()
    try:
        assert await alive.claim("kept") is None
        assert await doomed.claim("orphan") is None
        assert 0 < await client.pttl(room_key("kept")) <= 600  # a TTL, not forever
        assert doomed._task is not None
        doomed._task.cancel()  # the process dies: no release, no more heartbeats
        await asyncio.sleep(1.5)  # well past 3 heartbeats
        assert await client.get(room_key("orphan")) is None
        assert await client.get(room_key("kept")) == b"gw-alive"  # renewed all along
        assert await alive.claim("orphan") is None  # free for anyone
    finally:
        await alive.stop()
        await doomed.stop()
        await client.aclose()


async def test_a_directory_outage_serves_the_room_locally(redis_url: str, tmp_path: object) -> None:
    lonely = RoomDirectory("redis://127.0.0.1:9/0", "gw-x", "http://x:1", heartbeat_s=0.2)
    await lonely.start()
    assert await lonely.elsewhere("anything") is None
    await lonely.stop()


async def test_a_join_at_the_wrong_gateway_is_redirected_to_the_rooms_gateway(
    redis_url: str, settings: Settings, models: Models
) -> None:
    cluster = settings.model_copy(update={"redis_url": redis_url})
    async with (
        serving(cluster.model_copy(update={"gateway_id": "gw-one"}), models) as one,
        serving(cluster.model_copy(update={"gateway_id": "gw-two"}), models) as two,
        httpx.AsyncClient(timeout=30) as http,
    ):
        looked_up = (await http.get(f"{two}/api/rooms/shared/entry")).json()
        assert looked_up["gateway_url"] is None  # looking a room up does not claim it
        ana = Participant(one, "shared", "ana", "en")
        await ana.join(http, speak=False, video=False)
        entry = (await http.get(f"{two}/api/rooms/shared/entry")).json()
        assert entry["gateway_url"] == one
        body = {"name": "x", "language": "pt", "sdp": await real_offer(), "type": "offer"}
        redirect = await http.post(f"{two}/api/rooms/shared/join", json=body)
        assert redirect.status_code == 307
        assert redirect.headers["location"] == f"{one}/api/rooms/shared/join"
        bia = Participant(two, "shared", "bia", "pt")
        await bia.join(http, speak=False, video=False)  # follows the redirect
        assert bia.base_url == one
        state = (await http.get(f"{one}/api/rooms/shared")).json()
        assert {p["name"] for p in state["participants"]} == {"ana", "bia"}
        assert (await http.get(f"{two}/api/rooms/shared")).status_code == 404
        for person in (ana, bia):
            await person.leave(http)
        fresh = (await http.get(f"{two}/api/rooms/shared/entry")).json()
        assert fresh["gateway_url"] is None  # the empty room was released; gw-two may hold it


def test_turn_credentials_are_coturns_rest_scheme() -> None:
    # Expected value computed independently:
    #   printf '%s' "1700003600:alice" | openssl dgst -sha1 -hmac north-wind -binary | base64
    server = turn_credentials("north-wind", "alice", ttl_s=3600, now=1_700_000_000)
    assert server.username == "1700003600:alice"
    assert server.credential == "iRtTIZ3N38dm9S+dP+UkHfnN9Qo="


async def test_each_entry_gets_fresh_time_limited_turn_credentials(
    settings: Settings, models: Models
) -> None:
    turn = settings.model_copy(
        update={
            "turn_urls": ["turn:127.0.0.1:3478?transport=udp"],
            "turn_secret": SecretStr("s3cret"),
            "turn_ttl_s": 600,
        }
    )
    async with serving(turn, models) as url, httpx.AsyncClient() as http:
        first = (await http.get(f"{url}/api/rooms/r1/entry")).json()["ice_servers"]
        second = (await http.get(f"{url}/api/rooms/r1/entry")).json()["ice_servers"]
        bad = await http.get(f"{url}/api/rooms/bad%20room/entry")
    assert bad.status_code == 400
    assert first[0]["urls"] == ["turn:127.0.0.1:3478?transport=udp"]
    assert first[0]["username"] != second[0]["username"]  # a distinct user per entry
    for server in (first[0], second[0]):
        expiry, _user = server["username"].split(":")
        digest = hmac.new(b"s3cret", server["username"].encode(), hashlib.sha1).digest()
        assert server["credential"] == base64.b64encode(digest).decode()
        assert 590 <= int(expiry) - time.time() <= 610
