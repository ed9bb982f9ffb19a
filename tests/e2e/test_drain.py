"""Graceful drain: SIGTERM mid-utterance tells everyone, refuses joins, finishes the pending
finals, exits; a second signal exits at once. A real `dragoman serve` process with room tokens
(the load tester's participants carry them)."""

from __future__ import annotations

import asyncio
import secrets
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from server.access import mint
from server.ice import use_loopback_candidates
from server.shutdown import EXIT_AT_ONCE
from testkit.fixtures import Clip, speech_48k
from testkit.peer import Participant, join_all
from testkit.server_process import LocalServer
from testkit.waiting import until

SECRET = secrets.token_urlsafe(32)
ROOM = "drain"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LocalServer]:
    env = {
        "DRAGOMAN_OPEN_ROOMS": "false",
        "DRAGOMAN_JWT_SECRET": SECRET,
        "DRAGOMAN_DRAIN_TIMEOUT_S": "40",
    }
    use_loopback_candidates(True)  # this process's peers, like the server's, stay on 127.0.0.1
    try:
        with LocalServer("turn_taking", tmp_path / "server.log", env=env) as running:
            yield running
    finally:
        use_loopback_candidates(False)


def person(server: LocalServer, name: str, language: str) -> Participant:
    participant = Participant(server.url, ROOM, name, language)
    participant.token = mint(SECRET, ROOM, name, "speaker", 600)
    return participant


async def speaking_mid_utterance(
    server: LocalServer, http: httpx.AsyncClient, clips: list[Clip]
) -> tuple[Participant, Participant]:
    ana, bel = person(server, "ana", "en"), person(server, "bel", "pt")
    await join_all(http, ana, bel, speakers=(ana,))
    assert ana.microphone is not None
    ana.microphone.say(speech_48k(clips, "en_jfk_inaugural_1961"))  # 11 s
    await until(lambda: bool(bel.of_type("speaking.changed")), 10)
    await asyncio.sleep(2.0)
    return ana, bel


async def test_sigterm_tells_everyone_finishes_pending_finals_and_exits(
    server: LocalServer, clips: list[Clip]
) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        stranger = Participant(server.url, ROOM, "eve", "en")  # no token
        with pytest.raises(httpx.HTTPStatusError) as refused:
            await stranger.join(http)
        await stranger.close()
        assert refused.value.response.status_code == 401
        ana, bel = await speaking_mid_utterance(server, http, clips)
        finals_before = len(bel.captions()) + len(bel.of_type("utterance.failed"))
        server.signal(signal.SIGTERM)
        await until(lambda: bool(bel.of_type("server.closing")), 5)
        late = person(server, "cai", "es")
        with pytest.raises((httpx.HTTPError, ConnectionError)):
            await late.join(http)
        await late.close()
        # The utterance cut by the drain still reaches the listener as a final.
        await until(
            lambda: len(bel.captions()) + len(bel.of_type("utterance.failed")) > finals_before, 40
        )
        status = await asyncio.to_thread(server.wait, 60)
        for participant in (ana, bel):
            await participant.close()
    assert status in (0, -signal.SIGTERM)
    closing = bel.of_type("server.closing")[0]
    assert closing["deadline_s"] == 40
    said = " ".join(c["source_text"] for c in bel.captions()).lower()
    assert "fellow" in said or "americans" in said


async def test_a_second_signal_exits_at_once(server: LocalServer, clips: list[Clip]) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        ana, bel = await speaking_mid_utterance(server, http, clips)
        server.signal(signal.SIGTERM)
        await until(lambda: bool(bel.of_type("server.closing")), 5)
        started = time.monotonic()
        server.signal(signal.SIGTERM)
        status = await asyncio.to_thread(server.wait, 10)
        elapsed = time.monotonic() - started
        for participant in (ana, bel):
            await participant.close()
    assert status == EXIT_AT_ONCE
    assert elapsed < 5
