"""Speech for synthetic participants: fixture clips, Opus-encoded once per process."""

from __future__ import annotations

import fractions
import functools
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from pipeline.audio import read_file
from server.media import OpusStream, Packet
from testkit.fixtures import load_manifest
from testkit.peer import RealTimePacer

RATE = 48000
FRAME = 960
TIME_BASE = fractions.Fraction(1, RATE)


@dataclass(frozen=True)
class EncodedClip:
    name: str
    language: str
    duration_s: float
    packets: tuple[bytes, ...]


def encode(samples: np.ndarray) -> tuple[bytes, ...]:
    encoder = OpusStream()
    padded = np.concatenate([samples, np.zeros(-len(samples) % FRAME, np.float32)])
    frames = padded.reshape(-1, FRAME)
    return tuple(bytes(p) for frame in frames for p in encoder.encode(frame))


def load_clips(speech_dir: Path, languages: list[str]) -> dict[str, list[EncodedClip]]:
    """Single-speaker clips of the manifest in these languages, encoded to 20 ms Opus packets."""
    clips: dict[str, list[EncodedClip]] = {language: [] for language in languages}
    for clip in load_manifest(speech_dir):
        if clip.language in clips and clip.speakers == 1:
            audio = read_file(clip.path, RATE)
            clips[clip.language].append(
                EncodedClip(clip.path.stem, clip.language, audio.duration_s, encode(audio.samples))
            )
    return clips


@functools.cache
def silence_packet() -> bytes:
    return encode(np.zeros(FRAME * 3, np.float32))[-1]


class PacketMicrophone(MediaStreamTrack):
    """An audio track that hands aiortc ready Opus packets in real time (no encoding per peer)."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._queue: deque[EncodedClip] = deque()
        self._current: EncodedClip | None = None
        self._index = 0
        self._pacer = RealTimePacer()
        self._silence = silence_packet()
        self.spoken: list[tuple[float, float, str]] = []  # wall (start, end, clip) per utterance

    def say(self, clip: EncodedClip) -> None:
        self._queue.append(clip)

    @property
    def speaking(self) -> bool:
        return self._current is not None or bool(self._queue)

    async def recv(self) -> Packet:
        if self.readyState != "live":
            raise MediaStreamError
        pts = await self._pacer.next_pts()
        packet = av.Packet(self._next_payload())
        packet.pts, packet.time_base = pts, TIME_BASE
        return packet

    def _next_payload(self) -> bytes:
        if self._current is None and self._queue:
            self._current, self._index = self._queue.popleft(), 0
            self.spoken.append((time.time(), 0.0, self._current.name))
        if self._current is None:
            return self._silence
        payload = self._current.packets[self._index]
        self._index += 1
        if self._index >= len(self._current.packets):
            start, _, name = self.spoken[-1]
            self.spoken[-1] = (start, time.time(), name)
            self._current = None
        return payload
