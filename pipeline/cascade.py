"""The cascade: ASR once per segment, then MT and TTS once per distinct target language."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field

from pipeline.agreement import agree
from pipeline.asr.base import SpeechRecognizer, Transcript
from pipeline.audio import Audio
from pipeline.errors import StageError, UnsupportedLanguageError, UnsupportedPairError
from pipeline.events import CaptionFinal, DropReason, Stage, UtteranceDropped, UtteranceFailed
from pipeline.live import PartialReading, PartialRequest
from pipeline.metrics import SPEECH_SECONDS, UTTERANCES, timed_stage
from pipeline.mt.routes import RoutedTranslator
from pipeline.segmenter import Segment
from pipeline.tts.base import SpeechSynthesizer
from pipeline.tts.interleave import Dubbing, speak_in_turns

UNSUPPORTED = (UnsupportedLanguageError, UnsupportedPairError)

LOG = logging.getLogger(__name__)
CaptionCallback = Callable[[CaptionFinal], None]
ClauseCallback = Callable[[str, Audio], None]  # (target language, one clause of its speech)
Voices = Mapping[str, str]  # target language → the voice that speaks it (else its default)


@dataclass(frozen=True)
class Utterance:
    """A segment to translate, with who said it and in which language."""

    utterance_id: str
    speaker: str
    sequence: int
    language: str
    segment: Segment
    committed: str = ""  # words its live captions settled: its transcript continues them
    heard: str = ""  # its transcript, when a decode at the pause already covered it

    @property
    def said(self) -> Said:
        segment = self.segment
        return Said(
            self.utterance_id,
            self.speaker,
            self.sequence,
            self.language,
            segment.start_s,
            segment.end_s,
        )


@dataclass(frozen=True)
class Said:
    """An utterance without its audio: what MT, TTS and captions need (and the bus carries)."""

    utterance_id: str
    speaker: str
    sequence: int
    language: str
    start_s: float
    end_s: float


@dataclass
class Translation:
    """The terminal event for one target language, and its speech when it was synthesised."""

    event: CaptionFinal | UtteranceFailed
    speech: Audio | None = None
    delivered: bool = False  # the caption already went out before the speech was made
    mt_s: float = 0.0
    tts_s: float = 0.0
    first_audio_s: float = 0.0  # text in → first clause out


@dataclass
class CascadeResult:
    """Everything one utterance produced: a drop, or one terminal event per target language."""

    utterance: Utterance
    transcript: Transcript | None = None
    dropped: UtteranceDropped | None = None
    translations: dict[str, Translation] = field(default_factory=dict)
    asr_s: float = 0.0

    @property
    def processing_s(self) -> float:
        return self.asr_s + sum(t.mt_s + t.tts_s for t in self.translations.values())


class Cascade:
    """Runs the stages for one utterance. Blocking: call it from a worker thread, never the loop."""

    def __init__(
        self,
        recognizer: SpeechRecognizer,
        translator: RoutedTranslator,
        synthesizer: SpeechSynthesizer,
        min_speech_ratio: float = 0.15,
        synthesize: bool = True,
    ) -> None:
        self._recognizer = recognizer
        self._translator = translator
        self._synthesizer = synthesizer
        self._min_speech_ratio = min_speech_ratio
        self._synthesize = synthesize

    def process(
        self,
        utterance: Utterance,
        targets: Iterable[str],
        on_caption: CaptionCallback | None = None,
        voices: Voices | None = None,
        on_clause: ClauseCallback | None = None,
    ) -> CascadeResult:
        """ASR once, then per target: MT (its caption handed to `on_caption` at once), then TTS
        with the target's voice in `voices`, each clause handed to `on_clause` as it is made."""
        return self.speak(utterance, self.read(utterance, targets, on_caption), voices, on_clause)

    def read(
        self,
        utterance: Utterance,
        targets: Iterable[str],
        on_caption: CaptionCallback | None = None,
    ) -> CascadeResult:
        """ASR once, then MT per target, each caption handed to `on_caption` at once: every
        caption before any voice (they are cheap, and listeners read them)."""
        targets = list(dict.fromkeys(targets))
        result = self.recognize(utterance, targets)
        if result.transcript is None or not result.transcript.is_speech:
            return result
        for target in targets:
            translation = self.translate(utterance.said, result.transcript.text, target)
            result.translations[target] = translation
            if on_caption is not None and isinstance(translation.event, CaptionFinal):
                on_caption(translation.event)
                translation.delivered = True
        return result

    def speak(
        self,
        utterance: Utterance,
        result: CascadeResult,
        voices: Voices | None = None,
        on_clause: ClauseCallback | None = None,
    ) -> CascadeResult:
        """TTS of the captions `read` made, with each target's voice in `voices`."""
        if result.transcript is None or not result.transcript.is_speech:
            return result
        if self._synthesize:
            self._dub_all(utterance.said, result.translations, voices or {}, on_clause)
        UTTERANCES.labels("translated").inc()
        return result

    def recognize(self, utterance: Utterance, targets: Iterable[str]) -> CascadeResult:
        """The ASR stage: a transcript, a drop, or (ASR failed) a failure for every target."""
        return self.recognize_many([(utterance, tuple(targets))])[0]

    def recognize_many(self, jobs: list[tuple[Utterance, tuple[str, ...]]]) -> list[CascadeResult]:
        """The ASR stage for several utterances, in one model call where the recognizer batches."""
        results = [CascadeResult(utterance) for utterance, _ in jobs]
        heard: list[int] = []
        for index, (utterance, _targets) in enumerate(jobs):
            SPEECH_SECONDS.inc(utterance.segment.duration_s)
            if utterance.segment.speech_ratio < self._min_speech_ratio:
                self._drop(results[index], "no_speech")
            else:
                heard.append(index)
        if not heard:
            return results
        try:
            with timed_stage("asr", "whisper") as asr_elapsed:
                transcripts = self._transcribe([jobs[i][0] for i in heard])
        except Exception as exc:
            for index in heard:
                self._asr_failed(results[index], jobs[index][1], exc)
            return results
        for index, transcript in zip(heard, transcripts, strict=True):
            result = results[index]
            result.asr_s = asr_elapsed[0] / len(heard)
            result.transcript = transcript
            if not transcript.is_speech:
                self._drop(result, transcript.dropped_reason or "no_speech")
        return results

    def _transcribe(self, utterances: list[Utterance]) -> list[Transcript]:
        """Transcripts in order: already heard, continuing settled words, or in one batch."""
        transcripts: dict[int, Transcript] = {}
        batch: list[int] = []
        for index, utterance in enumerate(utterances):
            if utterance.heard:
                transcripts[index] = Transcript(utterance.heard, utterance.language)
            elif utterance.committed:
                transcripts[index] = self._recognizer.transcribe(
                    utterance.segment.samples, utterance.language, utterance.committed
                )
            else:
                batch.append(index)
        items = [(utterances[i].segment.samples, utterances[i].language) for i in batch]
        transcripts.update(zip(batch, self._recognizer.transcribe_batch(items), strict=True))
        return [transcripts[index] for index in range(len(utterances))]

    def read_partial(self, request: PartialRequest) -> PartialReading:
        """A live caption of a segment still being spoken: what the recognizer hears so far
        (continuing the committed words), what is settled now, and the settled words in each
        target language (translated only when they grew; a failing pair is left out)."""
        language = request.language
        with timed_stage("asr_partial", "whisper"):
            read = (
                self._recognizer.transcribe
                if request.whole
                else self._recognizer.transcribe_partial
            )
            heard = read(request.samples, language, request.committed)
        agreement = agree(request.committed, request.previous, heard.text)
        translations: dict[str, str] = {}
        if agreement.committed != request.committed:
            for target in request.targets:
                try:
                    route = self._translator.planner.route(language, target)
                    with timed_stage("mt_partial", route.describe()):
                        translations[target] = self._translator.translate(
                            agreement.committed, language, target
                        )
                except Exception as exc:  # a live caption is best effort; the final reports
                    LOG.debug("partial MT %s→%s failed: %s", language, target, exc)
        return PartialReading(heard.text, agreement, translations)

    def _asr_failed(self, result: CascadeResult, targets: Iterable[str], exc: Exception) -> None:
        for target in targets:
            result.translations[target] = Translation(
                self._failure(result.utterance.said, target, "asr", exc)
            )
        UTTERANCES.labels("failed").inc()

    async def process_async(
        self,
        utterance: Utterance,
        targets: Iterable[str],
        executor: Executor | None = None,
        on_caption: CaptionCallback | None = None,
        voices: Voices | None = None,
        on_clause: ClauseCallback | None = None,
    ) -> CascadeResult:
        """The same work on an executor thread, so the event loop stays free. `on_caption` and
        `on_clause` are called on the event loop, as soon as each caption or clause exists."""
        read = await self.read_async(utterance, targets, executor, on_caption)
        return await self.speak_async(utterance, read, executor, voices, on_clause)

    async def read_async(
        self,
        utterance: Utterance,
        targets: Iterable[str],
        executor: Executor | None = None,
        on_caption: CaptionCallback | None = None,
    ) -> CascadeResult:
        """`read` on an executor thread; `on_caption` is called on the event loop."""
        loop = asyncio.get_running_loop()
        caption_callback = _on_loop(loop, on_caption)
        return await loop.run_in_executor(
            executor, lambda: self.read(utterance, list(targets), caption_callback)
        )

    async def speak_async(
        self,
        utterance: Utterance,
        result: CascadeResult,
        executor: Executor | None = None,
        voices: Voices | None = None,
        on_clause: ClauseCallback | None = None,
    ) -> CascadeResult:
        """`speak` on an executor thread; `on_clause` is called on the event loop."""
        loop = asyncio.get_running_loop()
        clause_callback = _on_loop(loop, on_clause)
        return await loop.run_in_executor(
            executor, lambda: self.speak(utterance, result, voices, clause_callback)
        )

    def _drop(self, result: CascadeResult, reason: DropReason) -> CascadeResult:
        result.dropped = UtteranceDropped(utterance_id=result.utterance.utterance_id, reason=reason)
        UTTERANCES.labels("dropped").inc()
        return result

    def translate(self, utterance: Said, text: str, target: str) -> Translation:
        """The MT stage for one target: a caption, or a failure event."""
        if target == utterance.language:
            return Translation(self._caption(utterance, text, target, text, "original"))
        try:
            route = self._translator.planner.route(utterance.language, target)
            with timed_stage("mt", route.describe()) as mt_elapsed:
                translated = self._translator.translate(text, utterance.language, target)
        except Exception as exc:
            return Translation(self._failure(utterance, target, "mt", exc))
        caption = self._caption(utterance, text, target, translated, route.describe())
        return Translation(caption, mt_s=mt_elapsed[0])

    def dub(
        self,
        utterance: Said,
        translation: Translation,
        voice: str | None = None,
        on_clause: ClauseCallback | None = None,
    ) -> None:
        """Speech for one caption, clause by clause (each to `on_clause` as it is made)."""
        language = translation.event.target_language
        voices = {language: voice} if voice else {}
        self._dub_all(utterance, {language: translation}, voices, on_clause)

    def _dub_all(
        self,
        utterance: Said,
        translations: Mapping[str, Translation],
        voices: Voices,
        on_clause: ClauseCallback | None,
    ) -> None:
        """Every caption's speech, a clause of each language in turn. A voice that fails keeps
        what it said so far and leaves the caption (the terminal event) as it is; the failure
        is counted in dragoman_stage_failures_total{stage="tts"}."""
        dubbings = {
            language: Dubbing(
                language,
                self._clauses(event.target_text, language, voices.get(language)),
                on_clause,
                utterance.utterance_id,
            )
            for language, translation in translations.items()
            if isinstance(event := translation.event, CaptionFinal)
            and event.route != "original"
            and event.target_text
        }
        speak_in_turns(list(dubbings.values()))
        for language, dubbing in dubbings.items():
            translation = translations[language]
            translation.speech = dubbing.speech
            translation.tts_s, translation.first_audio_s = dubbing.busy_s, dubbing.first_audio_s

    def _clauses(self, text: str, language: str, voice: str | None) -> Iterator[Audio]:
        # A generator, so that even a voice failing at its first call fails inside the dubbing.
        yield from self._synthesizer.clauses(text, language, voice)

    @staticmethod
    def _caption(
        utterance: Said, source_text: str, target: str, text: str, route: str
    ) -> CaptionFinal:
        return CaptionFinal(
            utterance_id=utterance.utterance_id,
            sequence=utterance.sequence,
            speaker=utterance.speaker,
            source_language=utterance.language,
            source_text=source_text,
            target_language=target,
            target_text=text,
            speech_start_s=utterance.start_s,
            speech_end_s=utterance.end_s,
            route=route,
            emitted_at=time.time(),
        )

    @staticmethod
    def _failure(utterance: Said, target: str, stage: Stage, exc: Exception) -> UtteranceFailed:
        reason = exc.reason if isinstance(exc, StageError) else str(exc) or type(exc).__name__
        recoverable = exc.recoverable if isinstance(exc, StageError) else True
        return UtteranceFailed(
            utterance_id=utterance.utterance_id,
            target_language=target,
            stage=stage,
            reason=reason,
            cause="unsupported" if isinstance(exc, UNSUPPORTED) else "stage_error",
            recoverable=recoverable,
        )


def _on_loop(
    loop: asyncio.AbstractEventLoop, callback: Callable[..., None] | None
) -> Callable[..., None] | None:
    """A callback that worker threads may call: it runs on `loop`."""
    if callback is None:
        return None

    def from_worker(*args: object) -> None:
        loop.call_soon_threadsafe(callback, *args)

    return from_worker
