"""Hostile signalling input: a corpus of malformed requests, and property-based fuzzing of every
request model. Always a 4xx with a message; never a 5xx; the server keeps serving."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from pipeline.models import Models
from pipeline.settings import Settings
from server.api import (
    FloorAction,
    JoinRequest,
    LipsyncChoice,
    Moderation,
    MuteAction,
    Renegotiation,
    RoomLipsync,
    RoomPlayout,
    RoomVoices,
)
from testkit.harness import serving
from testkit.server_process import LocalServer
from tests.conftest import ARTIFACTS

SDP_HEAD = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
AUDIO = "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:111 opus/48000/2\r\n"
ICE = "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n"
FINGERPRINT = "a=fingerprint:sha-256 " + ":".join(["AB"] * 32) + "\r\n"
JOIN = "/api/rooms/hostile/join"


def join(**changes: object) -> bytes:
    body = {"name": "mallory", "language": "en", "sdp": SDP_HEAD + AUDIO + ICE + FINGERPRINT}
    return json.dumps({**body, **changes}).encode()


def sdp(text: str) -> bytes:
    return join(sdp=text)


# (method, path, body bytes or None, extra headers)
CORPUS: list[tuple[str, str, bytes | None, dict[str, str]]] = [
    # Not JSON, wrong JSON, wrong types
    ("POST", JOIN, b"", {}),
    ("POST", JOIN, b"{", {}),
    ("POST", JOIN, b"null", {}),
    ("POST", JOIN, b"[]", {}),
    ("POST", JOIN, b'"offer"', {}),
    ("POST", JOIN, b"\xff\xfe\x00garbage", {}),
    ("POST", JOIN, '{"name": "\udcff"}'.encode("utf-8", "surrogatepass"), {}),
    ("POST", JOIN, join(name=None), {}),
    ("POST", JOIN, join(name=["a"]), {}),
    ("POST", JOIN, join(name="x" * 10_000), {}),
    ("POST", JOIN, join(language=12), {}),
    ("POST", JOIN, join(language="x" * 100), {}),
    ("POST", JOIN, join(language="../../etc/passwd"), {}),
    ("POST", JOIN, join(language="EN-us-x-private-extension"), {}),
    ("POST", JOIN, join(type="pranswer"), {}),
    ("POST", JOIN, join(sdp=None), {}),
    ("POST", JOIN, join(sdp=123456789), {}),
    ("POST", JOIN, join(sdp={"nested": True}), {}),
    ("POST", JOIN, join(participant_id=1e308), {}),
    ("POST", JOIN, join(participant_id="nobody", secret="x"), {}),
    ("POST", JOIN, join(participant_id="p" * 1000), {}),
    ("POST", JOIN, b'{"name": "a", "name": "b", "language": "en", "sdp": "v=0"}', {}),
    ("POST", JOIN, b'{"name": 1e999, "language": "en", "sdp": "v=0\\r\\nm=audio"}', {}),
    ("POST", JOIN, b'{"name": 123456789012345678901234567890, "language": "en"}', {}),
    ("POST", JOIN, join(), {"content-type": "text/plain"}),
    # Truncated and garbage SDP
    ("POST", JOIN, sdp(""), {}),
    ("POST", JOIN, sdp("v=0"), {}),
    ("POST", JOIN, sdp(SDP_HEAD), {}),
    ("POST", JOIN, sdp(SDP_HEAD + AUDIO[:20]), {}),
    ("POST", JOIN, sdp((SDP_HEAD + AUDIO + ICE + FINGERPRINT)[:-40]), {}),
    ("POST", JOIN, sdp("v=0\r\nm=" + "\x00" * 100), {}),
    ("POST", JOIN, sdp("v=0\r\nm=audio 9 UDP 0\r\n" + "a=" * 5000), {}),
    ("POST", JOIN, sdp("v=0\r\n" + "".join(chr(c) for c in range(1, 2000))), {}),
    ("POST", JOIN, sdp("v=0\r\nm=audio 99999999999999999999 RTP/AVP 0\r\n"), {}),
    ("POST", JOIN, sdp("v=0\r\nm=video -1 RTP/AVP 96\r\na=rtpmap:96 VP8/-90000\r\n"), {}),
    ("POST", JOIN, sdp("v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"), {}),
    # Missing fingerprint or ICE credentials
    ("POST", JOIN, sdp(SDP_HEAD + AUDIO + ICE), {}),
    ("POST", JOIN, sdp(SDP_HEAD + AUDIO + FINGERPRINT), {}),
    ("POST", JOIN, sdp(SDP_HEAD + AUDIO), {}),
    ("POST", JOIN, sdp(SDP_HEAD + AUDIO + "a=ice-ufrag:\r\na=ice-pwd:\r\n" + FINGERPRINT), {}),
    ("POST", JOIN, sdp(SDP_HEAD + AUDIO + ICE + "a=fingerprint:md5 00\r\n"), {}),
    # Thousands of m-lines, huge SDP, huge body
    ("POST", JOIN, sdp(SDP_HEAD + AUDIO * 3000), {}),
    ("POST", JOIN, sdp(SDP_HEAD + AUDIO * 9), {}),
    ("POST", JOIN, sdp("v=0\r\n" + "x" * 70_000), {}),
    ("POST", JOIN, b"{" + b'"a":1,' * 100_000 + b'"b":2}', {}),
    # Replayed or misdirected answers and ids
    ("POST", JOIN, join(type="answer"), {}),
    ("POST", "/api/rooms/hostile/participants/nobody/offer", join(secret="s"), {}),
    ("POST", "/api/rooms/hostile/participants/nobody/floor", b'{"secret":"s","action":"x"}', {}),
    ("POST", "/api/rooms/hostile/participants/nobody/mute", b'{"secret":"s","muted":"maybe"}', {}),
    ("POST", "/api/rooms/hostile/participants/nobody/leave", b'{"secret":""}', {}),
    ("POST", "/api/rooms/hostile/participants/nobody/moderate", b'{"action":"ban"}', {}),
    # Bad room ids and paths
    ("POST", "/api/rooms/" + "r" * 65 + "/join", join(), {}),
    ("POST", "/api/rooms/bad%20room/join", join(), {}),
    ("POST", "/api/rooms/%00/join", join(), {}),
    ("GET", "/api/rooms/..%2F..%2Fetc/transcript", None, {}),
    ("GET", "/api/rooms/nowhere", None, {}),
    ("GET", "/api/rooms/nowhere/transcript", None, {}),
    ("GET", "/api/rooms/bad%20room/entry", None, {}),
    ("DELETE", JOIN, None, {}),
    ("PUT", JOIN, join(), {}),
]


async def raw_post(base: str, path: str, body: bytes, content_length: bytes) -> int:
    """A request with a declared Content-Length that does not match its body."""
    url = httpx.URL(base)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {url.host}\r\nContent-Type: application/json\r\n"
        "Connection: close\r\n"
    ).encode()
    writer.write(head + b"Content-Length: " + content_length + b"\r\n\r\n" + body)
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), timeout=10)
    writer.close()
    await writer.wait_closed()
    return int(status_line.split()[1])


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `dragoman serve` process: a crash would show as a dead server."""
    log = tmp_path_factory.mktemp("fuzz") / "server.log"
    with LocalServer("turn_taking", log) as server:
        yield server.url


