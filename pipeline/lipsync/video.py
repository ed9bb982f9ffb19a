"""Reading a video file into a clip (tests, benchmarks, offline use)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from pipeline.errors import AudioInputError
from pipeline.lipsync.base import Frame, VideoClip


def read_clip(path: Path, size: tuple[int, int] | None = None) -> VideoClip:
    """Every frame of the first video stream as RGB, scaled to `size` (width, height) if given."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise AudioInputError(f"{path.name} has no video stream")
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 25)
            width, height = size or (stream.width, stream.height)
            frames: list[Frame] = [
                np.asarray(f.to_ndarray(format="rgb24", width=width, height=height), np.uint8)
                for f in container.decode(stream)
            ]
    except (av.FFmpegError, ValueError) as exc:
        raise AudioInputError(f"cannot read {path.name} as video: {exc}") from exc
    return VideoClip(frames, fps)
