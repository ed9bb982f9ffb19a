"""The gateway with real aiortc peers on 127.0.0.1, the real default models and fixture speech."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import httpx
import numpy as np
import pytest

from loadtest.harness import local_gateway
from loadtest.peer import Participant
from pipeline.audio import ASR_SAMPLE_RATE, read_file, resample
from pipeline.fixtures import Clip
from pipeline.models import Models
from pipeline.quality import word_errors
from pipeline.settings import Settings
from server.ice import use_loopback_candidates
from tests.conftest import clip_named


@pytest.fixture
async def gateway(settings: Settings, models: Models) -> AsyncIterator[str]:
    use_loopback_candidates(True)
    async with local_gateway(settings, models) as url:
        yield url
    use_loopback_candidates(False)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=60) as client:
        yield client


def speech_48k(clips: list[Clip], name: str) -> np.ndarray:  # type: ignore[type-arg]
    return read_file(clip_named(clips, name).path, 48000).samples


def from_speaker(listener: Participant, speaker: Participant) -> list[dict[str, object]]:
    return [c for c in listener.captions() if c["speaker"] == speaker.participant_id]


def dubbed_offline(models: Models, captions: list[dict[str, object]], language: str) -> np.ndarray:  # type: ignore[type-arg]
    """The captions spoken one by one, as the server synthesises them, with short pauses."""
    pause = np.zeros(14400, dtype=np.float32)
    parts = [models.voices.synthesize(str(c["target_text"]), language).samples for c in captions]
    return np.concatenate([piece for part in parts for piece in (part, pause)])


def heard_wer(models: Models, said: str, audio_48k: np.ndarray, language: str) -> float:  # type: ignore[type-arg]
    text = models.recognizer.transcribe(resample(audio_48k, 48000, ASR_SAMPLE_RATE), language).text
    edits, words = word_errors(said, text, language)
    return edits / words


async def until(condition: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        await asyncio.sleep(0.1)


async def join_all(
    http: httpx.AsyncClient, *people: Participant, speakers: tuple[Participant, ...] = ()
) -> None:
    for person in people:
        await person.join(http, speak=person in speakers)
    await asyncio.sleep(0.5)


async def leave_all(http: httpx.AsyncClient, *people: Participant) -> None:
    for person in people:
        await person.leave(http)


async def test_three_person_room_translates_for_each_listener(
    gateway: str, http: httpx.AsyncClient, clips: list[Clip], models: Models
) -> None:
    alice, bruno, carla = (
        Participant(gateway, "trio", n, lang)
        for n, lang in [("alice", "en"), ("bruno", "pt"), ("carla", "es")]
    )
    await join_all(http, alice, bruno, carla, speakers=(alice,))
    assert alice.microphone is not None
    alice.microphone.say(speech_48k(clips, "en_jfk_inaugural_1961"))
    await until(lambda: not alice.microphone.speaking, 20)  # type: ignore[union-attr]
    await until(lambda: len(bruno.captions()) >= 3 and len(carla.captions()) >= 3, 15)
    await asyncio.sleep(4.0)  # let the translated speech play out
    started = alice.microphone.spoken[0][0]
    for listener, language in ((bruno, "pt"), (carla, "es")):
        captions = listener.captions()
        assert all(
            c["source_language"] == "en" and c["speaker"] == alice.participant_id for c in captions
        )
        assert [c["sequence"] for c in captions] == sorted(c["sequence"] for c in captions)
        arrivals = [at for at, _ in listener.heard.frames if at >= started]
        assert len(arrivals) >= 0.9 * (arrivals[-1] - arrivals[0]) / 0.02  # full packet rate
        said = " ".join(c["target_text"] for c in captions)
        heard = np.concatenate([s for at, s in listener.heard.frames if at >= started])
        received = heard_wer(models, said, heard, language)
        # espeak-ng's pt-br voice is hard for Whisper base even with no network in between, so the
        # bar is 40 %, or what the same voice scores offline plus 15 points: the gateway's share.
        offline = heard_wer(models, said, dubbed_offline(models, captions, language), language)
        assert received <= max(0.40, offline + 0.15), (language, received, offline)
        assert listener.video_frames > 0
    assert [c["target_text"] for c in alice.captions()]  # the speaker reads their own words
    assert not bruno.of_type("utterance.failed") and not carla.of_type("utterance.failed")
    await leave_all(http, alice, bruno, carla)


async def test_two_speakers_at_once_one_is_queued_then_served(
    gateway: str, http: httpx.AsyncClient, clips: list[Clip]
) -> None:
    dora, eva = (
        Participant(gateway, "duet", "dora", "en"),
        Participant(gateway, "duet", "eva", "pt"),
    )
    await join_all(http, dora, eva, speakers=(dora, eva))
    assert dora.microphone is not None and eva.microphone is not None
    dora.microphone.say(speech_48k(clips, "en_commonvoice_platforms"))
    eva.microphone.say(speech_48k(clips, "pt_commonvoice_raposa"))
    ids = {dora.participant_id, eva.participant_id}

    def contested() -> list[dict[str, object]]:
        return [e for e in dora.of_type("floor.changed") if e["holder"] in ids and e["queue"]]

    await until(lambda: bool(contested()), 10)
    first = contested()[0]
    assert first["queue"] == list(ids - {first["holder"]})  # the other one waits, visibly
    await until(lambda: bool(from_speaker(eva, dora)) and bool(from_speaker(dora, eva)), 25)
    assert "platforms" in from_speaker(eva, dora)[0]["source_text"].lower()
    assert "raposa" in from_speaker(dora, eva)[0]["source_text"].lower()
    holders = [e["holder"] for e in dora.of_type("floor.changed") if e["holder"]]
    assert set(holders) == ids  # the queued speaker got the floor after, and was served
    assert not eva.of_type("utterance.dropped") and not dora.of_type("utterance.dropped")
    await leave_all(http, dora, eva)


async def test_joining_and_leaving_mid_utterance_loses_no_finals(
    gateway: str, http: httpx.AsyncClient, clips: list[Clip]
) -> None:
    fred, gil, hana = (
        Participant(gateway, "churn", n, lang)
        for n, lang in [("fred", "en"), ("gil", "pt"), ("hana", "es")]
    )
    await join_all(http, fred, gil, speakers=(fred,))
    assert fred.microphone is not None
    fred.microphone.say(speech_48k(clips, "en_jfk_inaugural_1961"))
    await asyncio.sleep(4.0)
    await hana.join(http, speak=False)  # a listener joins mid-utterance
    await asyncio.sleep(4.0)
    await fred.leave(http)  # the speaker leaves mid-utterance: the open segment is flushed
    await until(lambda: len(gil.captions()) >= 3, 15)
    sequences = [c["sequence"] for c in gil.captions()]
    assert sequences == list(range(len(sequences)))  # nothing lost, nothing duplicated
    assert any(
        e["participants"] and len(e["participants"]) == 2
        for e in gil.of_type("participants.changed")
    )
    assert hana.captions()  # the late listener gets the finals from the moment it joined
    await leave_all(http, gil, hana)
    assert (await http.get(f"{gateway}/api/rooms/churn")).status_code == 404  # empty rooms close
