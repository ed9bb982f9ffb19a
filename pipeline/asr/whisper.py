"""faster-whisper backend with guards against text hallucinated from silence or noise."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from faster_whisper import WhisperModel

from pipeline.asr.base import SpeechRecognizer, Transcript
from pipeline.asr.models import WhisperSource
from pipeline.audio import Samples
from pipeline.errors import UnsupportedLanguageError

# Phrases Whisper is known to produce from non-speech (credits, sign-offs of its training videos).
_HALLUCINATIONS = re.compile(
    r"^(thank you( (so much|very much))?( for watching)?|thanks for watching|subtitles by.*|"
    r"subtítulos.*|legendas.*|sous-titr.*|untertitel.*|amara\.org.*|you|bye)[.!]*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class HallucinationGuard:
    """Whisper's own no-speech and repetition thresholds, applied per decoded segment."""

    no_speech_threshold: float = 0.6
    logprob_threshold: float = -1.0
    compression_ratio_threshold: float = 2.4

    def rejects(self, segment: _DecodedSegment) -> str | None:
        if segment.compression_ratio > self.compression_ratio_threshold:
            return "repetitive"
        silent = segment.no_speech_prob > self.no_speech_threshold
        if silent and segment.avg_logprob < self.logprob_threshold:
            return "no_speech"
        if _HALLUCINATIONS.match(segment.text.strip()) and segment.no_speech_prob > 0.2:
            return "hallucination"
        return None


class _DecodedSegment(Protocol):
    text: str
    no_speech_prob: float
    avg_logprob: float
    compression_ratio: float


class WhisperRecognizer(SpeechRecognizer):
    """One shared WhisperModel; transcribe() runs in the caller's (worker) thread."""

    def __init__(
        self,
        source: WhisperSource,
        device: str = "cpu",
        compute_type: str = "int8",
        threads: int = 2,
        beam_size: int = 1,
        guard: HallucinationGuard | None = None,
    ) -> None:
        self.source = source
        self._model = WhisperModel(
            source.location, device=device, compute_type=compute_type, cpu_threads=threads
        )
        self._beam_size = beam_size
        self._guard = guard or HallucinationGuard()

    def languages(self) -> list[str]:
        return super().languages() if self.source.multilingual else ["en"]

    def transcribe(self, samples: Samples, language: str) -> Transcript:
        if not self.source.multilingual and language != "en":
            raise UnsupportedLanguageError(f"ASR model {self.source.name} is English-only")
        segments, _info = self._model.transcribe(
            samples,
            language=language,
            beam_size=self._beam_size,
            temperature=0.0,
            condition_on_previous_text=False,
            without_timestamps=True,
            vad_filter=False,
            no_speech_threshold=self._guard.no_speech_threshold,
            log_prob_threshold=self._guard.logprob_threshold,
            compression_ratio_threshold=self._guard.compression_ratio_threshold,
        )
        # faster-whisper decodes lazily: consuming the generator is the work, here in this thread.
        return self._keep_speech(segments, language)

    def _keep_speech(self, segments: Iterable[Any], language: str) -> Transcript:
        kept: list[str] = []
        reasons: list[str] = []
        for segment in segments:
            reason = self._guard.rejects(segment)
            if reason is None:
                kept.append(segment.text.strip())
            else:
                reasons.append(reason)
        text = " ".join(part for part in kept if part)
        dropped = None if text else (reasons[0] if reasons else "no_speech")
        return Transcript(text=text, language=language, dropped_reason=dropped)
