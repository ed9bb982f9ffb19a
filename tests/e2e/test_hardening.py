"""The gateway tried as an attacker would, against a real `dragoman serve` process with room
tokens and real aiortc peers: seats and rooms that never free, sessions that outlive removal or
their token, malformed offers, tokens in the log, slow clients, headers."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from pipeline.models import Models
from pipeline.settings import Settings
from server.access import Role, RoomTokens, mint
from server.errors import Unauthorized
from server.ice import use_loopback_candidates
from testkit.half_open_peer import HalfOpenPeer
from testkit.harness import serving
from testkit.peer import Participant
from testkit.sdp_corpus import malformed_offers, real_offer
from testkit.server_process import LocalServer
from testkit.waiting import until

SECRET = secrets.token_urlsafe(32)
CONNECT_TIMEOUT_S = 3.0
HEADER_TIMEOUT_S = 2.0
MAX_ROOMS = 2


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    env = {
        "DRAGOMAN_OPEN_ROOMS": "false",
        "DRAGOMAN_JWT_SECRET": SECRET,
        "DRAGOMAN_CONNECT_TIMEOUT_S": str(CONNECT_TIMEOUT_S),
        "DRAGOMAN_RECONNECT_GRACE_S": "1",
        "DRAGOMAN_MAX_ROOMS": str(MAX_ROOMS),
        "DRAGOMAN_JOINS_PER_IP_PER_MINUTE": "1000",
        "DRAGOMAN_ENTRIES_PER_IP_PER_MINUTE": "1000",
        "DRAGOMAN_HEADER_READ_TIMEOUT_S": str(HEADER_TIMEOUT_S),
    }
    use_loopback_candidates(True)  # this process's peers, like the server's, stay on 127.0.0.1
    try:
        log = tmp_path_factory.mktemp("hardening") / "server.log"
        with LocalServer("turn_taking", log, env=env) as running:
            yield running
    finally:
        use_loopback_candidates(False)


def server_log(server: LocalServer) -> str:
    return server.log_path.read_text(errors="replace")


def token(
    room: str, identity: str, role: Role = "speaker", ttl_s: int = 600, name: str | None = None
) -> str:
    return mint(SECRET, room, identity, role, ttl_s, name=name)


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def person(
    server: LocalServer, room: str, identity: str, language: str = "en", ttl_s: int = 600
) -> Participant:
    participant = Participant(server.url, room, identity, language)
    participant.token = token(room, identity, ttl_s=ttl_s)
    return participant


async def room_state(http: httpx.AsyncClient, server: LocalServer, room: str) -> httpx.Response:
    moderator = bearer(token(room, "observer", "moderator"))
    return await http.get(f"{server.url}/api/rooms/{room}", headers=moderator)


async def until_closed(http: httpx.AsyncClient, server: LocalServer, room: str, s: float) -> None:
    deadline = time.monotonic() + s
    while (await room_state(http, server, room)).status_code != 404:
        if time.monotonic() > deadline:
            raise AssertionError(f"room {room} still open after {s} s")
        await asyncio.sleep(0.1)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


async def test_a_half_open_join_gives_its_seat_back_within_the_deadline(
    server: LocalServer, http: httpx.AsyncClient
) -> None:
    ghost_token = bearer(token("ghosts", "ghost", "listener"))
    ghosts = [HalfOpenPeer(server.url, "ghosts", "ghost") for _ in range(3)]
    for ghost in ghosts:  # one invitation, joined three times
        await ghost.join(http, ghost_token)
    state = (await room_state(http, server, "ghosts")).json()
    assert len(state["participants"]) == 1  # one identity, one seat
    assert state["participants"][0]["connected"] is False  # ICE is up, DTLS never was
    started = time.monotonic()
    await until_closed(http, server, "ghosts", CONNECT_TIMEOUT_S + 5)
    assert time.monotonic() - started >= CONNECT_TIMEOUT_S - 1
    for ghost in ghosts:
        await ghost.close()
    # The room is usable again, and a real peer shows as connected.
    ana = person(server, "ghosts", "ana")
    await ana.join(http, speak=False, video=False)
    state = (await room_state(http, server, "ghosts")).json()
    assert [(p["name"], p["connected"]) for p in state["participants"]] == [("ana", True)]
    await ana.leave(http)
    await until_closed(http, server, "ghosts", 5)


async def test_rooms_emptied_by_drop_out_or_removal_close_and_free_their_slot(
    server: LocalServer, http: httpx.AsyncClient
) -> None:
    # A browser crash: no leave; the seat expires after the grace period, the room closes.
    crashed = person(server, "dropped", "ana")
    await crashed.join(http, speak=False, video=False)
    await crashed.close()
    await until_closed(http, server, "dropped", 10)
    # A moderator (who need not be in the room) removes its only participant.
    lone = person(server, "removed", "ben")
    await lone.join(http, speak=False, video=False)
    moderator = bearer(token("removed", "mo", "moderator"))
    url = f"{server.url}/api/rooms/removed/participants/{lone.participant_id}/moderate"
    assert (await http.post(url, json={"action": "remove"}, headers=moderator)).status_code == 204
    await until_closed(http, server, "removed", 5)
    await lone.close()
    # No room leaked: new rooms up to the limit open, one more is refused.
    people = [person(server, f"fresh-{n}", "cid") for n in range(MAX_ROOMS)]
    for someone in people:
        await someone.join(http, speak=False, video=False)
    extra = person(server, "one-too-many", "dan")
    with pytest.raises(httpx.HTTPStatusError) as refused:
        await extra.join(http, speak=False, video=False)
    assert refused.value.response.status_code == 429
    await extra.close()
    for someone in people:
        await someone.leave(http)
    for n in range(MAX_ROOMS):
        await until_closed(http, server, f"fresh-{n}", 5)


async def test_no_token_reaches_the_log(server: LocalServer, http: httpx.AsyncClient) -> None:
    invitation = token("logged", "eve", "moderator")
    page = await http.get(f"{server.url}/?room=logged&token={invitation}")
    assert page.status_code == 200
    assert (await http.get(f"{server.url}/js/app.js?token={invitation}")).status_code == 200
    entry = await http.get(f"{server.url}/api/rooms/logged/entry", headers=bearer(invitation))
    assert entry.status_code == 200
    eve = Participant(server.url, "logged", "eve", "en")
    eve.token = invitation
    await eve.join(http, speak=False, video=False)
    await eve.leave(http)
    await until_closed(http, server, "logged", 5)
    log = server_log(server)
    assert invitation not in log
    assert invitation.split(".")[2] not in log  # not even the signature
    assert '"GET /" 200' in log  # the access log is there, without its query string
    assert "token=" not in log and eve.secret not in log and SECRET not in log


async def test_removal_ends_every_session_of_the_identity_and_bars_it(
    server: LocalServer, http: httpx.AsyncClient
) -> None:
    ben_token = token("board", "ben")
    earlier_invitation = token("board", "ben")  # issued before the removal, never used
    first = Participant(server.url, "board", "ben", "en")
    second = Participant(server.url, "board", "ben", "pt")
    first.token = second.token = ben_token
    await first.join(http, speak=False, video=False)
    await second.join(http, speak=False, video=False)  # the same identity, another window
    await until(lambda: bool(first.of_type("session.ended")), 5)
    assert first.of_type("session.ended")[0]["reason"] == "replaced"
    await until(lambda: first.pc.connectionState in ("closed", "failed"), 10)
    state = (await room_state(http, server, "board")).json()
    assert [(p["name"], p["language"]) for p in state["participants"]] == [("ben", "pt")]
    assert second.participant_id == first.participant_id  # the reconnect path, one seat

    moderator = bearer(token("board", "mo", "moderator"))
    url = f"{server.url}/api/rooms/board/participants/{second.participant_id}/moderate"
    assert (await http.post(url, json={"action": "remove"}, headers=moderator)).status_code == 204
    await until(lambda: bool(second.of_type("session.ended")), 5)
    assert second.of_type("session.ended")[0]["reason"] == "removed"
    await until(lambda: second.pc.connectionState in ("closed", "failed"), 10)
    heard_before = second.heard.count
    await asyncio.sleep(1.0)
    assert second.heard.count == heard_before  # no media after removal
    for old in (ben_token, earlier_invitation):
        again = Participant(server.url, "board", "ben", "en")
        again.token = old
        with pytest.raises(httpx.HTTPStatusError) as barred:
            await again.join(http, speak=False, video=False)
        assert barred.value.response.status_code == 403
        assert "removed you" in barred.value.response.json()["detail"]
        await again.close()
    await asyncio.sleep(1.1)  # a new invitation, issued after the removal, lets ben back in
    back = person(server, "board", "ben")
    await back.join(http, speak=False, video=False)
    await back.leave(http)
    for session in (first, second):
        await session.close()
    await until_closed(http, server, "board", 5)


async def test_malformed_offers_get_a_4xx_and_leave_no_traceback(
    server: LocalServer, http: httpx.AsyncClient
) -> None:
    corpus = malformed_offers(await real_offer())
    assert len(corpus) >= 30
    headers = bearer(token("offers", "mallory"))
    url = f"{server.url}/api/rooms/offers/join"
    for name, offer in corpus:
        response = await http.post(
            url, json={"name": "m", "language": "en", "sdp": offer}, headers=headers
        )
        assert 400 <= response.status_code < 500, (name, response.status_code, response.text)
        detail = response.json()["detail"]
        assert detail and "\n" not in detail, (name, detail)
    assert (await room_state(http, server, "offers")).status_code == 404  # nothing half-built
    assert (await http.get(f"{server.url}/healthz")).status_code == 200
    log = server_log(server)
    assert "Traceback" not in log and " ERROR " not in log


async def test_the_tokens_name_is_the_display_name(
    server: LocalServer, http: httpx.AsyncClient
) -> None:
    named = Participant(server.url, "names", "mallory", "en")  # asks for another name
    named.token = token("names", "ana-id", name="Ana Real")
    await named.join(http, speak=False, video=False)
    state = (await room_state(http, server, "names")).json()
    assert [p["name"] for p in state["participants"]] == ["Ana Real"]
    await named.leave(http)
    await until_closed(http, server, "names", 5)


async def test_a_session_ends_with_an_event_when_its_token_expires(
    server: LocalServer, http: httpx.AsyncClient
) -> None:
    brief = person(server, "brief", "ana", ttl_s=4)
    await brief.join(http, speak=False, video=False)
    await until(lambda: bool(brief.of_type("session.ended")), 8)
    assert brief.of_type("session.ended")[0]["reason"] == "token_expired"
    await until_closed(http, server, "brief", 5)
    await brief.close()


async def test_a_moderators_mute_holds_until_a_moderator_lifts_it(
    server: LocalServer, http: httpx.AsyncClient
) -> None:
    ben = person(server, "mutes", "ben")
    await ben.join(http, speak=True, video=False)
    base = f"{server.url}/api/rooms/mutes/participants/{ben.participant_id}"
    moderator = bearer(token("mutes", "mo", "moderator"))
    own = bearer(ben.token or "")
    unmute = {"secret": ben.secret, "muted": False}

    async def moderate(action: str) -> int:
        response = await http.post(f"{base}/moderate", json={"action": action}, headers=moderator)
        return response.status_code

    assert await moderate("mute") == 204
    refused = await http.post(f"{base}/mute", json=unmute, headers=own)
    assert refused.status_code == 403 and "moderator" in refused.json()["detail"]
    # Joining again does not lift it: the same identity gets the same seat back.
    again = person(server, "mutes", "ben")
    await again.join(http, speak=True, video=False)
    state = (await room_state(http, server, "mutes")).json()
    assert state["participants"][0]["muted"] and state["participants"][0]["muted_by_moderator"]
    unmute = {"secret": again.secret, "muted": False}
    assert (await http.post(f"{base}/mute", json=unmute, headers=own)).status_code == 403
    assert await moderate("unmute") == 204
    allowed = await http.post(f"{base}/mute", json=unmute, headers=own)
    assert allowed.status_code == 200 and allowed.json()["muted"] is False
    await ben.close()
    ben = again
    await ben.leave(http)
    await until_closed(http, server, "mutes", 5)


async def test_a_client_that_sends_its_headers_slowly_is_cut_off(server: LocalServer) -> None:
    url = httpx.URL(server.url)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()
    closed_after = None
    for _ in range(20):  # one header byte a second, never the blank line
        try:
            writer.write(b"X")
            await writer.drain()
            if await asyncio.wait_for(reader.read(1), timeout=1.0) == b"":
                closed_after = time.monotonic() - started
                break
        except TimeoutError:
            continue
        except ConnectionError:
            closed_after = time.monotonic() - started
            break
    writer.close()
    assert closed_after is not None and closed_after < HEADER_TIMEOUT_S + 2


async def test_pages_and_scripts_carry_security_headers_and_docs_need_no_cdn(
    server: LocalServer, http: httpx.AsyncClient
) -> None:
    for path in ("/", "/js/app.js", "/docs", "/docs/init.js", "/api/languages"):
        response = await http.get(f"{server.url}{path}")
        assert response.status_code == 200, path
        policy = response.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert "script-src 'self';" in policy  # no inline script, no other origin
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
    docs = (await http.get(f"{server.url}/docs")).text
    assert "http://" not in docs and "https://" not in docs and "<script>" not in docs
    bundle = await http.get(f"{server.url}/docs/assets/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and len(bundle.content) > 100_000


async def test_forwarded_addresses_count_only_from_trusted_proxies(
    settings: Settings, models: Models
) -> None:
    strict = settings.model_copy(update={"joins_per_ip_per_minute": 2})
    body = {"name": "x", "language": "en", "sdp": await real_offer()}
    spoofed = [{"X-Forwarded-For": f"203.0.113.{n}"} for n in range(3)]
    async with serving(strict, models) as url, httpx.AsyncClient(timeout=30) as http:
        statuses = [
            (await http.post(f"{url}/api/rooms/xff/join", json=body, headers=h)).status_code
            for h in spoofed
        ]
    assert statuses[2] == 429  # not trusted: one address, one limit
    behind_proxy = strict.model_copy(update={"trusted_proxies": ["127.0.0.1"]})
    async with serving(behind_proxy, models) as url, httpx.AsyncClient(timeout=30) as http:
        statuses = [
            (await http.post(f"{url}/api/rooms/xff/join", json=body, headers=h)).status_code
            for h in spoofed
        ]
    assert 429 not in statuses  # each forwarded client has its own limit


async def test_entry_lookups_are_rate_limited(settings: Settings, models: Models) -> None:
    strict = settings.model_copy(update={"entries_per_ip_per_minute": 3})
    async with serving(strict, models) as url, httpx.AsyncClient(timeout=30) as http:
        statuses = [(await http.get(f"{url}/api/rooms/r{n}/entry")).status_code for n in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_a_token_name_claim_is_bounded() -> None:
    long_name = token("r", "ana", name="x" * 65)
    with pytest.raises(Unauthorized):
        RoomTokens(SECRET).admit("r", f"Bearer {long_name}")
