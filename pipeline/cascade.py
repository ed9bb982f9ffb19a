"""The cascade: ASR once per segment, then MT and TTS once per distinct target language."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from concurrent.futures import Executor
from dataclasses import dataclass, field

from pipeline.asr.base import SpeechRecognizer, Transcript
from pipeline.audio import Audio
from pipeline.errors import StageError
from pipeline.events import CaptionFinal, Stage, UtteranceDropped, UtteranceFailed
from pipeline.metrics import SPEECH_SECONDS, UTTERANCES, timed_stage
from pipeline.mt.routes import RoutedTranslator
from pipeline.segmenter import Segment
from pipeline.tts.base import SpeechSynthesizer


@dataclass(frozen=True)
class Utterance:
    """A segment to translate, with who said it and in which language."""

    utterance_id: str
    speaker: str
    sequence: int
    language: str
    segment: Segment


@dataclass
class Translation:
    """The terminal event for one target language, and its speech when it was synthesised."""

    event: CaptionFinal | UtteranceFailed
    speech: Audio | None = None
    mt_s: float = 0.0
    tts_s: float = 0.0


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

    def process(self, utterance: Utterance, targets: Iterable[str]) -> CascadeResult:
        result = CascadeResult(utterance)
        SPEECH_SECONDS.inc(utterance.segment.duration_s)
        if utterance.segment.speech_ratio < self._min_speech_ratio:
            return self._drop(result, "no_speech")
        try:
            with timed_stage("asr", "whisper") as asr_elapsed:
                result.transcript = self._recognizer.transcribe(
                    utterance.segment.samples, utterance.language
                )
        except Exception as exc:
            result.asr_s = asr_elapsed[0] if asr_elapsed else 0.0
            for target in targets:
                result.translations[target] = Translation(
                    self._failure(utterance, target, "asr", exc)
                )
            UTTERANCES.labels("failed").inc()
            return result
        result.asr_s = asr_elapsed[0]
        if not result.transcript.is_speech:
            return self._drop(result, result.transcript.dropped_reason or "no_speech")
        for target in dict.fromkeys(targets):
            result.translations[target] = self._translate(utterance, result.transcript.text, target)
        UTTERANCES.labels("translated").inc()
        return result

    async def process_async(
        self, utterance: Utterance, targets: Iterable[str], executor: Executor | None = None
    ) -> CascadeResult:
        """The same work on an executor thread, so the event loop stays free."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor, self.process, utterance, list(targets))

    def _drop(self, result: CascadeResult, reason: str) -> CascadeResult:
        result.dropped = UtteranceDropped(utterance_id=result.utterance.utterance_id, reason=reason)
        UTTERANCES.labels("dropped").inc()
        return result

    def _translate(self, utterance: Utterance, text: str, target: str) -> Translation:
        if target == utterance.language:
            return Translation(self._caption(utterance, text, target, text, "original"))
        translation = Translation(self._caption(utterance, text, target, "", ""))
        try:
            route = self._translator.planner.route(utterance.language, target)
            with timed_stage("mt", route.describe()) as mt_elapsed:
                translated = self._translator.translate(text, utterance.language, target)
            translation.mt_s = mt_elapsed[0]
            if self._synthesize and translated:
                with timed_stage("tts", target) as tts_elapsed:
                    translation.speech = self._synthesizer.synthesize(translated, target)
                translation.tts_s = tts_elapsed[0]
            translation.event = self._caption(utterance, text, target, translated, route.describe())
        except Exception as exc:
            stage: Stage = "tts" if translation.mt_s else "mt"
            translation.event = self._failure(utterance, target, stage, exc)
        return translation

    @staticmethod
    def _caption(
        utterance: Utterance, source_text: str, target: str, text: str, route: str
    ) -> CaptionFinal:
        segment = utterance.segment
        return CaptionFinal(
            utterance_id=utterance.utterance_id,
            sequence=utterance.sequence,
            speaker=utterance.speaker,
            source_language=utterance.language,
            source_text=source_text,
            target_language=target,
            target_text=text,
            speech_start_s=segment.start_s,
            speech_end_s=segment.end_s,
            route=route,
            emitted_at=time.time(),
        )

    @staticmethod
    def _failure(
        utterance: Utterance, target: str, stage: Stage, exc: Exception
    ) -> UtteranceFailed:
        reason = exc.reason if isinstance(exc, StageError) else str(exc) or type(exc).__name__
        recoverable = exc.recoverable if isinstance(exc, StageError) else True
        return UtteranceFailed(
            utterance_id=utterance.utterance_id,
            target_language=target,
            stage=stage,
            reason=reason,
            recoverable=recoverable,
        )
