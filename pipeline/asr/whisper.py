"""faster-whisper backend with guards against text hallucinated from silence or noise."""

from __future__ import annotations

import bisect
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import ctranslate2
import numpy as np
from faster_whisper import BatchedInferencePipeline, WhisperModel
from faster_whisper.tokenizer import Tokenizer

from pipeline.agreement import plain_word
from pipeline.asr.base import SpeechRecognizer, Transcript
from pipeline.asr.models import WhisperSource
from pipeline.audio import ASR_SAMPLE_RATE, Samples, sanitize
from pipeline.errors import UnsupportedLanguageError
from pipeline.events import DropReason

# Phrases Whisper is known to produce from non-speech (credits, sign-offs of its training videos).
_HALLUCINATIONS = re.compile(
    r"^(thank you( (so much|very much))?( for watching)?|thanks for watching|subtitles by.*|"
    r"subtítulos.*|legendas.*|sous-titr.*|untertitel.*|amara\.org.*|you|bye)[.!]*$",
    re.IGNORECASE,
)


WINDOW_FRAMES = 3000  # Whisper's 30 s window, in 10 ms feature frames
PARTIAL_MARGIN_FRAMES = 100  # a partial reading's window: its audio and 1 s
TOKENS_PER_S = 6  # fast speech is ~4 tokens a second


@dataclass(frozen=True)
class HallucinationGuard:
    """Whisper's own no-speech and repetition thresholds, applied per decoded segment."""

    no_speech_threshold: float = 0.6
    logprob_threshold: float = -1.0
    compression_ratio_threshold: float = 2.4

    def rejects(self, segment: _DecodedSegment) -> DropReason | None:
        if segment.compression_ratio > self.compression_ratio_threshold:
            return "repetitive"
        silent = segment.no_speech_prob > self.no_speech_threshold
        if silent and segment.avg_logprob < self.logprob_threshold:
            return "no_speech"
        if silent and _stutters(segment.text):  # too short for the compression ratio to tell
            return "repetitive"
        if _HALLUCINATIONS.match(segment.text.strip()) and segment.no_speech_prob > 0.2:
            return "hallucination"
        return None


def _stutters(text: str) -> bool:
    """One word over and over ("you're you're you're you're"): Whisper looping on a tone."""
    words = re.findall(r"[\w']+", text.lower())
    return len(words) >= 3 and 3 * len(set(words)) <= len(words)


class _DecodedSegment(Protocol):
    text: str
    no_speech_prob: float
    avg_logprob: float
    compression_ratio: float


def without_echo(text: str) -> str:
    """The text up to where it starts over: a short window's decode, run past its speech,
    tends to say its opening words (or its last phrase) again."""
    words = text.split()
    plain = [plain_word(word) for word in words]
    for cut in range(2, len(words)):
        restarts = cut >= 3 and plain[cut : cut + 3] == plain[:3]
        repeats = any(
            plain[cut : cut + span] == plain[cut - span : cut]
            for span in range(2, min(cut, len(words) - cut) + 1)
        )
        if restarts or repeats:
            return " ".join(words[:cut])
    return " ".join(words)


