"""Segmented playout of one language: an initial delay D, then segments back to back.

Clocked by frames (20 ms each), not by wall time, so it is exact and testable.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from pipeline.audio import Samples

SAMPLE_RATE = 48000
FRAME_SAMPLES = 960  # 20 ms
FRAME_S = FRAME_SAMPLES / SAMPLE_RATE


@dataclass
class DelayEstimate:
    """D from measured τ (processing / speech) and segment length, as running averages."""

    max_delay_s: float
    tau: float = 0.3
    segment_s: float = 2.0
    weight: float = 0.2

    def observe(self, processing_s: float, speech_s: float) -> None:
        if speech_s <= 0:
            return
        self.tau += self.weight * (processing_s / speech_s - self.tau)
        self.segment_s += self.weight * (speech_s - self.segment_s)

    @property
    def delay_s(self) -> float:
        # The next segment is ready about τ·L after it ends; waiting that long before the first
        # one starts keeps back-to-back playback fed. Bounded so that conversation stays live.
        return min(self.max_delay_s, max(0.0, self.tau * self.segment_s))


@dataclass
class Playout:
    """Queued translated speech for one language, drained one frame at a time."""

    delay: DelayEstimate
    max_buffered_s: float = 60.0
    stalls: int = 0
    dropped_s: float = 0.0
    pending_jobs: int = 0
    _queue: deque[Samples] = field(default_factory=deque)
    _current: Samples | None = None
    _position: int = 0
    _wait_frames: int = 0
    _starved: bool = False

    @property
    def buffered_s(self) -> float:
        queued = sum(len(s) for s in self._queue)
        current = len(self._current) - self._position if self._current is not None else 0
        return (queued + current) / SAMPLE_RATE

    @property
    def playing(self) -> bool:
        return self._current is not None

    def add(self, speech: Samples) -> None:
        """Queue a segment's speech (48 kHz mono); over the bound the oldest queued is dropped."""
        if self._current is None and not self._queue and not self._starved:
            self._wait_frames = round(self.delay.delay_s / FRAME_S)
        self._queue.append(speech)
        while self.buffered_s > self.max_buffered_s and len(self._queue) > 1:
            self.dropped_s += len(self._queue.popleft()) / SAMPLE_RATE

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
            take = min(FRAME_SAMPLES - filled, len(self._current) - self._position)
            frame[filled : filled + take] = self._current[self._position : self._position + take]
            filled += take
            self._position += take
            if self._position >= len(self._current):
                self._current = None
        if filled == 0:
            return None
        return frame

    def _load_next(self) -> bool:
        if not self._queue:
            # Ran dry while translations are still on their way: a stall, counted once.
            if self.pending_jobs > 0 and not self._starved:
                self.stalls += 1
                self._starved = True
            return False
        self._current, self._position, self._starved = self._queue.popleft(), 0, False
        return True
