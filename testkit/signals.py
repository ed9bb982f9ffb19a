"""Synthetic non-speech signals at 16 kHz (what must never become a caption), and WAV writing."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.audio import ASR_SAMPLE_RATE, Audio, Samples, write_wav


def white_noise(seconds: float, level: float = 0.1, seed: int = 0) -> Samples:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(int(seconds * ASR_SAMPLE_RATE)) * level).astype(np.float32)


def music(seconds: float) -> Samples:
    """Chords with a beat: harmonic, rhythmic, not speech."""
    t = np.arange(int(seconds * ASR_SAMPLE_RATE)) / ASR_SAMPLE_RATE
    chords = [
        (261.6, 329.6, 392.0),
        (220.0, 261.6, 329.6),
        (174.6, 220.0, 261.6),
        (196.0, 246.9, 293.7),
    ]
    out = np.zeros_like(t)
    for i, chord in enumerate(chords * int(seconds)):
        window = (t >= i * 0.5) & (t < (i + 1) * 0.5)
        envelope = np.exp(-3 * (t[window] - i * 0.5))
        out[window] = sum(np.sin(2 * np.pi * f * t[window]) for f in chord) * envelope
    peak = max(float(np.abs(out).max()), 1e-9)
    scaled: Samples = (0.2 * out / peak).astype(np.float32)
    return scaled


def silence(seconds: float) -> Samples:
    return np.zeros(int(seconds * ASR_SAMPLE_RATE), dtype=np.float32)


def write_16k(path: Path, samples: Samples) -> Path:
    write_wav(path, Audio(samples, ASR_SAMPLE_RATE))
    return path
