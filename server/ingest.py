"""Inbound media of one participant: always consumed, never left to pile up.

Audio: decoded by aiortc, mixed to mono, resampled to 16 kHz and segmented by VAD on a worker
thread; the live 48 kHz voice goes to whoever plays the original. Video: the latest frame kept.
Frames may change format, layout or rate mid-stream (a peer switching from Opus to PCMU), and
may be empty: neither stops the ingest.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import Protocol

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from pipeline.audio import ASR_SAMPLE_RATE, Samples, sanitize
from pipeline.segmenter import Segment, Segmenter
from server.playout import SAMPLE_RATE as LIVE_RATE

LOG = logging.getLogger(__name__)
BATCH_S = 0.06  # audio handed to the segmenter thread at a time
_EMPTY = np.zeros(0, dtype=np.float32)


def to_mono_float(frame: av.AudioFrame) -> Samples:
    """Any decoded frame (packed or planar, any channel count) → mono float32 in [-1, 1]."""
    if frame.samples == 0:
        return _EMPTY
    channels = len(frame.layout.channels)
    pcm = frame.to_ndarray()
    pcm = pcm.reshape(-1, channels) if not frame.format.is_planar else pcm.T
    scale = 32768.0 if np.issubdtype(pcm.dtype, np.integer) else 1.0
    return sanitize(pcm.astype(np.float32).mean(axis=1) / scale)


class MonoResampler:
    """Frames of any format, layout and rate → mono float32 at `rate`, channels averaged
    (swresample's own mono downmix sums at 0.707 per channel: +3 dB, clipping loud speech).
    A frame unlike the previous ones gets a fresh resampler; the old one's tail is kept."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._resampler: av.AudioResampler | None = None
        self._input: tuple[str, str, int] | None = None

    def convert(self, frame: av.AudioFrame) -> Samples:
        if frame.samples == 0:
            return _EMPTY
        outs: list[av.AudioFrame] = []
        shape = (frame.format.name, frame.layout.name, frame.sample_rate)
        if self._resampler is None or shape != self._input:
            if self._resampler is not None:
                outs.extend(self._resampler.resample(None))
            self._resampler = av.AudioResampler(format="fltp", layout=None, rate=self.rate)
            self._input = shape
        outs.extend(self._resampler.resample(frame))
        if not outs:
            return _EMPTY
        return sanitize(np.concatenate([out.to_ndarray().mean(axis=0) for out in outs]))


class GrowingSpeech(Protocol):
    """Who reads a segment while it is still spoken (live captions)."""

    def wants(self, open_s: float, pause_s: float) -> bool:
        """Whether to take the open segment's audio now; called on the segmenter's thread."""

    def grown(self, samples: Samples) -> None:
        """The open segment's audio so far; called on the event loop, must not block."""


class AudioIngest:
    """Consumes one inbound audio track for as long as it lives."""

    def __init__(
        self,
        segmenter: Segmenter,
        executor: Executor,
        on_live: Callable[[Samples], None],
        on_voice: Callable[[bool], Awaitable[None]],
        on_segment: Callable[[Segment, float], Awaitable[None]],
        growing: GrowingSpeech | None = None,
    ) -> None:
        self._growing = growing
        self._segmenter = segmenter
        self._executor = executor
        self._on_live = on_live
        self._on_voice = on_voice
        self._on_segment = on_segment
        self._resampler = MonoResampler(ASR_SAMPLE_RATE)
        self._live_resampler = MonoResampler(LIVE_RATE)
        self._batch: list[av.AudioFrame] = []
        # The segmenter runs on a pool thread, one batch at a time, its segments passed on in
        # order: a flush (leave, mute, shutdown) while a batch is being segmented waits for it,
        # else the two would share the segmenter's state on two threads and could lose speech.
        self._segmenting = asyncio.Lock()
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
        if self.muted or frame.samples == 0:
            return
        self._on_live(self._live(frame))
        self._batch.append(frame)
        self._batch_s += frame.samples / frame.sample_rate
        if self._batch_s >= BATCH_S:
            await self._segment_batch()

    def _live(self, frame: av.AudioFrame) -> Samples:
        """The original voice at 48 kHz (WebRTC's Opus already is; PCMU's 8 kHz is not)."""
        if frame.sample_rate == LIVE_RATE:
            return to_mono_float(frame)
        return self._live_resampler.convert(frame)  # 20 ms of 8 kHz: microseconds on the loop

    async def _segment_batch(self) -> None:
        frames, self._batch, self._batch_s = self._batch, [], 0.0
        loop = asyncio.get_running_loop()
        async with self._segmenting:
            segments, speaking, so_far = await loop.run_in_executor(
                self._executor, self._segment, frames
            )
            if speaking or speaking != self.speaking:
                self.speaking = speaking
                await self._on_voice(speaking)
            await self._emit(segments)
            if so_far is not None and self._growing is not None:
                self._growing.grown(so_far)

    async def _emit(self, segments: list[Segment]) -> None:
        # The segmenter has read past each segment's last voiced frame: that much audio ago, the
        # speech ended.
        now, position = time.time(), self._segmenter.position_s
        for segment in segments:
            ended = segment.voiced_until_s or segment.end_s
            await self._on_segment(segment, now - max(0.0, position - ended))

    def _segment(self, frames: list[av.AudioFrame]) -> tuple[list[Segment], bool, Samples | None]:
        """On a worker thread: resample to 16 kHz mono and run the VAD segmenter; the open
        segment's audio too, when live captions want it now."""
        chunks = [self._resampler.convert(frame) for frame in frames]
        segmenter = self._segmenter
        segments = segmenter.push(np.concatenate(chunks))
        growing, so_far = self._growing, None
        if segmenter.in_speech and growing and growing.wants(segmenter.open_s, segmenter.pause_s):
            so_far = segmenter.open_samples()
        return segments, segmenter.in_speech, so_far

    async def flush(self) -> None:
        """End of stream (leave, mute, shutdown): the open segment is finished, not lost."""
        if self._batch:
            await self._segment_batch()
        loop = asyncio.get_running_loop()
        async with self._segmenting:
            await self._emit(await loop.run_in_executor(self._executor, self._segmenter.flush))


class VideoIngest:
    """Consumes one inbound video track, keeping only its latest frame."""

    def __init__(self) -> None:
        self.latest: av.VideoFrame | None = None
        self.frames = 0
        self.on_frame: Callable[[av.VideoFrame], None] | None = None  # e.g. keep a history

    async def run(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                if isinstance(frame, av.VideoFrame):
                    self.latest = frame
                    self.frames += 1
                    if self.on_frame is not None:
                        self.on_frame(frame)
        except MediaStreamError:
            pass
