"""The ASR interface: 16 kHz mono audio plus its language in, text out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from pipeline.audio import Samples
from pipeline.events import DropReason
from pipeline.languages import LANGUAGE_NAMES


@dataclass(frozen=True)
class Transcript:
    """What was said in one segment; empty text means no speech was recognised."""

    text: str
    language: str
    dropped_reason: DropReason | None = None

    @property
    def is_speech(self) -> bool:
        return bool(self.text.strip())


class SpeechRecognizer(ABC):
    """Transcribes one segment whose language is known (never detected)."""

    @abstractmethod
    def transcribe(self, samples: Samples, language: str, prefix: str = "") -> Transcript:
        """Text of the segment; a Transcript with empty text when there is no speech. A
        `prefix` (words already settled by live captions) is how the text begins."""

    def transcribe_partial(self, samples: Samples, language: str, prefix: str = "") -> Transcript:
        """A quick reading of a segment still being spoken (live captions): where a backend has
        a cheaper, rougher way, it takes it; else the same as `transcribe`."""
        return self.transcribe(samples, language, prefix)

    def languages(self) -> list[str]:
        """The languages it transcribes (a multilingual model: every language Dragoman names)."""
        return list(LANGUAGE_NAMES)

    def transcribe_batch(self, items: list[tuple[Samples, str]]) -> list[Transcript]:
        """Several segments at once, where a backend gains from it (a GPU); else one by one."""
        return [self.transcribe(samples, language) for samples, language in items]
