"""Scripted fakes at the service boundary, one per stage interface (in the style of livekit's
`fake_stt`/`fake_tts`): each does exactly what the test scripts (text, delays, failures, a
stage that never returns), records what it was asked, and can wrap a real backend instead.

They stand in for models in unit tests and benchmarks of the plumbing; the end-to-end tests run
the real models."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from pipeline.asr.base import SpeechRecognizer, Transcript
from pipeline.audio import Audio, Samples
from pipeline.cascade import Cascade
from pipeline.errors import StageError, UnsupportedPairError
from pipeline.lipsync.base import LipSyncer, Speech, VideoClip
from pipeline.mt.base import Pair, Translator
from pipeline.mt.routes import RoutedTranslator, RoutePlanner
from pipeline.tts.base import SpeechSynthesizer
from pipeline.vad import VoiceActivityDetector


@dataclass
class Stuck:
    """A stage that blocks until released: `wait()` inside the stage, `release()` from the test."""

    released: threading.Event = field(default_factory=threading.Event)

    def wait(self) -> None:
        self.released.wait()

    def release(self) -> None:
        self.released.set()


@dataclass
class Script:
    """What one call of a fake does, in order of precedence: wait to be released, sleep, fail."""

    stuck: Stuck | None = None
    delay_s: float = 0.0
    error: Exception | None = None

    def play(self) -> None:
        if self.stuck is not None:
            self.stuck.wait()
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.error is not None:
            raise self.error


class FakeRecognizer(SpeechRecognizer):
    """Says the scripted texts in turn (the last one again once the script runs out), or what a
    wrapped real recognizer hears; records each call's language and thread."""

    def __init__(
        self,
        texts: Iterable[str] = ("hello",),
        inner: SpeechRecognizer | None = None,
        script: Script | None = None,
    ) -> None:
        self._texts = deque(texts)
        self.inner = inner
        self.script = script or Script()
        self.calls: list[str] = []
        self.threads: list[str] = []

    def transcribe(self, samples: Samples, language: str) -> Transcript:
        self.calls.append(language)
        self.threads.append(threading.current_thread().name)
        self.script.play()
        if self.inner is not None:
            return self.inner.transcribe(samples, language)
        text = self._texts.popleft() if len(self._texts) > 1 else self._texts[0]
        return Transcript(text=text, language=language)


class FakeTranslator(Translator):
    """Serves the declared pairs; its output shows the hop (`text|name:src>tgt`) unless it
    `copies`, or it wraps a real translator. A pair scripted in `stuck` or `failing` blocks or
    fails there only."""

    def __init__(
        self,
        pairs: dict[Pair, float],
        name: str = "fake",
        copies: bool = False,
        inner: Translator | None = None,
        stuck: dict[str, Stuck] | None = None,
        failing: dict[str, str] | None = None,
    ) -> None:
        super().__init__(pairs)
        self.name, self.copies, self.inner = name, copies, inner
        self.stuck = stuck or {}
        self.failing = failing or {}
        self.calls: list[tuple[str, str, str]] = []
        self.closed = False

    def translate(self, text: str, source: str, target: str) -> str:
        self.calls.append((text, source, target))
        if target in self.stuck:
            self.stuck[target].wait()
        if target in self.failing:
            raise StageError("mt", self.failing[target])
        if self.inner is not None:
            return self.inner.translate(text, source, target)
        if (source, target) not in self.pairs:
            raise UnsupportedPairError(f"{self.name} has no {source}→{target}")
        return text if self.copies else f"{text}|{self.name}:{source}>{target}"

    def close(self) -> None:
        self.closed = True


class FakeVoice(SpeechSynthesizer):
    """A tone of `seconds_per_word` per word at 48 kHz (or a wrapped real voice); a language
    scripted in `stuck` or `failing` blocks or fails; every call lands in `timeline`."""

    def __init__(
        self,
        seconds_per_word: float = 0.3,
        inner: SpeechSynthesizer | None = None,
        stuck: dict[str, Stuck] | None = None,
        failing: dict[str, str] | None = None,
        timeline: list[str] | None = None,
    ) -> None:
        self.seconds_per_word, self.inner = seconds_per_word, inner
        self.stuck = stuck or {}
        self.failing = failing or {}
        self.timeline = timeline if timeline is not None else []

    def synthesize(self, text: str, language: str) -> Audio:
        self.timeline.append(f"tts:{language}")
        if language in self.stuck:
            self.stuck[language].wait()
        if language in self.failing:
            raise StageError("tts", self.failing[language])
        if self.inner is not None:
            return self.inner.synthesize(text, language)
        seconds = max(0.01, self.seconds_per_word * len(text.split()))
        t = np.arange(int(seconds * 48000)) / 48000
        return Audio((0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 48000)


class FakeVAD(VoiceActivityDetector):
    """Scripted speech probabilities, one per 32 ms frame (then `after` for ever)."""

    def __init__(self, probabilities: Iterable[float], after: float = 0.0) -> None:
        self._probabilities = deque(probabilities)
        self.after = after
        self.frames = 0
        self.resets = 0

    def speech_probability(self, frame: Samples) -> float:
        self.frames += 1
        return self._probabilities.popleft() if self._probabilities else self.after

    def reset(self) -> None:
        self.resets += 1


class FakeLipSyncer(LipSyncer):
    """Retimes the clip to the speech (the contract every backend keeps), frames untouched, or
    fails when scripted; records what it was asked to dub."""

    def __init__(self, script: Script | None = None) -> None:
        self.script = script or Script()
        self.calls: list[tuple[int, float]] = []

    def sync(self, clip: VideoClip, speech: Speech) -> VideoClip:
        duration_s = speech.audio.duration_s
        self.calls.append((len(clip.frames), duration_s))
        self.script.play()
        count = round(duration_s * clip.fps)
        if not clip.frames:
            return VideoClip(frames=[], fps=clip.fps)
        step = len(clip.frames) / max(count, 1)
        frames = [clip.frames[min(len(clip.frames) - 1, int(i * step))] for i in range(count)]
        return VideoClip(frames=frames, fps=clip.fps)


def fake_cascade(
    recognizer: SpeechRecognizer | None = None,
    translator: Translator | None = None,
    voice: SpeechSynthesizer | None = None,
    pairs: Iterable[Pair] = (("en", "pt"),),
) -> Cascade:
    """A cascade of fakes (or of what is given): instant, deterministic, no model loaded."""
    mt = translator or FakeTranslator(dict.fromkeys(pairs, 1.0), copies=True)
    return Cascade(
        recognizer or FakeRecognizer(),
        RoutedTranslator(RoutePlanner([mt])),
        voice or FakeVoice(seconds_per_word=0.01),
    )
