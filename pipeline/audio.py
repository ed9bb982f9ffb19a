"""Audio I/O: decode any file PyAV reads into 16 kHz mono float32, resample, write WAV."""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from pipeline.errors import AudioInputError

ASR_SAMPLE_RATE = 16000
Samples = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Audio:
    """Mono float32 samples in [-1, 1] at a known rate."""

    samples: Samples
    sample_rate: int

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


def _open_audio_container(path: Path) -> av.container.InputContainer:
    if not path.exists():
        raise AudioInputError(f"input file not found: {path}")
    if not path.is_file():
        raise AudioInputError(f"input is not a file: {path}")
    if path.stat().st_size == 0:
        raise AudioInputError(f"input file is empty: {path}")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise AudioInputError(f"cannot read {path.name} as audio or video: {exc}") from exc
    if not container.streams.audio:
        container.close()
        raise AudioInputError(f"{path.name} has no audio stream")
    return container


def sanitize(samples: npt.NDArray[np.floating]) -> Samples:
    """Float32 copy with NaN/Inf replaced by silence and values clipped to [-1, 1]."""
    clean = np.nan_to_num(samples.astype(np.float32, copy=False), nan=0.0, posinf=0.0, neginf=0.0)
    return np.clip(clean, -1.0, 1.0)


def stream_file(path: Path, sample_rate: int = ASR_SAMPLE_RATE) -> Iterator[Samples]:
    """Yield mono float32 chunks of the file's first audio track at `sample_rate`, streaming."""
    container = _open_audio_container(path)
    # Keep the channels (planar) and average them: swresample's own mono downmix of float
    # audio sums at 0.707 per channel, 3 dB too loud for stereo.
    resampler = av.AudioResampler(format="fltp", layout=None, rate=sample_rate)
    try:
        stream = container.streams.audio[0]
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                yield sanitize(out.to_ndarray().mean(axis=0))
        for out in resampler.resample(None):
            yield sanitize(out.to_ndarray().mean(axis=0))
    except av.FFmpegError as exc:
        raise AudioInputError(f"cannot decode audio from {path.name}: {exc}") from exc
    finally:
        container.close()


def read_file(path: Path, sample_rate: int = ASR_SAMPLE_RATE) -> Audio:
    """The whole first audio track of a file, mono float32 at `sample_rate`."""
    chunks = list(stream_file(path, sample_rate))
    samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
    return Audio(samples, sample_rate)


def resample(samples: Samples, from_rate: int, to_rate: int) -> Samples:
    """Resample mono float32 audio with libswresample (PyAV)."""
    if from_rate == to_rate or len(samples) == 0:
        return samples.astype(np.float32, copy=False)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=to_rate)
    frame = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(samples, dtype=np.float32).reshape(1, -1), format="flt", layout="mono"
    )
    frame.sample_rate = from_rate
    # swresample holds back its filter delay even on flush: feed trailing silence, then trim.
    tail = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="flt", layout="mono")
    tail.sample_rate = from_rate
    pieces = [
        out.to_ndarray().reshape(-1)
        for part in (frame, tail, None)
        for out in resampler.resample(part)
    ]
    expected = round(len(samples) * to_rate / from_rate)
    return np.concatenate(pieces).astype(np.float32)[:expected]


def to_int16(samples: Samples) -> npt.NDArray[np.int16]:
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16)


def write_wav(path: Path, audio: Audio) -> None:
    """Write 16-bit mono PCM WAV."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(audio.sample_rate)
        out.writeframes(to_int16(audio.samples).tobytes())


def read_wav_bytes(data: bytes) -> Audio:
    """Parse 16-bit PCM WAV bytes (as espeak-ng --stdout writes them)."""
    with wave.open(io.BytesIO(data), "rb") as wav:
        if wav.getsampwidth() != 2:
            raise AudioInputError("expected 16-bit PCM WAV")
        frames = wav.readframes(wav.getnframes())
        pcm = np.frombuffer(frames, dtype=np.int16).reshape(-1, wav.getnchannels())
        samples = pcm.mean(axis=1).astype(np.float32) / 32768.0
        return Audio(samples, wav.getframerate())
