"""The voice table: which engine and voice speaks each language, resampled for WebRTC."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pipeline.audio import Audio, resample
from pipeline.errors import ModelUnavailableError, UnsupportedLanguageError
from pipeline.tts.base import SpeechSynthesizer
from pipeline.tts.espeak import EspeakSynthesizer
from pipeline.tts.piper_voice import PiperSynthesizer, shipped_english_voice

# Offline defaults: Piper where a voice ships, espeak-ng for every other language.
DEFAULT_VOICES: dict[str, str] = {
    "en": "piper:shipped",
    "es": "espeak:es",
    "pt": "espeak:pt-br",
    "fr": "espeak:fr-fr",
    "de": "espeak:de",
    "ca": "espeak:ca",
    "it": "espeak:it",
    "nl": "espeak:nl",
    "ro": "espeak:ro",
}


def voice_specs(overrides: dict[str, str]) -> dict[str, str]:
    """Language → voice spec: the defaults with the operator's choices (DRAGOMAN_TTS_VOICES)."""
    return {**DEFAULT_VOICES, **overrides}


def _piper(argument: str) -> SpeechSynthesizer:
    path = shipped_english_voice() if argument == "shipped" else Path(argument).expanduser()
    return PiperSynthesizer(path)


VOICE_ENGINES: dict[str, Callable[[str], SpeechSynthesizer]] = {
    "piper": _piper,
    "espeak": EspeakSynthesizer,
}


def build_voice(spec: str) -> SpeechSynthesizer:
    """'piper:PATH' | 'piper:shipped' | 'espeak:VOICE' → a synthesizer."""
    engine, _, argument = spec.partition(":")
    factory = VOICE_ENGINES.get(engine)
    if factory is None or not argument:
        raise ModelUnavailableError(
            f"bad voice {spec!r}; use one of {sorted(VOICE_ENGINES)} as 'engine:voice'"
        )
    return factory(argument)


class VoiceTable(SpeechSynthesizer):
    """Routes each language to its voice (built once, on first use) and resamples the output."""

    name = "voices"

    def __init__(self, voices: dict[str, str], sample_rate: int = 48000) -> None:
        self.specs = voice_specs(voices)
        self.sample_rate = sample_rate
        self._built: dict[str, SpeechSynthesizer] = {}

    @property
    def languages(self) -> list[str]:
        return sorted(self.specs)

    def voice(self, language: str) -> SpeechSynthesizer:
        if language not in self.specs:
            raise UnsupportedLanguageError(
                f"no voice for {language!r}; voices: {', '.join(self.languages)}"
            )
        if language not in self._built:
            self._built[language] = build_voice(self.specs[language])
        return self._built[language]

    def synthesize(self, text: str, language: str) -> Audio:
        speech = self.voice(language).synthesize(text, language)
        return Audio(
            resample(speech.samples, speech.sample_rate, self.sample_rate), self.sample_rate
        )
