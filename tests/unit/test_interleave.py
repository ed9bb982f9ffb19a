"""Dubs of one segment in several languages: a clause of each in turn, a failing voice alone."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.audio import Audio
from pipeline.cascade import Utterance
from pipeline.segmenter import Segment
from testkit.fakes import FakeRecognizer, FakeVoice, fake_cascade

THREE_CLAUSES = "We came early, we stayed late, and we went home."


def utterance() -> Utterance:
    segment = Segment(0, 0.0, np.full(16000, 0.1, np.float32), speech_ratio=0.9)
    return Utterance("room/ana/0", "ana", 0, "en", segment)


def test_each_language_gets_its_first_clause_before_any_gets_its_second() -> None:
    timeline: list[str] = []
    clauses: list[str] = []
    cascade = fake_cascade(
        FakeRecognizer([THREE_CLAUSES]),
        voice=FakeVoice(seconds_per_word=0.01, timeline=timeline),
        pairs=[("en", "es"), ("en", "pt")],
    )

    def on_clause(language: str, clause: Audio) -> None:
        clauses.append(language)

    result = cascade.process(utterance(), ("en", "es", "pt"), on_clause=on_clause)
    assert clauses == ["es", "pt"] * 3
    assert timeline == ["tts:es", "tts:pt"] * 3
    for language in ("es", "pt"):
        translation = result.translations[language]
        assert translation.speech is not None and translation.speech.duration_s > 0
        assert translation.first_audio_s > 0 and translation.tts_s > 0
    assert result.translations["en"].speech is None  # the original is not dubbed


def test_a_voice_failing_leaves_the_other_languages_dubs_whole() -> None:
    cascade = fake_cascade(
        FakeRecognizer([THREE_CLAUSES]),
        voice=FakeVoice(seconds_per_word=0.01, failing={"es": "voice broke"}),
        pairs=[("en", "es"), ("en", "pt")],
    )
    result = cascade.process(utterance(), ("en", "es", "pt"))
    assert result.translations["es"].speech is None
    assert result.translations["es"].event.type == "caption.final"  # the caption still stands
    spoken = result.translations["pt"].speech
    assert spoken is not None
    assert spoken.duration_s == pytest.approx(0.01 * len(THREE_CLAUSES.split()), abs=1e-3)
