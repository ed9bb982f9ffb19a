"""TTS: Piper for English, espeak-ng for the rest, always 48 kHz; a round trip through ASR."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.audio import ASR_SAMPLE_RATE, resample
from pipeline.errors import ModelUnavailableError, UnsupportedLanguageError
from pipeline.models import Models
from pipeline.tts.voices import VoiceTable, build_voice
from testkit.fixtures import Clip
from testkit.quality import word_errors


def test_english_round_trip_wer_is_at_most_20_percent(models: Models, clips: list[Clip]) -> None:
    edits = words = 0
    for clip in [c for c in clips if c.language == "en"][:6]:
        speech = models.voices.synthesize(clip.transcript, "en")
        assert speech.sample_rate == 48000
        heard = models.recognizer.transcribe(
            resample(speech.samples, 48000, ASR_SAMPLE_RATE), "en"
        ).text
        e, w = word_errors(clip.transcript, heard, "en")
        edits, words = edits + e, words + w
    assert edits / words <= 0.20
    assert models.voices.voice("en").name == "piper"


@pytest.mark.parametrize("language", ["es", "pt", "fr", "de", "ca"])
def test_espeak_speaks_every_other_language_at_48k(
    models: Models, clips: list[Clip], language: str
) -> None:
    text = next(c.transcript for c in clips if c.language == language)
    speech = models.voices.synthesize(text, language)
    assert models.voices.voice(language).name == "espeak-ng"
    assert speech.sample_rate == 48000
    assert 1.0 < speech.duration_s < 20.0
    assert float(np.sqrt(np.mean(speech.samples**2))) > 0.01


def test_spanish_round_trip_is_intelligible(models: Models) -> None:
    text = (
        "fue tanta la cantidad de gente que se concentró que no todos pudieron acceder al funeral"
    )
    speech = models.voices.synthesize(text, "es")
    heard = models.recognizer.transcribe(
        resample(speech.samples, 48000, ASR_SAMPLE_RATE), "es"
    ).text
    edits, words = word_errors(text, heard, "es")
    assert edits / words <= 0.35


def test_voice_table_errors() -> None:
    table = VoiceTable({"ja": "espeak:ja"})
    with pytest.raises(UnsupportedLanguageError, match="no voice"):
        table.voice("xx")
    with pytest.raises(ModelUnavailableError, match="engine:voice"):
        build_voice("festival:kal")
    with pytest.raises(ModelUnavailableError, match="not found"):
        build_voice("piper:/nonexistent/voice.onnx")


def test_empty_text_is_silent(models: Models) -> None:
    assert models.voices.synthesize("", "es").duration_s == 0.0
