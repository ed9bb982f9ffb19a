"""The TTS interface: text in one language → mono audio at the voice's native rate."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator

from pipeline.audio import Audio
from pipeline.tts.text import clauses


class SpeechSynthesizer(ABC):
    """A voice engine for the languages it declares."""

    name: str = "synthesizer"
    origin: str = ""

    @abstractmethod
    def synthesize(self, text: str, language: str, voice: str | None = None) -> Audio:
        """Speak `text`; returns mono float32 audio at the engine's native rate. `voice` picks
        one of a table's voices; an engine that is one voice speaks with its own."""

    def clauses(self, text: str, language: str, voice: str | None = None) -> Iterator[Audio]:
        """`text` spoken clause by clause, so playback can start on the first one."""
        for words, marks in clauses(text):
            yield self.synthesize(f"{words}{marks[:1]}", language, voice)

    def close(self) -> None:  # noqa: B027 - engines without a process or session need nothing
        """Free what the engine holds (a process, a session)."""
