"""Scripted fakes at the service boundary, one per interface: the stages (recognizer,
translator, voice, VAD, lip-syncer, a stuck stage), a peer connection with its event channel,
and the bus. In the style of livekit's `fake_stt`/`fake_tts`: each does exactly what the test
scripts (text, delays, failures, a stage that never returns), records what it was asked, and
the stage fakes can wrap a real backend instead.

They stand in for models and the network in unit tests and in benchmarks of the plumbing; the
end-to-end tests run the real thing."""

from __future__ import annotations

import asyncio
import fractions
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from pipeline.asr.base import SpeechRecognizer, Transcript
from pipeline.audio import Audio, Samples
from pipeline.bus import Bus, Job
from pipeline.cascade import Cascade
from pipeline.errors import StageError, UnsupportedPairError
from pipeline.events import CaptionFinal
from pipeline.lipsync.base import LipSyncer, Speech, VideoClip
from pipeline.live import PartialReading, PartialRequest
from pipeline.mt.base import Pair, Translator
from pipeline.mt.routes import RoutedTranslator, RoutePlanner
from pipeline.tts.base import SpeechSynthesizer
from pipeline.vad import VoiceActivityDetector
from server.errors import BadRequest
from server.media import PacketTrack
from server.peer import Peer, PeerEvents, PickOutgoing

T = TypeVar("T")


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
        self.prefixes: list[str] = []
        self.threads: list[str] = []

    def transcribe(self, samples: Samples, language: str, prefix: str = "") -> Transcript:
        self.calls.append(language)
        self.prefixes.append(prefix)
        self.threads.append(threading.current_thread().name)
        self.script.play()
        if self.inner is not None:
            return self.inner.transcribe(samples, language, prefix)
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

    def synthesize(self, text: str, language: str, voice: str | None = None) -> Audio:
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


class FakeChannel:
    """An event channel that is open at once and keeps every event sent on it (parsed)."""

    def __init__(self) -> None:
        self.readyState = "open"
        self.bufferedAmount = 0
        self.events: list[dict[str, Any]] = []
        self._handlers: dict[str, list[Callable[..., Any]]] = {}

    def send(self, data: str) -> None:
        self.events.append(json.loads(data))

    def on(self, event: str, handler: Callable[..., Any]) -> Any:
        self._handlers.setdefault(event, []).append(handler)
        return handler

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event["type"] == kind]


class FakePeer(Peer):
    """A peer connection without a network: negotiation puts the room's tracks on the offer's
    m-lines (read from its `m=` lines) and answers a stub; the test drives the rest (`connect`,
    `open_channel`, `send_track`, `fail`, `vanish`)."""

    def __init__(self, events: PeerEvents, refuse: str | None = None) -> None:
        self.events = events
        self.refuse = refuse
        self._state = "new"
        self._sending: list[PacketTrack] = []
        self.channel: FakeChannel | None = None
        self.offers: list[str] = []

    @property
    def state(self) -> str:
        return self._state

    async def negotiate(self, offer: str, pick: PickOutgoing) -> str:
        self.offers.append(offer)
        if self.refuse is not None:
            raise BadRequest(f"cannot use this offer: {self.refuse}")
        kinds = [line.split()[0][2:] for line in offer.splitlines() if line.startswith("m=")]
        for kind in kinds[len(self._sending) :]:
            if kind in ("audio", "video") and (track := pick(kind, set(self._sending))):
                self._sending.append(track)
        self._set("connecting")
        return "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"

    def sending(self) -> set[PacketTrack]:
        return set(self._sending)

    def connect(self) -> FakeChannel:
        """ICE and DTLS done, the event channel open: what a healthy client gets to."""
        self._set("connected")
        return self.open_channel()

    def open_channel(self) -> FakeChannel:
        self.channel = FakeChannel()
        self.events.on_channel(self.channel)
        return self.channel

    def send_track(self, track: MediaStreamTrack) -> None:
        self.events.on_track(track)

    def fail(self) -> None:
        self._set("failed")

    def vanish(self) -> None:
        """The event channel closed: the quickest sign of a crashed client."""
        self.events.on_vanished()

    async def close(self) -> None:
        if self._state != "closed":
            self._set("closed")

    def _set(self, state: str) -> None:
        self._state = state
        self.events.on_state(state)


class FakePeers:
    """A peer factory for a room context; keeps every peer it made, newest last."""

    def __init__(self, refuse: str | None = None) -> None:
        self.made: list[FakePeer] = []
        self.refuse = refuse

    def __call__(self, events: PeerEvents) -> Peer:
        peer = FakePeer(events, self.refuse)
        self.made.append(peer)
        return peer

    @property
    def last(self) -> FakePeer:
        return self.made[-1]


class RecordingBus(Bus):
    """Keeps the jobs it is given; the test delivers their results when it wants. Live
    captions are read by `live` (a cascade of fakes, say) at once, or skipped without one."""

    def __init__(self, live: Cascade | None = None) -> None:
        self.jobs: list[Job] = []
        self.live = live
        self.partial_requests: list[PartialRequest] = []

    async def submit(self, job: Job) -> None:
        self.jobs.append(job)

    async def read_partial(self, request: PartialRequest) -> PartialReading | None:
        self.partial_requests.append(request)
        return self.live.read_partial(request) if self.live is not None else None


class InlineExecutor(Executor):
    """Runs submitted work at once, on the calling thread: with virtual time, media and VAD
    work then takes no time at all and every run is deterministic."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


class FakeMicrophone(MediaStreamTrack):
    """A microphone on the event loop's clock (virtual in unit tests): 20 ms frames of 48 kHz
    mono, the queued sound first, then silence, until stopped."""

    kind = "audio"
    FRAME = 960

    def __init__(self) -> None:
        super().__init__()
        self._queued: deque[Samples] = deque()
        self._pts = 0

    def say(self, seconds: float, level: float = 0.3) -> None:
        """Queue `seconds` of a voice-like tone (what a FakeVAD is scripted to call speech)."""
        t = np.arange(int(seconds * 48000)) / 48000
        tone = level * np.sin(2 * np.pi * 180 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))
        samples = tone.astype(np.float32)
        for start in range(0, len(samples), self.FRAME):
            chunk = samples[start : start + self.FRAME]
            self._queued.append(np.pad(chunk, (0, self.FRAME - len(chunk))))

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        await asyncio.sleep(self.FRAME / 48000)
        samples = self._queued.popleft() if self._queued else np.zeros(self.FRAME, np.float32)
        pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate, frame.pts = 48000, self._pts
        frame.time_base = fractions.Fraction(1, 48000)
        self._pts += self.FRAME
        return frame


def fake_caption(
    utterance_id: str = "room/ana/0",
    target: str = "pt",
    text: str | None = None,
    source: str = "en",
    speech_end_at: float = 0.0,
) -> CaptionFinal:
    """A final caption as the cascade makes one (the speaker is the id's middle part)."""
    return CaptionFinal(
        utterance_id=utterance_id,
        sequence=int(utterance_id.rsplit("/", 1)[-1]) if utterance_id.count("/") == 2 else 0,
        speaker=utterance_id.split("/")[1] if utterance_id.count("/") == 2 else "ana",
        source_language=source,
        source_text="hello",
        target_language=target,
        target_text=text if text is not None else f"hello in {target}",
        speech_start_s=0.0,
        speech_end_s=1.0,
        speech_end_at=speech_end_at,
    )
