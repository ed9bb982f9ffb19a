"""Log-mel features of speech, per video frame, as Wav2Lip-class models take them.

16 kHz, 50 ms Hann windows every 12.5 ms (80 steps a second), 80 mel bands from 55 to 7600 Hz,
pre-emphasis 0.97, dB clipped at -100 and scaled to [-4, 4]: Wav2Lip's recipe, computed here with
numpy (HTK mel scale), close to but not bit-identical with librosa's filters.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import numpy.typing as npt

from pipeline.audio import Audio, resample

SAMPLE_RATE = 16000
N_FFT, HOP = 800, 200
STEPS_PER_SECOND = SAMPLE_RATE / HOP
F_MIN, F_MAX = 55.0, 7600.0
Features = npt.NDArray[np.float32]


def _mel(hz: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.asarray(2595.0 * np.log10(1.0 + hz / 700.0))


def _hz(mel: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.asarray(700.0 * (10.0 ** (mel / 2595.0) - 1.0))


@cache
def mel_filters(bins: int) -> npt.NDArray[np.float64]:
    """Triangular filters, bins × (N_FFT/2 + 1), each of unit area."""
    edges = _hz(np.linspace(_mel(np.array(F_MIN)), _mel(np.array(F_MAX)), bins + 2))
    freqs = np.linspace(0.0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    low, centre, high = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs - low) / (centre - low)
    falling = (high - freqs) / (high - centre)
    filters = np.maximum(0.0, np.minimum(rising, falling))
    return np.asarray(filters * (2.0 / (high - low)))


def log_mel(audio: Audio, bins: int = 80) -> Features:
    """bins × steps log-mel spectrogram scaled to [-4, 4]."""
    samples = resample(audio.samples, audio.sample_rate, SAMPLE_RATE).astype(np.float64)
    emphasised = np.append(samples[:1], samples[1:] - 0.97 * samples[:-1])
    padded = np.pad(
        emphasised, (N_FFT // 2, N_FFT // 2), mode="reflect" if len(samples) > 1 else "constant"
    )
    steps = 1 + max(0, len(padded) - N_FFT) // HOP
    index = np.arange(N_FFT)[None, :] + HOP * np.arange(steps)[:, None]
    spectrum = np.abs(np.fft.rfft(padded[index] * np.hanning(N_FFT), axis=1))
    decibels = 20.0 * np.log10(np.maximum(1e-5, mel_filters(bins) @ spectrum.T)) - 20.0
    return np.clip(8.0 * (decibels + 100.0) / 100.0 - 4.0, -4.0, 4.0).astype(np.float32)


def frame_windows(features: Features, count: int, fps: float, steps: int) -> Features:
    """count × 1 × bins × steps: the window starting at each video frame's time (padded with
    the quietest value past the end)."""
    bins = features.shape[0]
    padded = np.concatenate([features, np.full((bins, steps), -4.0, np.float32)], axis=1)
    starts = np.minimum((np.arange(count) * STEPS_PER_SECOND / fps).astype(int), features.shape[1])
    windows = (
        np.stack([padded[:, s : s + steps] for s in starts])
        if count
        else np.zeros((0, bins, steps))
    )
    return windows[:, None].astype(np.float32)
