"""The gateway with real aiortc peers on 127.0.0.1, the real default models and fixture speech."""

from __future__ import annotations

import asyncio
import time

import httpx
import numpy as np

from pipeline.audio import ASR_SAMPLE_RATE, resample
from pipeline.models import Models
from testkit.fixtures import Clip, speech_48k
from testkit.peer import Participant, from_speaker, join_all, leave_all
from testkit.quality import word_errors
from testkit.waiting import until


def played_out(listener: Participant, quiet_s: float = 4.0) -> bool:
    """Quiet for `quiet_s` after a sound that followed the last caption: long enough for a
    Kokoro dub still being synthesised (2–3 s per sentence here) to have started."""
    last_caption = max(
        (at for at, e in listener.events if e["type"] == "caption.final"), default=0.0
    )
    last_sound = listener.heard.last_sound()
    return time.time() - max(last_caption, last_sound) > quiet_s and last_sound > last_caption


def envelope(audio: np.ndarray, hop: int = 480) -> np.ndarray:  # type: ignore[type-arg]
    frames = len(audio) // hop
    return np.sqrt(np.mean(audio[: frames * hop].reshape(frames, hop) ** 2, axis=1))


def envelope_match(received: np.ndarray, expected: np.ndarray) -> float:  # type: ignore[type-arg]
    """Best Pearson correlation of the expected speech's 10 ms loudness envelope, slid along
    the received audio: near 1 when that speech arrived intact (Opus changes the waveform,
    not the envelope)."""
    big, small = envelope(received), envelope(expected)
    if len(big) < len(small) or small.std() == 0:
        return 0.0
    windows = np.lib.stride_tricks.sliding_window_view(big, len(small))
    centred = windows - windows.mean(axis=1, keepdims=True)
    target = small - small.mean()
    denominator = np.linalg.norm(centred, axis=1) * np.linalg.norm(target) + 1e-12
    return float(np.max(centred @ target / denominator))


def best_envelope_match(
    models: Models,
    heard: np.ndarray,  # type: ignore[type-arg]
    caption: dict[str, object],
    language: str,
) -> float:
    """The caption's speech found in what was heard, clause by clause (a dub plays as its
    clauses are spoken, so a busy machine may pause between them), in whichever of the
    language's voices the room cast for the speaker (or its fast voice, for a dub that ran
    late): each clause's match, weighted by its length."""
    text = str(caption["target_text"])

    def spoken_as(voice: str) -> float:
        clauses = [c.samples for c in models.voices.clauses(text, language, voice)]
        lengths = np.array([len(c) for c in clauses], dtype=np.float64)
        matches = np.array([envelope_match(heard, c) for c in clauses])
        return float(matches @ lengths / lengths.sum())

    return max(
        spoken_as(voice)
        for voice in (*models.voices.candidates(language), models.voices.fallback(language))
    )


def heard_wer(models: Models, said: str, audio_48k: np.ndarray, language: str) -> float:  # type: ignore[type-arg]
    text = models.recognizer.transcribe(resample(audio_48k, 48000, ASR_SAMPLE_RATE), language).text
    edits, words = word_errors(said, text, language)
    return edits / words


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
    # Let the translated speech play out: each listener quiet for a while after its last caption.
    await until(lambda: all(played_out(p) for p in (bruno, carla)), 30)
    started = alice.microphone.spoken[0][0]
    for listener, language in ((bruno, "pt"), (carla, "es")):
        captions = listener.captions()
        assert all(
            c["source_language"] == "en" and c["speaker"] == alice.participant_id for c in captions
        )
        assert [c["sequence"] for c in captions] == sorted(c["sequence"] for c in captions)
        arrivals = [at for at, _ in listener.heard.frames if at >= started]
        assert len(arrivals) >= 0.9 * (arrivals[-1] - arrivals[0]) / 0.02  # full packet rate
        heard = np.concatenate([s for at, s in listener.heard.frames if at >= started])
        # Each caption's own speech arrived, intact.
        matches = [best_envelope_match(models, heard, c, language) for c in captions]
        assert all(m >= 0.8 for m in matches), (matches, captions)
        # Each dub was announced as it started: in order, and heard from that moment.
        starts = listener.dub_starts()
        assert list(starts) == [c["utterance_id"] for c in captions]
        for at in starts.values():
            sound = listener.heard.first_sound_after(at - 0.1)
            assert sound is not None and sound - at < 0.5
        said = " ".join(c["target_text"] for c in captions)
        assert heard_wer(models, said, heard, language) <= 0.40
        assert listener.video_frames > 0
    assert [c["target_text"] for c in alice.captions()]  # the speaker reads their own words
    assert not alice.dub_starts()  # nothing is dubbed into the speaker's own language
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
    people = [("fred", "en"), ("gil", "pt"), ("hana", "es"), ("ivo", "es")]
    fred, gil, hana, ivo = (Participant(gateway, "churn", name, lang) for name, lang in people)
    await join_all(http, fred, gil, ivo, speakers=(fred,))
    assert fred.microphone is not None
    fred.microphone.say(speech_48k(clips, "en_jfk_inaugural_1961"))
    await asyncio.sleep(3.0)
    await hana.join(http, speak=False)  # a listener joins mid-utterance
    await ivo.leave(http)  # another leaves mid-utterance
    await asyncio.sleep(5.0)
    await fred.leave(http)  # the speaker leaves mid-utterance: the open segment is flushed
    await until(lambda: len(gil.captions()) >= 3, 15)
    await asyncio.sleep(1.0)
    sequences = [c["sequence"] for c in gil.captions()]
    assert sequences == list(range(len(sequences)))  # nothing lost, nothing duplicated
    assert hana.captions()  # the late listener gets the finals from the moment it joined
    assert {c["sequence"] for c in hana.captions()} <= set(sequences)
    await leave_all(http, gil, hana)
    assert (await http.get(f"{gateway}/api/rooms/churn")).status_code == 404  # empty rooms close
