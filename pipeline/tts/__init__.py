"""Speech synthesis stage."""

from pipeline.tts.base import SpeechSynthesizer

__all__ = ["SpeechSynthesizer"]
