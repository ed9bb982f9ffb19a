"""Segmented playout, clocked frame by frame: initial delay D, back-to-back, stalls, bounds."""

from __future__ import annotations

import numpy as np

from server.playout import FRAME_S, FRAME_SAMPLES, SAMPLE_RATE, DelayEstimate, Playout


def tone(seconds: float, value: float = 0.5) -> np.ndarray:  # type: ignore[type-arg]
    return np.full(round(seconds * SAMPLE_RATE), value, dtype=np.float32)


def drain(playout: Playout, seconds: float) -> list[np.ndarray | None]:  # type: ignore[type-arg]
    return [playout.next_frame() for _ in range(round(seconds / FRAME_S))]


def test_delay_comes_from_measured_tau_and_segment_length() -> None:
    delay = DelayEstimate(max_delay_s=5.0, tau=0.2, segment_s=2.0, weight=1.0)
    assert delay.delay_s == 0.4
    delay.observe(processing_s=1.5, speech_s=3.0)
    assert (delay.tau, delay.segment_s) == (0.5, 3.0)
    assert delay.delay_s == 1.5
    assert DelayEstimate(max_delay_s=0.5, tau=1.0, segment_s=3.0).delay_s == 0.5


def test_first_segment_waits_d_then_segments_play_back_to_back() -> None:
    playout = Playout(DelayEstimate(max_delay_s=1.0, tau=0.2, segment_s=1.0, weight=0.0))
    playout.add(tone(0.5, 0.1))
    playout.add(tone(0.5, 0.2))
    frames = drain(playout, 1.4)
    waited = frames[: round(0.2 / FRAME_S)]
    assert all(f is None for f in waited)
    played = [f for f in frames if f is not None]
    assert len(played) == round(1.0 / FRAME_S)
    assert np.allclose(played[0], 0.1) and np.allclose(played[-1], 0.2)
    assert playout.stalls == 0


def test_frames_are_filled_across_segment_boundaries() -> None:
    playout = Playout(DelayEstimate(max_delay_s=0.0))
    playout.add(tone(0.03, 0.1))  # 1.5 frames
    playout.add(tone(0.03, 0.2))
    first, second = playout.next_frame(), playout.next_frame()
    assert first is not None and second is not None
    assert np.allclose(first, 0.1)
    assert np.allclose(second[: FRAME_SAMPLES // 2], 0.1) and np.allclose(
        second[FRAME_SAMPLES // 2 :], 0.2
    )


def test_running_dry_while_translations_are_pending_is_a_stall() -> None:
    playout = Playout(DelayEstimate(max_delay_s=0.0))
    playout.pending_jobs = 1
    playout.add(tone(0.2))
    drain(playout, 0.5)
    assert playout.stalls == 1
    drain(playout, 0.5)
    assert playout.stalls == 1  # one dry spell, counted once
    playout.add(tone(0.2))
    assert playout.next_frame() is not None  # resumes at once, no second initial delay


def test_running_dry_with_nothing_pending_is_not_a_stall() -> None:
    playout = Playout(DelayEstimate(max_delay_s=0.0))
    playout.add(tone(0.2))
    drain(playout, 1.0)
    assert playout.stalls == 0 and not playout.playing


def test_buffer_is_bounded_oldest_dropped() -> None:
    playout = Playout(DelayEstimate(max_delay_s=0.0), max_buffered_s=2.0)
    for _ in range(5):
        playout.add(tone(1.0))
    assert playout.buffered_s <= 2.0
    assert playout.dropped_s == 3.0
