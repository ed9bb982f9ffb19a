"""The TTS interface: text in one language → mono audio at the voice's native rate."""

from __future__ import annotations

from abc import ABC, abstractmethod

from pipeline.audio import Audio


class SpeechSynthesizer(ABC):
    """A voice engine for the languages it declares."""

    name: str = "synthesizer"
    origin: str = ""

    @abstractmethod
    def synthesize(self, text: str, language: str) -> Audio:
        """Speak `text`; returns mono float32 audio at the engine's native rate."""