@pytest.fixture
async def target(settings: Settings, models: Models) -> AsyncIterator[str]:
    lenient = settings.model_copy(update={"joins_per_ip_per_minute": 100_000})
    async with serving(lenient, models) as url:
        yield url


async def test_the_malformed_signalling_corpus_gets_4xx_and_never_5xx(target: str) -> None:
    assert len(CORPUS) >= 50
    statuses: Counter[int] = Counter()
    async with httpx.AsyncClient(timeout=30) as http:
        for method, path, body, headers in CORPUS:
            response = await http.request(method, f"{target}{path}", content=body, headers=headers)
            statuses[response.status_code] += 1
            assert 400 <= response.status_code < 500, (path, body and body[:80], response.text)
            if response.headers.get("content-type", "").startswith("application/json"):
                assert response.json()["detail"], (path, response.text)
        for length in (b"99999999999", b"-1", b"12abc"):  # lies the HTTP client will not tell
            status = await raw_post(target, JOIN, join(), length)
            statuses[status] += 1
            assert 400 <= status < 500  # 413 from the body limit, or 400 from the parser
        assert (await http.get(f"{target}/healthz")).status_code == 200
    ARTIFACTS.mkdir(exist_ok=True)
    inputs = sum(statuses.values())
    summary = {"inputs": inputs, "statuses": dict(statuses), "5xx": 0, "crashes": 0}
    (ARTIFACTS / "hostile-corpus.json").write_text(json.dumps(summary, indent=2))


TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=200)
JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=10,
)


def fields_of(model: type) -> st.SearchStrategy[dict[str, object]]:
    """Bodies with the model's field names and anything as values, plus stray fields."""
    names = list(model.model_fields)  # type: ignore[attr-defined]
    known = st.fixed_dictionaries({}, optional={name: JSONISH for name in names})
    return st.builds(lambda a, b: {**b, **a}, known, st.dictionaries(TEXT, JSONISH, max_size=3))


ENDPOINTS = {
    JoinRequest: "/api/rooms/fuzz/join",
    Renegotiation: "/api/rooms/fuzz/participants/p/offer",
    FloorAction: "/api/rooms/fuzz/participants/p/floor",
    MuteAction: "/api/rooms/fuzz/participants/p/mute",
    Moderation: "/api/rooms/fuzz/participants/p/moderate",
    LipsyncChoice: "/api/rooms/fuzz/participants/p/lipsync",
    RoomLipsync: "/api/rooms/fuzz/lipsync",
    RoomVoices: "/api/rooms/fuzz/voices",
    RoomPlayout: "/api/rooms/fuzz/playout",
}


@pytest.mark.parametrize("model", list(ENDPOINTS), ids=lambda m: m.__name__)
def test_fuzzed_request_bodies_never_get_a_5xx(model: type, fuzz_target: str) -> None:
    path = ENDPOINTS[model]
    seen: Counter[int] = Counter()

    @hypothesis_settings(
        max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    @given(body=fields_of(model))
    def post(body: dict[str, object]) -> None:
        response = httpx.post(f"{fuzz_target}{path}", json=body, timeout=30)
        seen[response.status_code] += 1
        assert response.status_code < 500, (body, response.text)

    post()
    assert sum(seen.values()) >= 60
    assert httpx.get(f"{fuzz_target}/healthz", timeout=10).status_code == 200
