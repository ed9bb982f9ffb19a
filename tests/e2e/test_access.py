"""Access control: room tokens on every call, roles, moderators, limits; open rooms on request."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import jwt
import pytest
from pydantic import SecretStr

from pipeline.errors import ConfigurationError
from pipeline.models import Models
from pipeline.settings import Settings
from server.access import Role, mint
from server.app import create_app
from testkit.harness import serving
from testkit.peer import Participant
from testkit.sdp_corpus import real_offer

SECRET = "0123456789abcdef0123456789abcdef-test"
DRAGOMAN = Path(sys.executable).with_name("dragoman")


def bearer(room: str, identity: str, role: Role = "speaker", ttl_s: int = 600) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(SECRET, room, identity, role, ttl_s)}"}


@pytest.fixture
async def guarded(settings: Settings, models: Models) -> AsyncIterator[str]:
    tokens = {"open_rooms": False, "jwt_secret": SecretStr(SECRET), "joins_per_ip_per_minute": 50}
    async with serving(settings.model_copy(update=tokens), models) as url:
        yield url


async def join_with(
    http: httpx.AsyncClient, url: str, room: str, name: str, role: Role, language: str = "en"
) -> Participant:
    person = Participant(url, room, name, language)
    http.headers["Authorization"] = bearer(room, name, role)["Authorization"]
    await person.join(http, speak=True, video=False)
    return person


@pytest.mark.parametrize(
    ("secret", "words"),
    [(None, "DRAGOMAN_JWT_SECRET is not set"), ("changeme", "too weak"), ("short", "too weak")],
)
def test_without_a_strong_secret_the_gateway_does_not_start(
    settings: Settings, secret: str | None, words: str
) -> None:
    closed = settings.model_copy(
        update={"open_rooms": False, "jwt_secret": SecretStr(secret) if secret else None}
    )
    with pytest.raises(ConfigurationError, match=words):
        create_app(closed)


def test_serve_without_a_secret_stops_with_one_line() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRAGOMAN_")}
    result = subprocess.run(
        [DRAGOMAN, "serve", "--port", "9"], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "DRAGOMAN_JWT_SECRET is not set" in lines[0], result.stderr


def test_token_command_mints_a_token_for_one_room_and_role() -> None:
    env = {**os.environ, "DRAGOMAN_JWT_SECRET": SECRET}
    command = [DRAGOMAN, "token", "--room", "board", "--identity", "ana", "--role", "moderator"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    claims = jwt.decode(result.stdout.strip(), SECRET, algorithms=["HS256"])
    assert (claims["room"], claims["sub"], claims["role"]) == ("board", "ana", "moderator")
    assert 3590 <= claims["exp"] - claims["iat"] <= 3600
    bad = subprocess.run(
        [*command[:-1], "owner"], capture_output=True, text=True, env=env, timeout=120
    )
    assert bad.returncode == 2 and "unknown role 'owner'" in bad.stderr


async def test_every_room_call_needs_a_valid_token_for_that_room(
    guarded: str, http: httpx.AsyncClient
) -> None:
    body = {"name": "eve", "language": "en", "sdp": "v=0\r\nm=audio 9 UDP 0\r\n", "type": "offer"}
    expired = {"Authorization": f"Bearer {mint(SECRET, 'vault', 'eve', 'speaker', 60, now=0)}"}
    forged = {"Authorization": f"Bearer {mint('x' * 40, 'vault', 'eve', 'speaker', 60)}"}
    cases = [
        ({}, 401, "needs an access token"),
        ({"Authorization": "Basic abc"}, 401, "needs an access token"),
        ({"Authorization": "Bearer not-a-jwt"}, 401, "not valid"),
        (forged, 401, "not valid"),
        (expired, 401, "expired"),
        (bearer("other-room", "eve"), 403, "another room"),
    ]
    for headers, status, words in cases:
        for method, path in [
            ("POST", "/api/rooms/vault/join"),
            ("GET", "/api/rooms/vault"),
            ("GET", "/api/rooms/vault/transcript"),
            ("GET", "/api/rooms/vault/entry"),
            ("POST", "/api/rooms/vault/participants/p1/floor"),
        ]:
            response = await http.request(method, f"{guarded}{path}", json=body, headers=headers)
            assert response.status_code == status, (path, headers, response.text)
            assert words in response.json()["detail"]


async def test_roles_moderation_and_no_return_after_removal(
    guarded: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with (
        httpx.AsyncClient(timeout=30) as ana_http,
        httpx.AsyncClient(timeout=30) as ben_http,
        httpx.AsyncClient(timeout=30) as cid_http,
    ):
        ana = await join_with(ana_http, guarded, "board", "ana", "moderator")
        ben = await join_with(ben_http, guarded, "board", "ben", "speaker", "pt")
        cid = await join_with(cid_http, guarded, "board", "cid", "listener", "es")
        room = f"{guarded}/api/rooms/board/participants"

        # A listener may not speak; its voice is muted from the start.
        refused = await cid_http.post(
            f"{room}/{cid.participant_id}/floor", json={"secret": cid.secret, "action": "request"}
        )
        assert refused.status_code == 403 and "listeners" in refused.json()["detail"]
        unmute = await cid_http.post(
            f"{room}/{cid.participant_id}/mute", json={"secret": cid.secret, "muted": False}
        )
        assert unmute.status_code == 403
        # Someone else's participant calls need that participant's token.
        stolen = await cid_http.post(
            f"{room}/{ben.participant_id}/mute", json={"secret": ben.secret, "muted": True}
        )
        assert stolen.status_code == 403 and "another participant" in stolen.json()["detail"]
        # Only moderators moderate.
        speaker = await ben_http.post(
            f"{room}/{ana.participant_id}/moderate", json={"action": "mute"}
        )
        assert speaker.status_code == 403

        # Ben takes the floor, then Ana (moderator) speaks up: Ben is moved behind her.
        await ben_http.post(
            f"{room}/{ben.participant_id}/floor", json={"secret": ben.secret, "action": "request"}
        )
        await ana_http.post(
            f"{room}/{ana.participant_id}/floor", json={"secret": ana.secret, "action": "request"}
        )
        requeue = await ana_http.post(
            f"{room}/{ben.participant_id}/moderate", json={"action": "requeue"}
        )
        assert requeue.status_code == 204
        state = (await ana_http.get(f"{guarded}/api/rooms/board")).json()
        assert state["floor"] == {
            **state["floor"],
            "holder": ana.participant_id,
            "queue": [ben.participant_id],
        }
        muted = await ana_http.post(
            f"{room}/{ben.participant_id}/moderate", json={"action": "mute"}
        )
        assert muted.status_code == 204
        state = (await ana_http.get(f"{guarded}/api/rooms/board")).json()
        assert {p["name"]: p["muted"] for p in state["participants"]}["ben"] is True

        removed = await ana_http.post(
            f"{room}/{ben.participant_id}/moderate", json={"action": "remove"}
        )
        assert removed.status_code == 204
        state = (await ana_http.get(f"{guarded}/api/rooms/board")).json()
        assert "ben" not in {p["name"] for p in state["participants"]}
        again = Participant(guarded, "board", "ben", "pt")
        with pytest.raises(httpx.HTTPStatusError) as refused_again:
            await again.join(ben_http, speak=False, video=False)  # the same token
        assert refused_again.value.response.status_code == 403
        assert "removed you" in refused_again.value.response.json()["detail"]
        await again.close()
        for person, client in ((ana, ana_http), (cid, cid_http)):
            await person.leave(client)
        await ben.close()
        tokens = [client.headers["Authorization"].split()[1] for client in (ana_http, cid_http)]
    assert not any(token in caplog.text for token in tokens)  # tokens never reach the logs
    assert SECRET not in caplog.text


async def test_too_many_joins_from_one_address_get_429(
    settings: Settings, models: Models, http: httpx.AsyncClient
) -> None:
    strict = settings.model_copy(update={"joins_per_ip_per_minute": 2})
    body = {"name": "x", "language": "en", "sdp": await real_offer(), "type": "offer"}
    async with serving(strict, models) as url:
        statuses = [
            (await http.post(f"{url}/api/rooms/busy/join", json=body)).status_code for _ in range(3)
        ]
    assert 429 not in statuses[:2] and statuses[2] == 429


async def test_a_moderator_turns_lipsync_off_for_the_room(guarded: str) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        mod = await join_with(http, guarded, "lips", "mo", "moderator")
        url = f"{guarded}/api/rooms/lips/lipsync"
        speaker = bearer("lips", "sam", "speaker")
        refused = await http.post(url, json={"enabled": False}, headers=speaker)
        assert refused.status_code == 403
        moderator = bearer("lips", "mo", "moderator")
        switched = await http.post(url, json={"enabled": False}, headers=moderator)
        assert switched.status_code == 200 and switched.json() == {"enabled": False}
        back = await http.post(url, json={"enabled": True}, headers=moderator)
        assert back.json() == {"enabled": True}
        voices = f"{guarded}/api/rooms/lips/voices"
        assert (
            await http.post(voices, json={"mode": "neutral"}, headers=speaker)
        ).status_code == 403
        neutral = await http.post(voices, json={"mode": "neutral"}, headers=moderator)
        assert neutral.status_code == 200 and neutral.json() == {"mode": "neutral"}
        languages = (await http.get(f"{guarded}/api/languages")).json()
        portuguese = next(language for language in languages if language["code"] == "pt")
        assert portuguese["voices"][0] == "kokoro:pf_dora" and len(portuguese["voices"]) == 3
        await mod.leave(http)
