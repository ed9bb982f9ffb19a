"""Reading a video file into a clip (tests, benchmarks, offline use)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from pipeline.errors import AudioInputError
from pipeline.lipsync.base import Frame, VideoClip


def rgb(
    frame: av.VideoFrame,
    size: tuple[int, int] | None = None,
    scaler: VideoReformatter | None = None,
) -> Frame:
    """The frame as RGB, scaled to `size` (width, height) if given. Pass a scaler of your own
    when the frame may be converted on another thread at the same time: a frame's built-in
    one is not safe to share."""
    width, height = size or (frame.width, frame.height)
    converted = (scaler or VideoReformatter()).reformat(frame, width, height, "rgb24")
    return np.asarray(converted.to_ndarray(), dtype=np.uint8)


def read_clip(path: Path, size: tuple[int, int] | None = None) -> VideoClip:
    """Every frame of the first video stream as RGB, scaled to `size` (width, height) if given."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise AudioInputError(f"{path.name} has no video stream")
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 25)
            scaler = VideoReformatter()
            frames = [rgb(f, size, scaler) for f in container.decode(stream)]
    except (av.FFmpegError, ValueError) as exc:
        raise AudioInputError(f"cannot read {path.name} as video: {exc}") from exc
    return VideoClip(frames, fps)
