"""Several gateways over one Redis: the room directory, and TURN REST credentials per join."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import httpx
import pytest
from pydantic import SecretStr

from loadtest.peer import Participant
from pipeline.models import Models
from pipeline.settings import Settings
from server.directory import RoomDirectory
from server.turn import turn_credentials
from tests.conftest import serving

pytestmark = pytest.mark.redis


async def test_a_room_belongs_to_the_gateway_that_claimed_it_until_that_one_dies(
    redis_url: str,
) -> None:
    first = RoomDirectory(redis_url, "gw-a", "http://a.example:8000", heartbeat_s=0.2)
    second = RoomDirectory(redis_url, "gw-b", "http://b.example:8000/", heartbeat_s=0.2)
    await first.start()
    await second.start()
    try:
        assert await first.elsewhere("standup") is None  # claimed by gw-a
        assert await first.elsewhere("standup") is None  # still ours
        assert await second.elsewhere("standup") == "http://a.example:8000"
        await second.release("standup")  # not its room: nothing happens
        assert await second.elsewhere("standup") == "http://a.example:8000"
        await first.release("standup")
        assert await second.elsewhere("standup") is None  # free again: gw-b takes it
        assert await first.elsewhere("standup") == "http://b.example:8000"
        await second.stop()  # gw-b goes away (its advertisement is deleted)
        assert await first.elsewhere("standup") is None  # taken over
    finally:
        await first.stop()


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
        ana = Participant(one, "shared", "ana", "en")
        await ana.join(http, speak=False, video=False)
        entry = (await http.get(f"{two}/api/rooms/shared/entry")).json()
        assert entry["gateway_url"] == one
        body = {"name": "x", "language": "pt", "sdp": "v=0\nm=audio", "type": "offer"}
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
