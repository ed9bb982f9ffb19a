"""Voices near the speaker: nearest by pitch and embedding, held for the call, different for two
speakers where a language has several; the shipped voiceprints cover every default voice."""

from __future__ import annotations

import numpy as np

from pipeline.speakers import VoicePrint, f0_median
from pipeline.tts.casting import VoiceCasting, distance, shipped_prints
from pipeline.tts.voices import DEFAULT_VOICES


def voiceprint(f0: float, direction: int) -> VoicePrint:
    vector = np.zeros(256)
    vector[direction] = 1.0
    return VoicePrint(f0, tuple(vector))


PRINTS = {
    "low": voiceprint(100.0, 0),
    "mid": voiceprint(150.0, 1),
    "high": voiceprint(220.0, 2),
}
CANDIDATES = ("mid", "low", "high")


def test_the_nearest_voice_by_pitch_and_timbre_is_cast_and_held() -> None:
    casting = VoiceCasting(PRINTS)
    deep = voiceprint(105.0, 0)
    assert casting.cast("ana", deep, "pt", CANDIDATES) == "low"
    assert casting.cast("ana", voiceprint(230.0, 2), "pt", CANDIDATES) == "low"  # held
    assert distance(deep, PRINTS["low"]) < distance(deep, PRINTS["high"])


def test_two_speakers_get_different_voices_while_there_are_enough() -> None:
    casting = VoiceCasting(PRINTS)
    twins = voiceprint(100.0, 0)
    first = casting.cast("ana", twins, "pt", CANDIDATES)
    second = casting.cast("bea", twins, "pt", CANDIDATES)
    assert first == "low" and second != first
    assert casting.cast("cid", twins, "fr", ("mid",)) == casting.cast("dan", twins, "fr", ("mid",))
    casting.forget("ana")
    assert casting.cast("eve", twins, "pt", CANDIDATES) == "low"  # freed when ana left


def test_unknown_voices_fall_back_to_the_first_candidate() -> None:
    casting = VoiceCasting({})
    assert casting.cast("ana", voiceprint(120.0, 3), "de", ("espeak:de",)) == "espeak:de"


def test_every_default_voice_has_a_shipped_voiceprint() -> None:
    prints = shipped_prints()
    for voices in DEFAULT_VOICES.values():
        for spec in voices:
            assert spec in prints, spec
            assert len(prints[spec].embedding) == 256
    assert prints["kokoro:pm_alex"].f0_hz < prints["kokoro:pf_dora"].f0_hz  # type: ignore[operator]


def test_pitch_of_a_tone_and_of_silence() -> None:
    t = np.arange(32000) / 16000
    assert abs((f0_median((0.3 * np.sin(2 * np.pi * 150 * t)).astype(np.float32)) or 0) - 150) < 3
    assert f0_median(np.zeros(32000, np.float32)) is None
