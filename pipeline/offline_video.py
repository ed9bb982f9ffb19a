"""Translated video files: per target language, an MP4 whose picture is lip-synced to the dub.

The dub track places each segment's speech at its source start (later when the previous one
runs long). The video follows that timeline: during a segment's speech, the segment's frames
lip-synced to it; between segments, the source frames of the pause, retimed to the pause the
dub leaves. Frames are decoded once, in order, and never all held (bounded memory).
"""

from __future__ import annotations

import fractions
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from pipeline.audio import Audio
from pipeline.errors import AudioInputError
from pipeline.lipsync.base import Frame, LipSyncer, Speech, VideoClip
from pipeline.lipsync.video import rgb
from pipeline.metrics import timed_stage

AUDIO_RATE = 48000
MAX_FPS = 30.0


@dataclass(frozen=True)
class Piece:
    """A stretch of the output: source seconds [src_start, src_end) shown over output seconds
    [out_start, out_end), lip-synced to `speech` when it has some."""

    src_start: float
    src_end: float
    out_start: float
    out_end: float
    speech: Audio | None = None


def has_video(path: Path) -> bool:
    try:
        with av.open(str(path)) as container:
            return bool(container.streams.video)
    except (av.FFmpegError, ValueError):
        return False


def video_format(path: Path) -> tuple[float, int, int]:
    """Frame rate (capped at 30), width and height (even, as H.264 needs) of the first video."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        return min(rate, MAX_FPS), stream.width // 2 * 2, stream.height // 2 * 2


def pieces(placed: list[tuple[float, float, float, Audio]], duration_s: float) -> list[Piece]:
    """The output timeline from (source start, source end, output start, speech) per segment,
    in order: speech pieces, and the pauses between them."""
    timeline: list[Piece] = []
    src_cursor = out_cursor = 0.0
    for src_start, src_end, out_start, speech in placed:
        if out_start > out_cursor:
            timeline.append(Piece(src_cursor, src_start, out_cursor, out_start))
        out_end = out_start + speech.duration_s
        timeline.append(Piece(src_start, src_end, out_start, out_end, speech))
        src_cursor, out_cursor = src_end, out_end
    end = max(duration_s, out_cursor)  # the dub track's length
    if end > out_cursor:
        timeline.append(Piece(src_cursor, max(duration_s, src_cursor), out_cursor, end))
    return timeline


class FrameReader:
    """The source's frames at a constant rate, asked for in increasing time order."""

    def __init__(self, path: Path, fps: float, size: tuple[int, int]) -> None:
        self._container = av.open(str(path))
        self._frames = self._decode()
        self._fps, self._size = fps, size
        self._current: tuple[float, Frame] | None = None
        self._next: tuple[float, Frame] | None = next(self._frames, None)

    def _decode(self) -> Iterator[tuple[float, Frame]]:
        stream = self._container.streams.video[0]
        scaler = VideoReformatter()
        for frame in self._container.decode(stream):
            at = float(frame.time) if frame.time is not None else 0.0
            yield at, rgb(frame, self._size, scaler)

    def at(self, seconds: float) -> Frame:
        """The frame on screen at `seconds` (the last one once the video has ended)."""
        while self._next is not None and self._next[0] <= seconds + 1e-6:
            self._current, self._next = self._next, next(self._frames, None)
        if self._current is None:
            if self._next is None:
                raise AudioInputError("the video stream has no frames")
            return self._next[1]
        return self._current[1]

    def between(self, start: float, end: float) -> list[Frame]:
        count = max(1, round((end - start) * self._fps))
        return [self.at(start + i / self._fps) for i in range(count)]

    def close(self) -> None:
        self._container.close()


def _pause_frames(reader: FrameReader, piece: Piece, fps: float) -> list[Frame]:
    count = round(piece.out_end * fps) - round(piece.out_start * fps)
    span = piece.src_end - piece.src_start
    return [reader.at(piece.src_start + span * i / max(count, 1)) for i in range(count)]


def _speech_frames(reader: FrameReader, piece: Piece, fps: float, syncer: LipSyncer) -> list[Frame]:
    assert piece.speech is not None
    count = round(piece.out_end * fps) - round(piece.out_start * fps)
    clip = VideoClip(reader.between(piece.src_start, piece.src_end), fps)
    with timed_stage("lipsync", syncer.name):
        synced = syncer.sync(clip, Speech(piece.speech)).frames
    if not synced:
        return []
    # Rounding of the piece's ends on the frame grid may ask for one frame more or less.
    return [synced[min(i, len(synced) - 1)] for i in range(count)]


def write_clip(out: Path, clips: list[VideoClip], sound: Audio) -> Path:
    """Clips of one size and rate, back to back, with `sound`, as an MP4."""
    height, width = clips[0].frames[0].shape[:2]
    with av.open(str(out), "w") as container:
        video = _video_stream(container, clips[0].fps, width, height)
        audio = container.add_stream("aac", rate=AUDIO_RATE)
        for clip in clips:
            for image in clip.frames:
                container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(video.encode(None))
        _write_audio(container, audio, sound)
    return out


def _video_stream(
    container: av.container.OutputContainer, fps: float, width: int, height: int
) -> av.video.stream.VideoStream:
    video = container.add_stream("libx264", rate=fractions.Fraction(fps).limit_denominator(1001))
    video.width, video.height, video.pix_fmt = width // 2 * 2, height // 2 * 2, "yuv420p"
    video.options = {"preset": "veryfast", "crf": "23"}
    return video


def write_dubbed_video(
    source: Path, out: Path, timeline: list[Piece], dub: Audio, syncer: LipSyncer
) -> Path:
    """An MP4 (H.264 + AAC) of the lip-synced timeline with the dub as its sound."""
    fps, width, height = video_format(source)
    reader = FrameReader(source, fps, (width, height))
    try:
        with av.open(str(out), "w") as container:
            video = _video_stream(container, fps, width, height)
            audio = container.add_stream("aac", rate=AUDIO_RATE)
            for piece in timeline:
                frames = (
                    _pause_frames(reader, piece, fps)
                    if piece.speech is None
                    else _speech_frames(reader, piece, fps, syncer)
                )
                for image in frames:
                    frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                    container.mux(video.encode(frame))
            container.mux(video.encode(None))
            _write_audio(container, audio, dub)
    finally:
        reader.close()
    return out


def _write_audio(
    container: av.container.OutputContainer, stream: av.audio.stream.AudioStream, dub: Audio
) -> None:
    resampler = av.AudioResampler(format="fltp", layout="mono", rate=AUDIO_RATE)
    pcm = np.clip(dub.samples, -1.0, 1.0).astype(np.float32).reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(pcm, format="flt", layout="mono")
    frame.sample_rate = dub.sample_rate
    for resampled in resampler.resample(frame) + resampler.resample(None):
        container.mux(stream.encode(resampled))
    container.mux(stream.encode(None))
