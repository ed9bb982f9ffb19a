"""The mouth drive: one openness value (0 closed … 1 wide) per output video frame.

From the phoneme timings when the voice gives them (visemes, smoothed for coarticulation),
else from the speech's loudness (an RMS envelope at the frame rate, in dB, normalised).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from pipeline.audio import Audio
from pipeline.lipsync.base import PhonemeTiming, Speech
from pipeline.lipsync.visemes import viseme_keys

Track = npt.NDArray[np.float32]

_GRID_HZ = 1000  # phoneme track resolution before smoothing
_COARTICULATION_S = 0.03  # σ of the smoothing: neighbouring sounds shape the mouth too
_DYNAMIC_RANGE_DB = 35.0  # below the loud parts by this much: mouth closed
_HEADROOM_DB = 4.0  # this close to the loud parts: mouth fully open
_SILENCE_DBFS = -60.0  # a clip whose loud parts are quieter than this is silence


def frame_count(duration_s: float, fps: float) -> int:
    """Frames that cover `duration_s` at `fps`: round(duration × fps)."""
    return max(0, round(duration_s * fps))


def _gaussian(sigma: float) -> npt.NDArray[np.float64]:
    radius = max(1, int(3 * sigma))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    return np.asarray(kernel / kernel.sum(), dtype=np.float64)


def _frame_centres(count: int, fps: float) -> npt.NDArray[np.float64]:
    return (np.arange(count, dtype=np.float64) + 0.5) / fps


def phoneme_track(phonemes: tuple[PhonemeTiming, ...], count: int, fps: float) -> Track:
    """Openness per frame from viseme values, held over each phoneme and smoothed."""
    length = int(np.ceil(max(count / fps, phonemes[-1].end_s if phonemes else 0) * _GRID_HZ)) + 1
    grid = np.zeros(length, dtype=np.float64)
    for start, end, value in viseme_keys(phonemes):
        grid[int(start * _GRID_HZ) : max(int(end * _GRID_HZ), int(start * _GRID_HZ) + 1)] = value
    smooth = np.convolve(grid, _gaussian(_COARTICULATION_S * _GRID_HZ), mode="same")
    at = np.minimum((_frame_centres(count, fps) * _GRID_HZ).astype(int), length - 1)
    return np.asarray(np.clip(smooth[at], 0.0, 1.0), dtype=np.float32)


def rms_envelope(audio: Audio, count: int, fps: float) -> npt.NDArray[np.float64]:
    """RMS of the samples around each frame's centre (a window of two frame periods)."""
    samples = audio.samples.astype(np.float64)
    energy = np.concatenate([[0.0], np.cumsum(samples**2)])
    half = audio.sample_rate / fps
    centres = _frame_centres(count, fps) * audio.sample_rate
    starts = np.clip((centres - half).astype(int), 0, len(samples))
    ends = np.clip((centres + half).astype(int), 0, len(samples))
    widths = np.maximum(ends - starts, 1)
    return np.asarray(np.sqrt((energy[ends] - energy[starts]) / widths))


def energy_track(audio: Audio, count: int, fps: float) -> Track:
    """Openness per frame from loudness: the top of the envelope opens the mouth fully,
    35 dB below it closes it; lightly smoothed."""
    if count == 0 or len(audio.samples) == 0:
        return np.zeros(count, dtype=np.float32)
    level = 20 * np.log10(rms_envelope(audio, count, fps) + 1e-9)
    ceiling = float(np.percentile(level, 95))
    if ceiling < _SILENCE_DBFS:
        return np.zeros(count, dtype=np.float32)
    floor = ceiling - _DYNAMIC_RANGE_DB
    openness = np.clip((level - floor) / (_DYNAMIC_RANGE_DB - _HEADROOM_DB), 0.0, 1.0)
    if count >= 3:
        openness = np.convolve(np.pad(openness, 1, mode="edge"), [0.25, 0.5, 0.25], "valid")
    return openness.astype(np.float32)


def mouth_track(speech: Speech, fps: float) -> Track:
    """The drive for `speech` at `fps`: visemes when it has phoneme timings, else loudness."""
    count = frame_count(speech.audio.duration_s, fps)
    if speech.phonemes:
        return phoneme_track(speech.phonemes, count, fps)
    return energy_track(speech.audio, count, fps)
