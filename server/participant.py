"""One participant: identity, peer connection, inbound media, outgoing tracks, event outbox."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter

from pipeline.events import (
    CaptionFinal,
    CaptionPartial,
    FloorChanged,
    ParticipantInfo,
    ParticipantsChanged,
    RoomEvent,
)
from pipeline.segmenter import Segment
from pipeline.speakers import VoicePrint
from pipeline.tasks import TaskSet
from server.access import Grant
from server.ingest import AudioIngest, VideoIngest
from server.media import PacketTrack
from server.peer import EventChannel, Peer
from server.video_history import VideoHistory

LOG = logging.getLogger(__name__)
EVENTS_DROPPED = Counter(
    "dragoman_events_dropped_total", "Superseded or best-effort events dropped", ["type"]
)
_DROPPABLE = (CaptionPartial, FloorChanged, ParticipantsChanged)
PARTIAL_BACKLOG = 64 * 1024  # bytes waiting in the channel: a live caption would only add lag


class EventOutbox:
    """Events for one participant. Held until the DataChannel opens, then sent in order.

    Bounded: over capacity, superseded state events (floor, participant lists) go first;
    captions and failures are kept (a participant that far behind is closed by the room).
    Live captions are best effort: a newer revision (or the final) replaces a waiting one, and
    none is sent while the channel's send buffer is backed up.
    """

    def __init__(self, capacity: int = 1000) -> None:
        self.capacity = capacity
        self._pending: deque[RoomEvent] = deque()
        self._channel: EventChannel | None = None
        self.sent = 0

    @property
    def overflowing(self) -> bool:
        return len(self._pending) > self.capacity

    def attach(self, channel: EventChannel) -> None:
        self._channel = channel
        if channel.readyState == "open":
            self._drain()
        else:
            channel.on("open", self._drain)

    def send(self, event: RoomEvent) -> None:
        if isinstance(event, CaptionPartial | CaptionFinal):
            self._drop_partials_of(event.utterance_id, event.target_language)
        self._pending.append(event)
        if len(self._pending) > self.capacity:
            self._drop_superseded()
        self._drain()

    def _drop_partials_of(self, utterance_id: str, language: str) -> None:
        for queued in [e for e in self._pending if isinstance(e, CaptionPartial)]:
            if (queued.utterance_id, queued.target_language) == (utterance_id, language):
                self._pending.remove(queued)
                EVENTS_DROPPED.labels(queued.type).inc()

    def _drop_superseded(self) -> None:
        for index, queued in enumerate(self._pending):
            if isinstance(queued, _DROPPABLE):
                del self._pending[index]
                EVENTS_DROPPED.labels(queued.type).inc()
                return

    async def flushed(self, timeout_s: float) -> None:
        """Wait (bounded) until everything sent so far has left for the wire: a last event
        before the peer connection closes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        channel = self._channel
        while channel is not None and channel.readyState == "open" and loop.time() < deadline:
            if not self._pending and channel.bufferedAmount == 0:
                await asyncio.sleep(0.1)  # handed to SCTP: give the packet time to arrive
                return
            await asyncio.sleep(0.02)

    def _drain(self) -> None:
        channel = self._channel
        while self._pending and channel is not None and channel.readyState == "open":
            event = self._pending.popleft()
            if isinstance(event, CaptionPartial) and channel.bufferedAmount > PARTIAL_BACKLOG:
                EVENTS_DROPPED.labels(event.type).inc()
                continue
            channel.send(event.model_dump_json())
            self.sent += 1


@dataclass
class Participant:
    id: str
    name: str
    language: str
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    peer: Peer | None = None
    outbox: EventOutbox = field(default_factory=EventOutbox)
    audio_out: PacketTrack = field(default_factory=lambda: PacketTrack("audio", capacity=50))
    video_out: PacketTrack = field(default_factory=lambda: PacketTrack("video", capacity=30))
    original_out: PacketTrack | None = None  # optional second audio: the holder's own voice
    audio_in: AudioIngest | None = None
    video_in: VideoIngest = field(default_factory=VideoIngest)
    tasks: TaskSet = field(default_factory=TaskSet)
    sequence: int = 0
    held: deque[tuple[Segment, float]] = field(default_factory=deque)
    muted: bool = False
    muted_by_moderator: bool = False  # holds until a moderator lifts it
    media_started: bool = False  # the current peer connected once: its tracks end on close
    voiceprint: VoicePrint | None = None  # their voice, to cast voices near it
    speaking: bool = False
    lipsync: bool = True  # this listener's choice; the room's setting can still turn it off
    watches_video: bool = False  # its offer asked for video
    video_history: VideoHistory = field(default_factory=lambda: VideoHistory(15, 0.0))
    grant: Grant = field(default_factory=lambda: Grant(identity=None, role="speaker"))

    @property
    def info(self) -> ParticipantInfo:
        return ParticipantInfo(
            id=self.id,
            name=self.name,
            language=self.language,
            connected=self.peer is not None and self.peer.state == "connected",
            muted=self.muted,
            muted_by_moderator=self.muted_by_moderator,
            lipsync=self.lipsync,
        )

    @property
    def held_s(self) -> float:
        return sum(segment.duration_s for segment, _ in self.held)

    def next_sequence(self) -> int:
        self.sequence += 1
        return self.sequence - 1

    def spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> None:
        self.tasks.spawn(coroutine, f"{name}-{self.id}")

    async def close_peer(self) -> None:
        """Close the peer connection and wait for its inbound media to be flushed. A peer that
        never connected has nothing to flush, and aiortc never ends its tracks: its readers
        are cancelled at once."""
        peer, self.peer = self.peer, None
        flush_s = 10.0 if self.media_started else 0.0
        self.media_started = False
        if peer is not None:
            await peer.close()
        await self.tasks.finish(flush_s)
