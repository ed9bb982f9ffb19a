"""Inbound media of one participant: always consumed, never left to pile up.

Audio: decoded by aiortc, mixed to mono, resampled to 16 kHz and segmented by VAD on a worker
thread; the live 48 kHz voice goes to whoever plays the original. Video: the latest frame kept.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from pipeline.audio import ASR_SAMPLE_RATE, Samples, sanitize
from pipeline.segmenter import Segment, Segmenter

LOG = logging.getLogger(__name__)
BATCH_S = 0.06  # audio handed to the segmenter thread at a time


def to_mono_float(frame: av.AudioFrame) -> Samples:
    """Any decoded frame (packed or planar, any channel count) → mono float32 in [-1, 1]."""
    channels = len(frame.layout.channels)
    pcm = frame.to_ndarray()
    pcm = pcm.reshape(-1, channels) if not frame.format.is_planar else pcm.T
    scale = 32768.0 if np.issubdtype(pcm.dtype, np.integer) else 1.0
    return sanitize(pcm.astype(np.float32).mean(axis=1) / scale)


class AudioIngest:
    """Consumes one inbound audio track for as long as it lives."""

    def __init__(
        self,
        segmenter: Segmenter,
        executor: Executor,
        on_live: Callable[[Samples], None],
        on_voice: Callable[[bool], Awaitable[None]],
        on_segment: Callable[[Segment, float], Awaitable[None]],
    ) -> None:
        self._segmenter = segmenter
        self._executor = executor
        self._on_live = on_live
        self._on_voice = on_voice
        self._on_segment = on_segment
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=ASR_SAMPLE_RATE)
        self._batch: list[av.AudioFrame] = []
        self._batch_s = 0.0
        self.muted = False
        self.speaking = False

    async def run(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                assert isinstance(frame, av.AudioFrame)
                await self._on_frame(frame)
        except MediaStreamError:
            pass
        finally:
            await self.flush()

    async def _on_frame(self, frame: av.AudioFrame) -> None:
        if self.muted:
            return
        self._on_live(to_mono_float(frame))
        self._batch.append(frame)
        self._batch_s += frame.samples / frame.sample_rate
        if self._batch_s >= BATCH_S:
            await self._segment_batch()

    async def _segment_batch(self) -> None:
        frames, self._batch, self._batch_s = self._batch, [], 0.0
        loop = asyncio.get_running_loop()
        segments, speaking = await loop.run_in_executor(self._executor, self._segment, frames)
        if speaking or speaking != self.speaking:
            self.speaking = speaking
            await self._on_voice(speaking)
        await self._emit(segments)

    async def _emit(self, segments: list[Segment]) -> None:
        # The segmenter has read past each segment's last voiced frame: that much audio ago, the
        # speech ended.
        now, position = time.time(), self._segmenter.position_s
        for segment in segments:
            ended = segment.voiced_until_s or segment.end_s
            await self._on_segment(segment, now - max(0.0, position - ended))

    def _segment(self, frames: list[av.AudioFrame]) -> tuple[list[Segment], bool]:
        """On a worker thread: resample to 16 kHz mono and run the VAD segmenter."""
        chunks = [
            out.to_ndarray().reshape(-1)
            for frame in frames
            for out in self._resampler.resample(frame)
        ]
        if not chunks:
            return [], self._segmenter.in_speech
        segments = self._segmenter.push(sanitize(np.concatenate(chunks)))
        return segments, self._segmenter.in_speech

    async def flush(self) -> None:
        """End of stream (leave, mute, shutdown): the open segment is finished, not lost."""
        if self._batch:
            await self._segment_batch()
        loop = asyncio.get_running_loop()
        await self._emit(await loop.run_in_executor(self._executor, self._segmenter.flush))


class VideoIngest:
    """Consumes one inbound video track, keeping only its latest frame."""

    def __init__(self) -> None:
        self.latest: av.VideoFrame | None = None
        self.frames = 0

    async def run(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                if isinstance(frame, av.VideoFrame):
                    self.latest = frame
                    self.frames += 1
        except MediaStreamError:
            pass
