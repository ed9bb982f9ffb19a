"""Segmented playout, clocked frame by frame: initial delay D, back-to-back, stalls, bounds."""

from __future__ import annotations

import numpy as np
import pytest

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


def test_each_dub_is_announced_at_its_first_frame() -> None:
    started: list[tuple[str, int]] = []
    playout = Playout(DelayEstimate(max_delay_s=1.0, tau=0.2, segment_s=1.0, weight=0.0))
    frames: list[object] = []
    playout.on_start = lambda dub: started.append((dub.utterance_id, len(frames)))
    playout.add(tone(0.5), utterance_id="r/a/0", speech_end_at=100.0)
    playout.add(tone(0.5), utterance_id="r/a/1", speech_end_at=101.0)
    for _ in range(round(1.4 / FRAME_S)):
        frames.append(playout.next_frame())
    waited, first_dub = round(0.2 / FRAME_S), round(0.5 / FRAME_S)
    assert started == [("r/a/0", waited), ("r/a/1", waited + first_dub)]


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


def test_a_dub_spoken_clause_by_clause_starts_on_its_first_clause() -> None:
    playout = Playout(DelayEstimate(max_delay_s=0.0, weight=0.0))
    playout.pending_jobs = 1
    dub = playout.add(tone(0.2, 0.1), complete=False)
    played = [f for f in drain(playout, 0.4) if f is not None]
    assert len(played) == round(0.2 / FRAME_S)  # the first clause, then a wait for the next
    assert playout.stalls == 1
    dub.extend(tone(0.2, 0.3))
    dub.finish()
    playout.pending_jobs = 0  # its job's result has come
    playout.add(tone(0.2, 0.5))  # the next dub waits behind the growing one
    rest = [f for f in drain(playout, 0.6) if f is not None]
    assert len(rest) == round(0.4 / FRAME_S)
    assert np.allclose(rest[0], 0.3) and np.allclose(rest[-1], 0.5)
    assert playout.stalls == 1


def test_smooth_mode_waits_long_enough_for_a_turn_of_short_dubs() -> None:
    live = DelayEstimate(max_delay_s=0.5, tau=0.3, segment_s=3.0, weight=1.0)
    smooth = DelayEstimate(max_delay_s=0.5, tau=0.3, segment_s=3.0, weight=1.0, mode="smooth")
    for estimate in (live, smooth):
        estimate.observe(processing_s=0.9, speech_s=3.0, dub_s=2.4)  # dubs 20 % shorter
    assert live.delay_s == 0.5  # capped: live
    assert smooth.delay_s == pytest.approx(0.9 + 0.2 * 3.0 * 3)
    smooth.smooth_max_delay_s = 2.0
    assert smooth.delay_s == 2.0


def test_a_smooth_turn_plays_back_to_back_where_a_live_one_stalls() -> None:
    """Five 2 s segments of speech, each dubbed in 1.6 s, each ready 0.6 s after it ends."""
    stalls = {}
    for mode in ("live", "smooth"):
        estimate = DelayEstimate(max_delay_s=0.5, tau=0.3, segment_s=2.0, weight=0.0, mode=mode)  # type: ignore[arg-type]
        estimate.dub_ratio = 0.8
        playout = Playout(estimate)
        ready_at = [2.0 * k + 0.6 for k in range(1, 6)]
        playout.pending_jobs = 5
        clock, added = 0.0, 0
        while clock < 16.0:
            if added < 5 and clock >= ready_at[added]:
                playout.add(tone(1.6))
                playout.pending_jobs -= 1
                added += 1
            playout.next_frame()
            clock += FRAME_S
        stalls[mode] = playout.stalls
    assert stalls["live"] == 3 and stalls["smooth"] == 0
