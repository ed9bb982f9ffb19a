"""Cut a stream of 16 kHz audio into speech segments at pauses, and at a maximum length."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace

import numpy as np

from pipeline.audio import ASR_SAMPLE_RATE, Samples, sanitize
from pipeline.metrics import SEGMENTS
from pipeline.vad import FRAME_SAMPLES, VoiceActivityDetector

FRAME_S = FRAME_SAMPLES / ASR_SAMPLE_RATE
SILENCE_FLOOR = 10 ** (-70 / 20)  # peak below -70 dBFS
SILENCE_SETTLE_FRAMES = 16  # ~0.5 s: enough for the model's state to settle on silence


@dataclass(frozen=True)
class SegmenterConfig:
    threshold: float = 0.5
    min_silence_ms: int = 300
    speech_pad_ms: int = 160
    min_speech_ms: int = 250
    max_segment_s: float = 12.0

    def frames(self, ms: float) -> int:
        return max(1, round(ms / 1000 / FRAME_S))


@dataclass(frozen=True)
class Segment:
    """One stretch of speech, with its place in the stream."""

    index: int
    start_s: float
    samples: Samples
    speech_ratio: float
    cut_at_max_length: bool = False
    voiced_until_s: float = 0.0  # end of the last voiced frame: where the speech really ended

    @property
    def duration_s(self) -> float:
        return len(self.samples) / ASR_SAMPLE_RATE

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


@dataclass
class _OpenSegment:
    first_frame: int
    frames: list[Samples] = field(default_factory=list)
    probs: list[float] = field(default_factory=list)
    silence_run: int = 0


class Segmenter:
    """Streaming VAD segmenter: push chunks of any size, get finished segments back."""

    def __init__(self, vad: VoiceActivityDetector, config: SegmenterConfig | None = None) -> None:
        self._vad = vad
        self._config = config or SegmenterConfig()
        self._pending = np.zeros(0, dtype=np.float32)
        self._frame_index = 0
        self._segment_count = 0
        self._silent_run = 0
        self._pad: deque[tuple[Samples, float]] = deque(
            maxlen=self._config.frames(self._config.speech_pad_ms)
        )
        self._open: _OpenSegment | None = None

    @property
    def position_s(self) -> float:
        """How much audio (seconds) the segmenter has read."""
        return self._frame_index * FRAME_S

    @property
    def in_speech(self) -> bool:
        """Whether a segment is open (speech heard and not yet ended by a pause)."""
        return self._open is not None

    @property
    def open_s(self) -> float:
        """Length of the open segment so far (0 when none is open)."""
        return len(self._open.frames) * FRAME_S if self._open is not None else 0.0

    @property
    def pause_s(self) -> float:
        """How long the open segment has been quiet at its end (0 when none is open)."""
        return self._open.silence_run * FRAME_S if self._open is not None else 0.0

    def open_samples(self) -> Samples:
        """The open segment's audio so far (empty when none is open), for live captions."""
        if self._open is None or not self._open.frames:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(self._open.frames)

    def push(self, chunk: Samples) -> list[Segment]:
        """Feed audio; return the segments this audio completed. NaN/Inf become silence and
        overs are clipped, so one bad sample cannot reach the ASR and void a whole segment."""
        self._pending = np.concatenate([self._pending, sanitize(chunk)])
        finished: list[Segment] = []
        while len(self._pending) >= FRAME_SAMPLES:
            frame, self._pending = self._pending[:FRAME_SAMPLES], self._pending[FRAME_SAMPLES:]
            finished.extend(self._on_frame(frame))
        return finished

    def flush(self) -> list[Segment]:
        """End of stream: close any open segment (the partial last frame is padded with silence)."""
        finished: list[Segment] = []
        padding = 0
        if len(self._pending):
            padding = FRAME_SAMPLES - len(self._pending)
            frame = np.zeros(FRAME_SAMPLES, dtype=np.float32)
            frame[: len(self._pending)] = self._pending
            self._pending = np.zeros(0, dtype=np.float32)
            finished.extend(self._on_frame(frame))
        if self._open is not None:
            finished.extend(self._close(len(self._open.frames), cut=False))
        self._vad.reset()
        stream_end = self._frame_index * FRAME_SAMPLES - padding
        return [self._trim_to(segment, stream_end) for segment in finished]

    @staticmethod
    def _trim_to(segment: Segment, stream_end: int) -> Segment:
        """Drop the silence that padded the stream's partial last frame."""
        start = round(segment.start_s * ASR_SAMPLE_RATE)
        return replace(segment, samples=segment.samples[: max(stream_end - start, 0)])

    def _on_frame(self, frame: Samples) -> list[Segment]:
        # Long digital silence (a muted or idle microphone) is not speech: once the model has
        # seen enough of it to settle, skip it.
        silent = float(np.max(np.abs(frame))) < SILENCE_FLOOR
        self._silent_run = self._silent_run + 1 if silent else 0
        settled = self._silent_run > SILENCE_SETTLE_FRAMES
        prob = 0.0 if settled else self._vad.speech_probability(frame)
        self._frame_index += 1
        if self._open is None:
            return self._while_silent(frame, prob)
        return self._while_speaking(self._open, frame, prob)

    def _while_silent(self, frame: Samples, prob: float) -> list[Segment]:
        if prob < self._config.threshold:
            self._pad.append((frame, prob))
            return []
        first = self._frame_index - 1 - len(self._pad)
        self._open = _OpenSegment(first_frame=first)
        for padded, padded_prob in self._pad:
            self._open.frames.append(padded)
            self._open.probs.append(padded_prob)
        self._pad.clear()
        self._open.frames.append(frame)
        self._open.probs.append(prob)
        return []

    def _while_speaking(self, open_: _OpenSegment, frame: Samples, prob: float) -> list[Segment]:
        open_.frames.append(frame)
        open_.probs.append(prob)
        quiet = prob < self._config.threshold - 0.15
        open_.silence_run = open_.silence_run + 1 if quiet else 0
        if open_.silence_run >= self._config.frames(self._config.min_silence_ms):
            keep = (
                len(open_.frames)
                - open_.silence_run
                + self._config.frames(self._config.speech_pad_ms)
            )
            return self._close(min(keep, len(open_.frames)), cut=False)
        if len(open_.frames) * FRAME_S >= self._config.max_segment_s:
            return self._close(self._quietest_frame(open_), cut=True)
        return []

    def _quietest_frame(self, open_: _OpenSegment) -> int:
        """Where to cut: the least speech-like, quietest frame in the segment's second half."""
        start = len(open_.frames) // 2
        scores = [
            open_.probs[i] + float(np.sqrt(np.mean(open_.frames[i] ** 2)))
            for i in range(start, len(open_.frames))
        ]
        return start + int(np.argmin(scores)) + 1

    def _close(self, keep: int, cut: bool) -> list[Segment]:
        open_ = self._open
        assert open_ is not None
        frames, probs = open_.frames[:keep], open_.probs[:keep]
        rest_frames, rest_probs = open_.frames[keep:], open_.probs[keep:]
        self._open = None
        if cut and rest_frames:
            self._open = _OpenSegment(first_frame=open_.first_frame + keep)
            self._open.frames, self._open.probs = rest_frames, rest_probs
        else:
            for frame, prob in zip(rest_frames, rest_probs, strict=True):
                self._pad.append((frame, prob))
        return self._emit(open_.first_frame, frames, probs, cut)

    def _emit(
        self, first: int, frames: list[Samples], probs: list[float], cut: bool
    ) -> list[Segment]:
        speech_frames = sum(p >= self._config.threshold for p in probs)
        if speech_frames < self._config.frames(self._config.min_speech_ms):
            return []
        segment = Segment(
            index=self._segment_count,
            start_s=first * FRAME_S,
            samples=np.concatenate(frames),
            speech_ratio=speech_frames / len(frames),
            voiced_until_s=(first + _last_voiced(probs, self._config.threshold) + 1) * FRAME_S,
            cut_at_max_length=cut,
        )
        self._segment_count += 1
        SEGMENTS.labels("max_length" if cut else "pause").inc()
        return [segment]


def _last_voiced(probs: list[float], threshold: float) -> int:
    return max((i for i, p in enumerate(probs) if p >= threshold), default=len(probs) - 1)


def segment_stream(
    chunks: Iterable[Samples], vad: VoiceActivityDetector, config: SegmenterConfig | None = None
) -> Iterator[Segment]:
    """Segments of a whole stream of chunks, yielded as soon as each is complete."""
    segmenter = Segmenter(vad, config)
    for chunk in chunks:
        yield from segmenter.push(chunk)
    yield from segmenter.flush()
