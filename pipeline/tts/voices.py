"""The voice table: which voices speak each language, built once per process, resampled for
WebRTC.

Each language has candidate voices, best first: the first is its neutral default, the others
let a speaker be given a voice close to their own (`pipeline.tts.casting`). Kokoro where it
speaks the language, Festival for Catalan, espeak-ng only where nothing better exists; Piper
and Kokoro both speak English (Piper first: as clear, several times faster, measured in
`dragoman bench pipeline`). An operator pins a language's voice, or its candidates
(comma-separated), with DRAGOMAN_TTS_VOICES.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pipeline.audio import Audio, resample
from pipeline.errors import ModelUnavailableError, UnsupportedLanguageError
from pipeline.tts.base import SpeechSynthesizer
from pipeline.tts.espeak import ESPEAK_VOICES, EspeakSynthesizer
from pipeline.tts.festival import FestivalSynthesizer
from pipeline.tts.kokoro import KokoroSynthesizer, kokoro_model
from pipeline.tts.piper_voice import PiperSynthesizer, shipped_english_voice

DEFAULT_VOICES: dict[str, tuple[str, ...]] = {
    "en": (
        "piper:shipped",
        "kokoro:af_heart",
        "kokoro:am_michael",
        "kokoro:af_bella",
        "kokoro:am_fenrir",
        "kokoro:bf_emma",
        "kokoro:bm_george",
    ),
    "pt": ("kokoro:pf_dora", "kokoro:pm_alex", "kokoro:pm_santa"),
    "es": ("kokoro:ef_dora", "kokoro:em_alex", "kokoro:em_santa"),
    "fr": ("kokoro:ff_siwis",),
    "it": ("kokoro:if_sara", "kokoro:im_nicola"),
    "ca": ("festival:upc_ca_ona_hts",),
    "de": ("espeak:de",),
    "nl": ("espeak:nl",),
    "ro": ("espeak:ro",),
}


@dataclass(frozen=True)
class VoiceContext:
    """What engines need to load: where models are, on which device, with how many threads."""

    cache_dir: Path
    assets_dir: Path
    device: str = "cpu"
    threads: int = 2


def voice_specs(overrides: dict[str, str]) -> dict[str, tuple[str, ...]]:
    """Language → candidate voices: the defaults, with the operator's pins (DRAGOMAN_TTS_VOICES,
    one spec or several, comma-separated)."""
    pinned = {
        language: tuple(part.strip() for part in spec.split(",") if part.strip())
        for language, spec in overrides.items()
    }
    return {**DEFAULT_VOICES, **{k: v for k, v in pinned.items() if v}}


def _piper(argument: str, context: VoiceContext) -> SpeechSynthesizer:
    path = shipped_english_voice() if argument == "shipped" else Path(argument).expanduser()
    return PiperSynthesizer(path)


def _kokoro(argument: str, context: VoiceContext) -> SpeechSynthesizer:
    model = kokoro_model(context.cache_dir, context.assets_dir, context.device, context.threads)
    return KokoroSynthesizer(argument, model)


VOICE_ENGINES: dict[str, Callable[[str, VoiceContext], SpeechSynthesizer]] = {
    "piper": _piper,
    "kokoro": _kokoro,
    "festival": lambda argument, _: FestivalSynthesizer(argument),
    "espeak": lambda argument, _: EspeakSynthesizer(argument),
}


def build_voice(spec: str, context: VoiceContext) -> SpeechSynthesizer:
    """'kokoro:pf_dora' | 'festival:upc_ca_ona_hts' | 'piper:PATH' | 'piper:shipped' |
    'espeak:VOICE' → a synthesizer."""
    engine, _, argument = spec.partition(":")
    factory = VOICE_ENGINES.get(engine)
    if factory is None or not argument:
        raise ModelUnavailableError(
            f"bad voice {spec!r}; use one of {sorted(VOICE_ENGINES)} as 'engine:voice'"
        )
    return factory(argument, context)


class VoiceTable(SpeechSynthesizer):
    """Routes each language to a voice (each built once, on first use) and resamples."""

    name = "voices"

    def __init__(self, voices: dict[str, str], sample_rate: int, context: VoiceContext) -> None:
        self.specs = voice_specs(voices)
        self.sample_rate = sample_rate
        self.context = context
        self._built: dict[str, SpeechSynthesizer] = {}
        self._lock = threading.Lock()

    @property
    def languages(self) -> list[str]:
        return sorted(self.specs)

    def candidates(self, language: str) -> tuple[str, ...]:
        if language not in self.specs:
            raise UnsupportedLanguageError(
                f"no voice for {language!r}; voices: {', '.join(self.languages)}"
            )
        return self.specs[language]

    def default(self, language: str) -> str:
        return self.candidates(language)[0]

    def fallback(self, language: str) -> str:
        """The language's fast voice, for dubs running late: espeak-ng (Piper for English)
        where the default is slower, else the default itself."""
        default = self.default(language)
        if default.startswith(("espeak:", "piper:")) or language not in ESPEAK_VOICES:
            return default
        return "piper:shipped" if language == "en" else f"espeak:{ESPEAK_VOICES[language]}"

    def voice(self, language: str, spec: str | None = None) -> SpeechSynthesizer:
        """The language's voice `spec` (one of its candidates, or its fallback), else its
        default."""
        allowed = (*self.candidates(language), self.fallback(language))
        chosen = spec if spec in allowed else self.default(language)
        with self._lock:
            if chosen not in self._built:
                self._built[chosen] = build_voice(chosen, self.context)
            return self._built[chosen]

    def _resampled(self, speech: Audio) -> Audio:
        return Audio(
            resample(speech.samples, speech.sample_rate, self.sample_rate), self.sample_rate
        )

    def synthesize(self, text: str, language: str, voice: str | None = None) -> Audio:
        return self._resampled(self.voice(language, voice).synthesize(text, language))

    def clauses(self, text: str, language: str, voice: str | None = None) -> Iterator[Audio]:
        for clause in self.voice(language, voice).clauses(text, language):  # that voice's own
            yield self._resampled(clause)

    def close(self) -> None:
        with self._lock:
            built, self._built = self._built, {}
        for engine in built.values():
            engine.close()
