"""A synthetic participant: a real aiortc peer that joins over HTTP, speaks, listens, reads events.

Used by the tests, `dragoman bench call` and the load tester. Traffic goes only to the URL given.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import av
import httpx
import numpy as np
import numpy.typing as npt
from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from pydantic import ValidationError

from pipeline.audio import Samples
from pipeline.events import PIPELINE_EVENT, CaptionFinal, DubStarted, RoomEvent, UtteranceFailed
from pipeline.lipsync.video import rgb
from pipeline.tasks import TaskSet

RATE = 48000
FRAME = 960
FRAME_S = FRAME / RATE


class RealTimePacer:
    """Paces 20 ms frames on the wall clock: waits for each frame's time, returns its pts."""

    def __init__(self) -> None:
        self._start: float | None = None
        self._pts = 0

    async def next_pts(self) -> int:
        if self._start is None:
            self._start = time.monotonic()
        wait = self._start + self._pts / RATE - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        pts, self._pts = self._pts, self._pts + FRAME
        return pts


class ScriptedMicrophone(MediaStreamTrack):
    """Plays queued speech in real time (20 ms frames), silence in between; records when."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._queue: deque[Samples] = deque()
        self._current: Samples | None = None
        self._position = 0
        self._pacer = RealTimePacer()
        self.spoken: list[tuple[float, float]] = []  # wall-clock (start, end) of each utterance

    def say(self, speech: Samples) -> None:
        """Queue one utterance (48 kHz mono float32)."""
        self._queue.append(speech)

    @property
    def speaking(self) -> bool:
        return self._current is not None or bool(self._queue)

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        pts = await self._pacer.next_pts()
        frame = av.AudioFrame.from_ndarray(
            self._next_pcm().reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = RATE
        frame.pts = pts
        frame.time_base = fractions.Fraction(1, RATE)
        return frame

    def _next_pcm(self) -> np.ndarray[Any, np.dtype[np.int16]]:
        pcm = np.zeros(FRAME, dtype=np.float32)
        filled = 0
        while filled < FRAME:
            if self._current is None:
                if not self._queue:
                    break
                self._current, self._position = self._queue.popleft(), 0
                self.spoken.append((time.time(), 0.0))
            take = min(FRAME - filled, len(self._current) - self._position)
            pcm[filled : filled + take] = self._current[self._position : self._position + take]
            filled, self._position = filled + take, self._position + take
            if self._position >= len(self._current):
                self._current = None
                self.spoken[-1] = (self.spoken[-1][0], time.time())
        return (np.clip(pcm, -1, 1) * 32767).astype(np.int16)


@dataclass
class ReceivedAudio:
    """What a listener heard: the wall time and level of each 20 ms frame, and (if kept) the
    48 kHz mono samples; bounded to the last `max_s` seconds."""

    max_s: float = 600.0
    keep_samples: bool = True
    frames: deque[tuple[float, Samples]] = field(default_factory=deque)
    levels: deque[tuple[float, float]] = field(default_factory=deque)
    count: int = 0

    def add(self, at: float, samples: Samples) -> None:
        self.levels.append((at, float(np.sqrt(np.mean(samples**2)))))
        if self.keep_samples:
            self.frames.append((at, samples))
        self.count += 1
        while len(self.levels) * FRAME_S > self.max_s:
            self.levels.popleft()
        while len(self.frames) * FRAME_S > self.max_s:
            self.frames.popleft()

    def onsets(self, level: float = 0.01, quiet_s: float = 0.3) -> list[float]:
        """Wall times where sound starts after at least `quiet_s` of quiet."""
        starts, quiet_since = [], None
        for at, rms in self.levels:
            if rms <= level:
                quiet_since = at if quiet_since is None else quiet_since
            else:
                if quiet_since is None or at - quiet_since >= quiet_s:
                    starts.append(at)
                quiet_since = None
        return starts

    def samples(self) -> Samples:
        return (
            np.concatenate([s for _, s in self.frames]) if self.frames else np.zeros(0, np.float32)
        )

    def last_sound(self, level: float = 0.01) -> float:
        """Wall time of the latest frame louder than `level` (0 when none)."""
        return next((at for at, rms in reversed(self.levels) if rms > level), 0.0)

    def first_sound_after(self, moment: float, level: float = 0.01) -> float | None:
        return next((at for at, rms in self.levels if at >= moment and rms > level), None)

    def loud(self, level: float = 0.01) -> list[float]:
        """Wall times of the frames louder than `level`, in order."""
        return [at for at, rms in self.levels if rms > level]


@dataclass
class Participant:
    """One synthetic participant of a room."""

    base_url: str
    room: str
    name: str
    language: str
    microphone: ScriptedMicrophone | None = None
    pc: RTCPeerConnection = field(
        default_factory=lambda: RTCPeerConnection(RTCConfiguration(iceServers=[]))
    )
    events: list[tuple[float, dict[str, Any]]] = field(default_factory=list)  # as JSON
    received: list[tuple[float, RoomEvent]] = field(default_factory=list)  # as the typed events
    unknown: list[str] = field(default_factory=list)  # messages outside the event vocabulary
    heard: ReceivedAudio = field(default_factory=ReceivedAudio)
    video_frames: int = 0
    lipsync: bool = True  # lip-synced video, or the speaker's original video
    keep_video: bool = False  # keep what is seen (arrival time, RGB), e.g. to check lip-sync
    seen: list[tuple[float, npt.NDArray[np.uint8]]] = field(default_factory=list)
    participant_id: str = ""
    secret: str = ""
    token: str | None = None  # the room access token, when the server is not in open-rooms mode
    _tasks: TaskSet = field(default_factory=TaskSet)

    async def join(
        self,
        http: httpx.AsyncClient,
        speak: bool = True,
        video: bool = True,
        microphone: MediaStreamTrack | None = None,
        camera: MediaStreamTrack | None = None,
    ) -> None:
        """Join the room; `microphone` replaces the scripted one (e.g. pre-encoded packets);
        `camera` sends video (else video is only received)."""
        channel = self.pc.createDataChannel("events")
        channel.on("message", self._on_message)
        self.pc.on("track", self._on_track)
        if microphone is not None:
            self.pc.addTransceiver(microphone, direction="sendrecv")
        elif speak:
            self.microphone = ScriptedMicrophone()
            self.pc.addTransceiver(self.microphone, direction="sendrecv")
        else:
            self.pc.addTransceiver("audio", direction="recvonly")
        if camera is not None:
            self.pc.addTransceiver(camera, direction="sendrecv")
        elif video:
            self.pc.addTransceiver("video", direction="recvonly")
        await self.pc.setLocalDescription(await self.pc.createOffer())
        body = {
            "name": self.name,
            "language": self.language,
            "sdp": self.pc.localDescription.sdp,
            "type": "offer",
            "lipsync": self.lipsync,
        }
        url = f"{self.base_url}/api/rooms/{self.room}/join"
        response = await http.post(url, json=body, headers=self._headers)
        if response.status_code == 307:  # the room lives on another gateway: join it there
            location = httpx.URL(response.headers["location"])
            self.base_url = f"{location.scheme}://{location.netloc.decode()}"
            response = await http.post(str(location), json=body, headers=self._headers)
        response.raise_for_status()
        answer = response.json()
        self.participant_id, self.secret = answer["participant_id"], answer["secret"]
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
        await self._until_connected(channel)

    @property
    def _headers(self) -> dict[str, str]:
        return {} if self.token is None else {"Authorization": f"Bearer {self.token}"}

    async def _until_connected(self, channel: RTCDataChannel, timeout_s: float = 15.0) -> None:
        """Joined means connected: media flowing and the event channel open."""
        deadline = time.monotonic() + timeout_s
        while self.pc.connectionState != "connected" or channel.readyState != "open":
            if time.monotonic() > deadline or self.pc.connectionState in ("failed", "closed"):
                raise ConnectionError(f"{self.name}: connection {self.pc.connectionState}")
            await asyncio.sleep(0.02)

    def _on_message(self, message: str | bytes) -> None:
        at = time.time()
        try:
            event = PIPELINE_EVENT.validate_json(message)
        except ValidationError:
            self.unknown.append(message if isinstance(message, str) else message.decode())
            return
        self.received.append((at, event))
        self.events.append((at, json.loads(message)))

    def finals(self, language: str | None = None) -> list[tuple[float, CaptionFinal]]:
        """The final captions in `language` (default: this participant's), with arrival times."""
        wanted = language or self.language
        return [
            (at, e)
            for at, e in self.received
            if isinstance(e, CaptionFinal) and e.target_language == wanted
        ]

    def dub_starts(self) -> dict[str, float]:
        """When each utterance's dub in this participant's language began to arrive, by id."""
        starts: dict[str, float] = {}
        for at, e in self.received:
            if isinstance(e, DubStarted) and e.target_language == self.language:
                starts.setdefault(e.utterance_id, at)
        return starts

    def failures(self) -> list[UtteranceFailed]:
        return [e for _, e in self.received if isinstance(e, UtteranceFailed)]

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._tasks.spawn(self._receive(track), f"receive-{track.kind}-{self.name}")

    async def _receive(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                if isinstance(frame, av.AudioFrame):
                    pcm = frame.to_ndarray().reshape(-1, len(frame.layout.channels)).mean(axis=1)
                    self.heard.add(time.time(), (pcm / 32768.0).astype(np.float32))
                else:
                    self.video_frames += 1
                    if self.keep_video and isinstance(frame, av.VideoFrame):
                        self.seen.append((time.time(), rgb(frame)))

    def captions(self, language: str | None = None) -> list[dict[str, Any]]:
        wanted = language or self.language
        return [
            e
            for _, e in self.events
            if e["type"] == "caption.final" and e["target_language"] == wanted
        ]

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for _, e in self.events if e["type"] == kind]

    async def floor(self, http: httpx.AsyncClient, action: str) -> dict[str, Any]:
        url = f"{self.base_url}/api/rooms/{self.room}/participants/{self.participant_id}/floor"
        body = {"secret": self.secret, "action": action}
        response = await http.post(url, json=body, headers=self._headers)
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]

    async def leave(self, http: httpx.AsyncClient) -> None:
        url = f"{self.base_url}/api/rooms/{self.room}/participants/{self.participant_id}/leave"
        await http.post(url, json={"secret": self.secret}, headers=self._headers)
        await self.close()

    async def close(self) -> None:
        await self.pc.close()
        await self._tasks.cancel_all()


async def join_all(
    http: httpx.AsyncClient, *people: Participant, speakers: tuple[Participant, ...] = ()
) -> None:
    """Join everyone (the `speakers` with a scripted microphone), then let the room settle."""
    for person in people:
        await person.join(http, speak=person in speakers)
    await asyncio.sleep(0.5)


async def leave_all(http: httpx.AsyncClient, *people: Participant) -> None:
    for person in people:
        await person.leave(http)


def from_speaker(listener: Participant, speaker: Participant) -> list[dict[str, Any]]:
    """The final captions a listener got of one speaker."""
    return [c for c in listener.captions() if c["speaker"] == speaker.participant_id]
