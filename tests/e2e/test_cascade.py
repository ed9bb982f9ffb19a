"""The cascade: ASR once, one terminal event per target language, failures as events."""

from __future__ import annotations

import asyncio
import threading

import pytest

from pipeline.audio import read_file
from pipeline.cascade import Cascade, Utterance
from pipeline.events import PIPELINE_EVENT, CaptionFinal, UtteranceFailed
from pipeline.models import Models
from pipeline.mt.routes import RoutedTranslator, RoutePlanner
from pipeline.segmenter import Segment
from testkit.fakes import FakeRecognizer, FakeTranslator, FakeVoice
from testkit.fixtures import Clip, clip_named
from testkit.signals import white_noise


def utterance_of(clip: Clip, ratio: float = 0.9) -> Utterance:
    segment = Segment(0, 1.5, read_file(clip.path).samples, speech_ratio=ratio)
    return Utterance("u-1", "alice", 7, clip.language, segment)


def test_asr_runs_once_for_many_targets(models: Models, clips: list[Clip]) -> None:
    recognizer = FakeRecognizer(inner=models.recognizer)
    cascade = Cascade(recognizer, models.translator, models.voices)
    result = cascade.process(
        utterance_of(clip_named(clips, "en_commonvoice_platforms")), ["pt", "es", "fr", "pt"]
    )
    assert len(recognizer.calls) == 1
    assert sorted(result.translations) == ["es", "fr", "pt"]
    for language, translation in result.translations.items():
        event = translation.event
        assert isinstance(event, CaptionFinal), event
        assert event.target_language == language and event.target_text
        assert event.sequence == 7 and event.speaker == "alice"
        assert event.speech_start_s == 1.5
        assert translation.speech is not None and translation.speech.sample_rate == 48000
    assert "plataformas" in result.translations["pt"].event.target_text.lower()  # type: ignore[union-attr]


def test_a_failing_language_fails_alone(models: Models, clips: list[Clip]) -> None:
    broken = FakeTranslator({("en", "de"): 0.9}, name="broken", failing={"de": "backend crashed"})
    translator = RoutedTranslator(RoutePlanner([*models.translator.planner.backends, broken]))
    cascade = Cascade(models.recognizer, translator, models.voices)
    result = cascade.process(
        utterance_of(clip_named(clips, "en_commonvoice_platforms")), ["de", "pt"]
    )
    failed = result.translations["de"].event
    assert isinstance(failed, UtteranceFailed)
    assert (failed.stage, failed.reason, failed.target_language) == ("mt", "backend crashed", "de")
    assert isinstance(result.translations["pt"].event, CaptionFinal)


def test_no_speech_is_dropped_before_asr(models: Models) -> None:
    recognizer = FakeRecognizer(inner=models.recognizer)
    cascade = Cascade(recognizer, models.translator, models.voices, min_speech_ratio=0.15)
    noise = Utterance("u-2", "bob", 0, "en", Segment(0, 0.0, white_noise(2.0), speech_ratio=0.05))
    result = cascade.process(noise, ["pt"])
    assert recognizer.calls == []
    assert result.dropped is not None and result.dropped.reason == "no_speech"
    assert result.translations == {}


def test_noise_that_passes_the_gate_is_dropped_by_asr(models: Models) -> None:
    cascade = Cascade(models.recognizer, models.translator, models.voices)
    result = cascade.process(
        Utterance("u-3", "bob", 0, "en", Segment(0, 0.0, white_noise(2.0), 1.0)), ["pt"]
    )
    assert result.dropped is not None and not result.translations


def test_same_language_listeners_get_the_original_text(models: Models, clips: list[Clip]) -> None:
    cascade = Cascade(models.recognizer, models.translator, models.voices)
    result = cascade.process(utterance_of(clip_named(clips, "pt_commonvoice_raposa")), ["pt"])
    event = result.translations["pt"].event
    assert isinstance(event, CaptionFinal) and event.target_text == event.source_text
    assert result.translations["pt"].speech is None


async def test_process_async_keeps_inference_off_the_event_loop(
    models: Models, clips: list[Clip]
) -> None:
    recognizer = FakeRecognizer(inner=models.recognizer)
    cascade = Cascade(recognizer, models.translator, models.voices)
    ticks = 0

    async def heartbeat() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    beat = asyncio.create_task(heartbeat())
    try:
        result = await cascade.process_async(
            utterance_of(clip_named(clips, "en_commonvoice_platforms")), ["pt"]
        )
    finally:
        beat.cancel()
        await asyncio.gather(beat, return_exceptions=True)
    assert recognizer.threads and recognizer.threads[0] != threading.current_thread().name
    assert ticks >= 5  # the loop kept running while the models worked
    assert isinstance(result.translations["pt"].event, CaptionFinal)


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "utterance.dropped", "utterance_id": "u", "reason": "no_speech"},
        {
            "type": "utterance.failed",
            "utterance_id": "u",
            "target_language": "pt",
            "stage": "mt",
            "reason": "x",
        },
    ],
)
def test_events_parse_by_type(payload: dict[str, object]) -> None:
    assert PIPELINE_EVENT.validate_python(payload).type == payload["type"]


def test_every_caption_is_handed_out_before_any_speech_is_made(
    models: Models, clips: list[Clip]
) -> None:
    timeline: list[str] = []
    cascade = Cascade(
        models.recognizer, models.translator, FakeVoice(inner=models.voices, timeline=timeline)
    )
    result = cascade.process(
        utterance_of(clip_named(clips, "en_commonvoice_platforms")),
        ["en", "pt", "es"],
        on_caption=lambda caption: timeline.append(f"caption:{caption.target_language}"),
    )
    assert timeline == ["caption:en", "caption:pt", "caption:es", "tts:pt", "tts:es"]
    assert all(t.delivered for t in result.translations.values())
    assert result.translations["pt"].speech is not None


def test_a_failing_voice_keeps_the_caption_without_speech(
    models: Models, clips: list[Clip]
) -> None:
    broken = FakeVoice(inner=models.voices, failing={"pt": "voice crashed"})
    cascade = Cascade(models.recognizer, models.translator, broken)
    result = cascade.process(utterance_of(clip_named(clips, "en_commonvoice_platforms")), ["pt"])
    assert isinstance(result.translations["pt"].event, CaptionFinal)
    assert result.translations["pt"].speech is None
