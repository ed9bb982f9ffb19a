"""The lip-sync interface: a segment's video and one language's speech → video that speaks it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from pipeline.audio import Audio

Frame = npt.NDArray[np.uint8]  # RGB, height × width × 3


@dataclass(frozen=True)
class PhonemeTiming:
    """One phoneme of the synthesised speech and when it sounds (seconds from the start)."""

    phoneme: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class VideoClip:
    """Frames at a constant rate; the first frame shows at 0 s."""

    frames: list[Frame]
    fps: float

    @property
    def duration_s(self) -> float:
        return len(self.frames) / self.fps if self.fps > 0 else 0.0


@dataclass(frozen=True)
class Speech:
    """Translated speech to lip-sync to, with its phoneme timings when the voice gives them."""

    audio: Audio
    phonemes: tuple[PhonemeTiming, ...] = field(default_factory=tuple)


class LipSyncer(ABC):
    """A lip-sync backend. Blocking: run it on a worker thread, never on the event loop."""

    name: str = "lipsync"

    @abstractmethod
    def sync(self, clip: VideoClip, speech: Speech) -> VideoClip:
        """Video at `clip.fps` lasting as long as `speech` (round(duration × fps) frames), the
        mouth following the speech. Frames where no single face is found pass through unchanged.
        """
