"""Signalling edge cases: every bad request is a 4xx with a clear message; state stays sane."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from pipeline.models import Models
from pipeline.settings import Settings
from server.ice import keep_loopback_candidates
from testkit.harness import serving
from testkit.peer import Participant
from testkit.sdp_corpus import real_offer

GOOD_LOOKING = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
)


@pytest.fixture
async def gateway(settings: Settings, models: Models) -> AsyncIterator[str]:
    limits = {"max_participants_per_room": 2, "reconnect_grace_s": 1.0}
    async with serving(settings.model_copy(update=limits), models) as url:
        yield url


async def until_connected(pc: RTCPeerConnection, timeout_s: float = 15.0) -> None:
    for _ in range(round(timeout_s / 0.05)):
        if pc.connectionState == "connected":
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"still {pc.connectionState}")


REAL_OFFER = "<a real aiortc offer>"  # replaced by one in the test


def join_body(**changes: object) -> dict[str, object]:
    return {"name": "zoe", "language": "en", "sdp": REAL_OFFER, "type": "offer", **changes}


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (join_body(language="xx"), 400, "unknown language code 'xx'"),
        (join_body(language="de"), 400, "not served here"),
        (join_body(sdp="garbage"), 422, "must start with 'v=0'"),
        (join_body(sdp="v=0\r\n"), 422, "no media section"),
        (join_body(sdp=GOOD_LOOKING + "m=audio 9 RTP/AVP 0\r\n" * 20), 413, "at most 8"),
        (join_body(sdp="v=0" + "x" * 70000), 413, "at most 65536"),
        (join_body(sdp="v=0" + "x" * 200_000), 413, "request body over 131072 bytes"),
        (join_body(sdp=GOOD_LOOKING), 422, "not a usable WebRTC offer"),
        (join_body(name=""), 422, "name"),
        (join_body(name=7), 422, "name"),
        (join_body(type="answer"), 422, "type"),
        ({"name": "zoe"}, 422, "language"),
    ],
)
async def test_bad_join_requests_get_a_clear_4xx(
    gateway: str, http: httpx.AsyncClient, body: dict[str, object], status: int, message: str
) -> None:
    if body.get("sdp") == REAL_OFFER:
        body = {**body, "sdp": await real_offer()}
    response = await http.post(f"{gateway}/api/rooms/edge/join", json=body)
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]
    assert (await http.get(f"{gateway}/api/rooms/edge")).status_code == 404  # no half-made room


async def test_non_json_and_bad_room_ids(gateway: str, http: httpx.AsyncClient) -> None:
    response = await http.post(f"{gateway}/api/rooms/edge/join", content=b"\xff\xfe not json")
    assert response.status_code == 422
    body = {**join_body(), "sdp": await real_offer()}
    response = await http.post(f"{gateway}/api/rooms/bad%20room!/join", json=body)
    assert response.status_code == 400 and "room ids" in response.json()["detail"]


async def test_participants_rooms_secrets_and_capacity(
    gateway: str, http: httpx.AsyncClient
) -> None:
    first, second = (
        Participant(gateway, "pair", "ana", "en"),
        Participant(gateway, "pair", "bea", "pt"),
    )
    await first.join(http, speak=False)
    await second.join(http, speak=False)
    third = Participant(gateway, "pair", "cid", "es")
    with pytest.raises(httpx.HTTPStatusError) as full:
        await third.join(http, speak=False)
    assert full.value.response.status_code == 409 and "full" in full.value.response.json()["detail"]
    await third.close()
    base = f"{gateway}/api/rooms/pair/participants"
    wrong = await http.post(
        f"{base}/{first.participant_id}/floor", json={"secret": "nope", "action": "request"}
    )
    assert wrong.status_code == 403
    missing = await http.post(f"{base}/nobody/floor", json={"secret": "x", "action": "request"})
    assert missing.status_code == 404
    bad_action = await http.post(
        f"{base}/{first.participant_id}/floor", json={"secret": first.secret, "action": "grab"}
    )
    assert bad_action.status_code == 422
    assert (await http.get(f"{gateway}/api/rooms/nowhere")).status_code == 404
    await first.leave(http)
    await second.leave(http)


async def test_floor_mute_state_and_transcript_endpoints(
    gateway: str, http: httpx.AsyncClient
) -> None:
    ana, bea = Participant(gateway, "ctl", "ana", "en"), Participant(gateway, "ctl", "bea", "pt")
    await ana.join(http)
    await bea.join(http)
    assert (await ana.floor(http, "request"))["holder"] == ana.participant_id
    assert (await bea.floor(http, "request"))["queue"] == [bea.participant_id]
    assert (await ana.floor(http, "release"))["holder"] == bea.participant_id
    url = f"{gateway}/api/rooms/ctl/participants/{ana.participant_id}/mute"
    assert (await http.post(url, json={"secret": ana.secret, "muted": True})).status_code == 200
    state = (await http.get(f"{gateway}/api/rooms/ctl")).json()
    assert {p["name"] for p in state["participants"]} == {"ana", "bea"}
    assert state["floor"]["holder"] == bea.participant_id
    assert (await http.get(f"{gateway}/api/rooms/ctl/transcript")).json() == []
    languages = (await http.get(f"{gateway}/api/languages")).json()
    assert {"en", "pt", "es"} <= {language["code"] for language in languages}
    await ana.leave(http)
    await bea.leave(http)


@pytest.mark.parametrize(("spoken", "served"), [("pt-BR", "pt"), ("EN", "en"), ("es_ES", "es")])
async def test_a_joins_language_code_is_normalised(
    gateway: str, http: httpx.AsyncClient, spoken: str, served: str
) -> None:
    person = Participant(gateway, f"codes-{served}", "ana", spoken)
    await person.join(http, speak=False, video=False)
    state = (await http.get(f"{gateway}/api/rooms/codes-{served}")).json()
    assert [p["language"] for p in state["participants"]] == [served]
    await person.leave(http)


async def test_an_unknown_language_is_refused_with_the_supported_list(
    gateway: str, http: httpx.AsyncClient
) -> None:
    body = join_body(language="tlh", sdp=await real_offer())
    response = await http.post(f"{gateway}/api/rooms/codes/join", json=body)
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert "unknown language code 'tlh'" in detail
    assert "en, es" in detail  # the supported codes, listed


async def test_reconnect_keeps_identity_and_renegotiation_works(
    gateway: str, http: httpx.AsyncClient
) -> None:
    ana = Participant(gateway, "again", "ana", "en")
    await ana.join(http, speak=False, video=False)
    # A dropped connection: a new peer, same participant id and secret.
    again = Participant(gateway, "again", "ana", "en")
    again.participant_id, again.secret = ana.participant_id, ana.secret
    await ana.close()
    offer_pc = again.pc
    offer_pc.createDataChannel("events")
    offer_pc.addTransceiver("audio", direction="recvonly")
    await offer_pc.setLocalDescription(await offer_pc.createOffer())
    body = join_body(
        sdp=offer_pc.localDescription.sdp, participant_id=ana.participant_id, secret=ana.secret
    )
    response = await http.post(f"{gateway}/api/rooms/again/join", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["participant_id"] == ana.participant_id
    state = (await http.get(f"{gateway}/api/rooms/again")).json()
    assert len(state["participants"]) == 1  # no duplicate participant
    bad = await http.post(f"{gateway}/api/rooms/again/join", json={**body, "secret": "wrong"})
    assert bad.status_code == 403
    await offer_pc.setRemoteDescription(
        RTCSessionDescription(sdp=response.json()["sdp"], type="answer")
    )
    await until_connected(offer_pc)
    # Renegotiation: the camera view is added on the same connection.
    offer_pc.addTransceiver("video", direction="recvonly")
    await offer_pc.setLocalDescription(await offer_pc.createOffer())
    url = f"{gateway}/api/rooms/again/participants/{ana.participant_id}/offer"
    renegotiated = await http.post(
        url, json={"sdp": offer_pc.localDescription.sdp, "secret": ana.secret}
    )
    assert renegotiated.status_code == 200, renegotiated.text
    assert "m=video" in renegotiated.json()["sdp"]
    await offer_pc.setRemoteDescription(
        RTCSessionDescription(sdp=renegotiated.json()["sdp"], type="answer")
    )
    await asyncio.sleep(0.5)
    assert offer_pc.connectionState == "connected"  # renegotiation kept the connection
    await again.leave(http)


async def test_a_vanished_participant_is_removed_after_the_grace_period(
    gateway: str, http: httpx.AsyncClient
) -> None:
    ana, bea = Participant(gateway, "gone", "ana", "en"), Participant(gateway, "gone", "bea", "pt")
    await ana.join(http, speak=False)
    await bea.join(http, speak=False)
    await ana.close()  # the browser tab dies: no leave request
    for _ in range(100):
        state = (await http.get(f"{gateway}/api/rooms/gone")).json()
        if len(state["participants"]) == 1:
            break
        await asyncio.sleep(0.1)
    assert [p["name"] for p in state["participants"]] == ["bea"]
    assert any(len(e["participants"]) == 1 for e in bea.of_type("participants.changed"))
    await bea.leave(http)


def test_loopback_mode_drops_remote_candidates_outside_127() -> None:
    sdp = (
        "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
        "a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\n"
        "a=candidate:2 1 udp 2130706431 192.168.1.20 5000 typ host\r\n"
        "a=candidate:3 1 udp 2130706431 abcd.local 5000 typ host\r\n"
        "a=candidate:4 1 udp 1694498815 8.8.8.8 5000 typ srflx raddr 0.0.0.0 rport 0\r\n"
    )
    kept = keep_loopback_candidates(sdp)
    assert "127.0.0.1" in kept
    assert "192.168.1.20" not in kept and "abcd.local" not in kept and "8.8.8.8" not in kept
