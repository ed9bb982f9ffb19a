"""Laying one voice's phoneme timings onto another voice's speech of the same text."""

from __future__ import annotations

import numpy as np

from pipeline.audio import Audio
from pipeline.lipsync.base import PhonemeTiming
from pipeline.lipsync.phonemes import _lined_up, aligned

RATE = 16000


def syllables(count: int, offset_s: float = 0.0) -> tuple[PhonemeTiming, ...]:
    """'m a m a …', 100 ms each: a closed mouth, then an open one."""
    return tuple(
        PhonemeTiming("ma"[i % 2], offset_s + i * 0.1, offset_s + (i + 1) * 0.1)
        for i in range(count)
    )


def spoken(count: int, lead_s: float = 0.2) -> Audio:
    """Speech with the loudness of `syllables`: 'a' loud, 'm' hummed; silence before and after."""
    t = np.arange(int(0.1 * RATE)) / RATE
    tone = np.sin(2 * np.pi * 180 * t).astype(np.float32)
    pieces = [np.zeros(int(lead_s * RATE), np.float32)]
    pieces += [tone * (0.1 if i % 2 == 0 else 0.6) for i in range(count)]
    pieces.append(np.zeros(int(0.2 * RATE), np.float32))
    return Audio(np.concatenate(pieces), RATE)


def test_timings_late_by_60_ms_are_moved_onto_the_sound() -> None:
    audio = spoken(20)
    moved = _lined_up(syllables(20, offset_s=0.26), audio)
    assert abs(moved[0].start_s - 0.2) <= 0.011


def test_timings_already_on_the_sound_stay() -> None:
    audio = spoken(20)
    assert _lined_up(syllables(20, offset_s=0.2), audio)[0].start_s == 0.2


def test_aligned_lays_a_stretch_onto_the_dubs_sound() -> None:
    audio = spoken(20, lead_s=0.5)  # the other voice starts later and says it in 2 s
    laid = aligned(syllables(20), audio)
    assert [t.phoneme for t in laid] == list("ma" * 10)
    assert abs(laid[0].start_s - 0.5) <= 0.03 and abs(laid[-1].end_s - 2.5) <= 0.05


def test_nothing_to_lay_gives_nothing() -> None:
    assert aligned((), spoken(4)) == ()
    assert aligned(syllables(4), Audio(np.zeros(RATE, np.float32), RATE)) == ()
