"""Speech recognition stage."""

from pipeline.asr.base import SpeechRecognizer, Transcript

__all__ = ["SpeechRecognizer", "Transcript"]
