"""The recent camera frames of a speaker, so a segment's video can be lip-synced later.

Frames are kept as decoded (no conversion on the event loop), at most `fps` a second and for
`keep_s` seconds: memory is bounded by fps × keep_s frames per recorded speaker.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import av


@dataclass
class VideoHistory:
    fps: float
    keep_s: float
    _frames: deque[tuple[float, av.VideoFrame]] = field(default_factory=deque)

    def add(self, at: float, frame: av.VideoFrame) -> None:
        """A frame that arrived at wall-clock time `at` (frames faster than fps are skipped)."""
        if self._frames and at - self._frames[-1][0] < 0.9 / self.fps:
            return
        self._frames.append((at, frame))
        while self._frames and at - self._frames[0][0] > self.keep_s:
            self._frames.popleft()

    def between(self, start: float, end: float) -> list[av.VideoFrame]:
        """The frames shown from `start` to `end` (wall clock), the one on screen at `start`
        first; empty when the camera sent nothing then."""
        frames = [frame for at, frame in self._frames if start <= at < end]
        before = [frame for at, frame in self._frames if at < start and start - at < 1.0]
        return before[-1:] + frames

    def clear(self) -> None:
        self._frames.clear()

    def __len__(self) -> int:
        return len(self._frames)
