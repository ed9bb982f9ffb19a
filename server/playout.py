"""Segmented playout of one language: an initial delay D, then segments back to back.

Clocked by frames (20 ms each), not by wall time, so it is exact and testable.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from pipeline.audio import Samples
from pipeline.lipsync.base import Frame, VideoClip

SAMPLE_RATE = 48000
FRAME_SAMPLES = 960  # 20 ms
FRAME_S = FRAME_SAMPLES / SAMPLE_RATE


PlayoutMode = Literal["live", "smooth"]
SMOOTH_LOOKAHEAD_SEGMENTS = 3  # the shortfall of this many segments is covered up front


@dataclass
class DelayEstimate:
    """D from measured τ (processing / speech), segment length and how long a dub is against
    its speech, as running averages.

    *live*: D = τ·L, capped low (`max_delay_s`) so that conversation stays live; a turn's dubs
    may run dry between segments. *smooth*: D also covers the time dubs shorter than their
    speech gain over the next segments, capped at `smooth_max_delay_s`, so that one turn's dubs
    play back to back (the segmented playout of the design)."""

    max_delay_s: float
    tau: float = 0.3
    segment_s: float = 2.0
    weight: float = 0.2
    mode: PlayoutMode = "live"
    smooth_max_delay_s: float = 4.0
    dub_ratio: float = 1.0  # dub length / speech length

    def observe(self, processing_s: float, speech_s: float, dub_s: float | None = None) -> None:
        if speech_s <= 0:
            return
        self.tau += self.weight * (processing_s / speech_s - self.tau)
        self.segment_s += self.weight * (speech_s - self.segment_s)
        if dub_s is not None:
            self.dub_ratio += self.weight * (dub_s / speech_s - self.dub_ratio)

    @property
    def delay_s(self) -> float:
        # The next segment is ready about τ·L after it ends; waiting that long before the first
        # one starts keeps back-to-back playback fed while dubs last as long as their speech.
        wait = max(0.0, self.tau * self.segment_s)
        if self.mode == "live":
            return min(self.max_delay_s, wait)
        shortfall = max(0.0, 1.0 - self.dub_ratio) * self.segment_s * SMOOTH_LOOKAHEAD_SEGMENTS
        return min(self.smooth_max_delay_s, wait + shortfall)


@dataclass
class Dub:
    """One segment's translated speech and, once lip-synced, the video that speaks it. A dub
    made clause by clause starts playing on its first clause and grows until `complete`."""

    speech: Samples
    video: VideoClip | None = None
    awaiting_video: bool = False  # its lip-synced video is being made: it waits (bounded)
    complete: bool = True
    utterance_id: str = ""
    speech_end_at: float = 0.0  # wall-clock time its speech ended (epoch s)

    def extend(self, more: Samples) -> None:
        self.speech = np.concatenate([self.speech, more])

    def finish(self) -> None:
        self.complete = True

    def frame_at(self, position: int) -> Frame | None:
        """The video frame that goes with the speech at sample `position`."""
        if self.video is None or not self.video.frames:
            return None
        index = int(position / SAMPLE_RATE * self.video.fps)
        return self.video.frames[min(max(index, 0), len(self.video.frames) - 1)]


@dataclass
class Playout:
    """Queued translated speech for one language, drained one frame at a time."""

    delay: DelayEstimate
    max_buffered_s: float = 60.0
    max_video_wait_s: float = 1.5
    stalls: int = 0
    dropped_s: float = 0.0
    pending_jobs: int = 0
    _queue: deque[Dub] = field(default_factory=deque)
    _current: Dub | None = None
    _held: Frame | None = None
    _position: int = 0
    _wait_frames: int = 0
    _starved: bool = False
    _in_turn: bool = False  # something played since translations last all arrived
    _video_waited: int = 0
    on_start: Callable[[Dub], None] | None = None  # each dub, at its first frame

    @property
    def buffered_s(self) -> float:
        queued = sum(len(dub.speech) for dub in self._queue)
        current = len(self._current.speech) - self._position if self._current is not None else 0
        return (queued + current) / SAMPLE_RATE

    @property
    def playing(self) -> bool:
        return self._current is not None

    def add(
        self,
        speech: Samples,
        complete: bool = True,
        utterance_id: str = "",
        speech_end_at: float = 0.0,
    ) -> Dub:
        """Queue a segment's speech (48 kHz mono); over the bound the oldest queued is dropped.
        The returned dub takes its lip-synced video when that is ready, and, when not
        `complete`, the rest of its clauses."""
        if self._current is None and not self._queue and not self._starved:
            self._wait_frames = round(self.delay.delay_s / FRAME_S)
        dub = Dub(speech, complete=complete, utterance_id=utterance_id, speech_end_at=speech_end_at)
        self._queue.append(dub)
        while self.buffered_s > self.max_buffered_s and len(self._queue) > 1:
            self.dropped_s += len(self._queue.popleft().speech) / SAMPLE_RATE
        return dub

    def video_frame(self) -> Frame | None:
        """The lip-synced frame for what plays now (mid-way through the last 20 ms played).
        Between segments of a turn the last one is held, so the original lips never show
        through; None once the turn's translations are all played, or for a dub without video."""
        if self._current is not None:
            self._held = self._current.frame_at(self._position - FRAME_SAMPLES // 2)
        elif not self._queue and self.pending_jobs == 0:
            self._held = None
        return self._held

    def next_frame(self) -> Samples | None:
        """The next 20 ms of speech, or None when there is nothing to play now."""
        if self._wait_frames > 0:
            self._wait_frames -= 1
            return None
        frame = np.zeros(FRAME_SAMPLES, dtype=np.float32)
        filled = 0
        while filled < FRAME_SAMPLES:
            if self._current is None and not self._load_next():
                break
            assert self._current is not None
            speech = self._current.speech
            take = min(FRAME_SAMPLES - filled, len(speech) - self._position)
            frame[filled : filled + take] = speech[self._position : self._position + take]
            filled += take
            self._position += take
            self._starved = self._starved and take == 0
            self._in_turn = self._in_turn or take > 0
            if self._position < len(speech):
                continue
            if not self._current.complete:  # its next clause is still being spoken
                self._run_dry()
                break
            self._current = None
        if filled == 0:
            return None
        return frame

    def _load_next(self) -> bool:
        if not self._queue:
            if self.pending_jobs > 0:  # translations are still on their way
                self._run_dry()
            else:
                self._in_turn = False
            return False
        if self._queue[0].awaiting_video and self._video_waited * FRAME_S < self.max_video_wait_s:
            # Sound waits for its picture, so that the two start together (bounded: after the
            # wait it plays with the original video).
            self._video_waited += 1
            return False
        self._current, self._position, self._starved = self._queue.popleft(), 0, False
        self._video_waited = 0
        if self.on_start is not None:
            self.on_start(self._current)
        return True

    def _run_dry(self) -> None:
        """Nothing to play mid-turn while speech is on its way: a stall, counted once per gap
        (waiting for a turn's first dub is the delay D, not a stall)."""
        if self._in_turn:
            self.stalls += 0 if self._starved else 1
            self._starved = True