def continuing(prefix: str, transcript: Transcript) -> Transcript:
    """The transcript as a continuation of `prefix`. Whisper's text repeats a prefix it was
    given (its punctuation may differ: "types" comes back as "types,"); a decode that found
    nothing more still said the prefix."""
    said = transcript.text.split()
    given = prefix.split()
    if [plain_word(w) for w in said[: len(given)]] == [plain_word(w) for w in given]:
        return transcript
    return Transcript(text=" ".join([*given, *said]), language=transcript.language)


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
        workers: int = 1,
    ) -> None:
        self.source = source
        # `workers` > 1: calls from several threads run side by side (a final's decode need not
        # wait for a live caption's), each on `threads` threads.
        self._model = WhisperModel(
            source.location,
            device=device,
            compute_type=compute_type,
            cpu_threads=threads,
            num_workers=workers,
        )
        self._beam_size = beam_size
        self._guard = guard or HallucinationGuard()

    def languages(self) -> list[str]:
        return super().languages() if self.source.multilingual else ["en"]

    def _require(self, language: str) -> None:
        if not self.source.multilingual and language != "en":
            raise UnsupportedLanguageError(f"ASR model {self.source.name} is English-only")

    def transcribe(self, samples: Samples, language: str, prefix: str = "") -> Transcript:
        self._require(language)
        segments, _info = self._model.transcribe(
            sanitize(samples),  # one NaN makes Whisper's whole window garbage
            language=language,
            prefix=prefix or None,
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
        transcript = self._keep_speech(segments, language)
        return continuing(prefix, transcript) if prefix else transcript

    def transcribe_partial(self, samples: Samples, language: str, prefix: str = "") -> Transcript:
        """A live caption's quick reading: the encoder sees the audio and a short margin, not
        Whisper's 30 s window. Measured on the fixtures: a 4 s clip encodes in 0.08 s instead
        of 1.2 s; words are less sure (WER 0.107 → 0.165 with a 2 s margin), which a partial
        can afford and a final cannot, so finals keep the full window."""
        self._require(language)
        model = self._model
        features = model.feature_extractor(sanitize(samples))
        frames = min(WINDOW_FRAMES, features.shape[-1] + PARTIAL_MARGIN_FRAMES)
        window = np.zeros((1, features.shape[0], frames), dtype=np.float32)
        window[0, :, : min(frames, features.shape[-1])] = features[:, :frames]
        tokenizer = Tokenizer(
            model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=language
        )
        prompt = model.get_prompt(tokenizer, [], without_timestamps=True, prefix=prefix or None)
        encoded = model.model.encode(ctranslate2.StorageView.from_array(window), to_cpu=False)
        [result] = model.model.generate(
            encoded,
            [prompt],
            beam_size=1,
            # Past its audio a short window tends to say it again: a speaker's pace at most,
            # and no phrase twice.
            max_length=len(prompt) + round(TOKENS_PER_S * len(samples) / ASR_SAMPLE_RATE) + 4,
            no_repeat_ngram_size=4,
            return_no_speech_prob=True,
        )
        if result.no_speech_prob > self._guard.no_speech_threshold:
            return continuing(prefix, Transcript("", language, "no_speech"))
        said = tokenizer.decode([t for t in result.sequences_ids[0] if t < tokenizer.eot])
        return continuing(prefix, Transcript(without_echo(said), language))

    def transcribe_batch(self, items: list[tuple[Samples, str]]) -> list[Transcript]:
        """Segments of one language decoded as one batch: concatenated, each its own clip."""
        by_language: dict[str, list[int]] = defaultdict(list)
        for index, (_samples, language) in enumerate(items):
            by_language[language].append(index)
        transcripts: dict[int, Transcript] = {}
        for language, indices in by_language.items():
            if len(indices) == 1 or not self._batched_language_ok(language):
                for index in indices:
                    transcripts[index] = self.transcribe(*items[index])
                continue
            batch = self._transcribe_together([items[i][0] for i in indices], language)
            transcripts.update(zip(indices, batch, strict=True))
        return [transcripts[index] for index in range(len(items))]

    def _batched_language_ok(self, language: str) -> bool:
        return self.source.multilingual or language == "en"

    def _transcribe_together(self, clips: list[Samples], language: str) -> list[Transcript]:
        starts = np.cumsum([0, *(len(clip) for clip in clips)]) / ASR_SAMPLE_RATE
        boundaries = [float(start) for start in starts[:-1]]
        segments, _info = BatchedInferencePipeline(self._model).transcribe(
            sanitize(np.concatenate(clips)),
            language=language,
            beam_size=self._beam_size,
            temperature=0.0,
            without_timestamps=True,
            vad_filter=False,
            clip_timestamps=[
                {"start": float(starts[i]), "end": float(starts[i + 1])} for i in range(len(clips))
            ],
            batch_size=len(clips),
            no_speech_threshold=self._guard.no_speech_threshold,
            log_prob_threshold=self._guard.logprob_threshold,
            compression_ratio_threshold=self._guard.compression_ratio_threshold,
        )
        per_clip: list[list[Any]] = [[] for _ in clips]
        for segment in segments:  # consumed here: the decoding happens in this thread
            clip = bisect.bisect_right(boundaries, segment.start + 1e-3) - 1
            per_clip[max(0, clip)].append(segment)
        return [self._keep_speech(found, language) for found in per_clip]

    def _keep_speech(self, segments: Iterable[Any], language: str) -> Transcript:
        kept: list[str] = []
        reasons: list[DropReason] = []
        for segment in segments:
            reason = self._guard.rejects(segment)
            if reason is None:
                kept.append(segment.text.strip())
            else:
                reasons.append(reason)
        text = " ".join(part for part in kept if part)
        dropped: DropReason | None = None if text else (reasons[0] if reasons else "no_speech")
        return Transcript(text=text, language=language, dropped_reason=dropped)
