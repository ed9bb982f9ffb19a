"""A room on fakes, for the unit tier: a bus that keeps its jobs, peers the test drives, VADs it
scripts, media and VAD work run inline (so virtual time is exact). No model, no network."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from pipeline.audio import Samples
from pipeline.segmenter import SegmenterConfig
from pipeline.settings import Settings
from pipeline.speakers import VoicePrint
from server.access import Grant
from server.participant import Participant
from server.room import Room, RoomContext
from testkit.fakes import FakePeer, FakePeers, FakeVAD, InlineExecutor, RecordingBus

# What a browser's offer brings, as far as the room is concerned: events, audio, video.
OFFER = "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nm=audio 9\r\nm=video 9\r\n"
WITH_ORIGINAL = OFFER.replace("m=video", "m=audio 9\r\nm=video")  # a second audio: the original
LISTEN = "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nm=audio 9\r\n"


@dataclass
class RoomKit:
    room: Room
    bus: RecordingBus
    peers: FakePeers
    speech: list[float]  # what the next participant's VAD will hear, frame by frame
    vads: list[FakeVAD] = field(default_factory=list)
    emptied: list[str] = field(default_factory=list)

    async def join(
        self,
        name: str,
        language: str = "en",
        grant: Grant | None = None,
        offer: str = OFFER,
        connect: bool = True,
    ) -> tuple[Participant, FakePeer]:
        """Join; by default the peer then connects (ICE, DTLS, the event channel open)."""
        participant, _ = await self.room.join(name, language, offer, grant)
        peer = self.peers.last
        if connect:
            peer.connect()
        return participant, peer


def unit_settings(**changes: object) -> Settings:
    """Defaults, with a tiny video (its encoding runs inline) and no lip-sync model."""
    base = Settings(open_rooms=True, video_width=64, video_height=64, lipsync=False)
    return base.model_copy(update=changes)


@contextlib.asynccontextmanager
async def room_kit(
    settings: Settings | None = None,
    voiceprint: Callable[[Samples], VoicePrint] | None = None,
    bus: RecordingBus | None = None,
) -> AsyncIterator[RoomKit]:
    settings = settings or unit_settings()
    executor = InlineExecutor()
    speech: list[float] = []
    kit_vads: list[FakeVAD] = []

    def new_vad() -> FakeVAD:
        kit_vads.append(FakeVAD(list(speech)))
        return kit_vads[-1]

    bus, peers = bus or RecordingBus(), FakePeers()
    context = RoomContext(
        settings,
        bus,
        executor,
        SegmenterConfig(max_segment_s=settings.segment_max_s),
        audio_executor=executor,
        peers=peers,
        vad=new_vad,
        voiceprint=voiceprint,
    )
    emptied: list[str] = []

    async def on_empty(room: Room) -> None:
        emptied.append(room.id)

    room = Room("unit", context, on_empty=on_empty)
    room.start()
    try:
        yield RoomKit(room, bus, peers, speech, kit_vads, emptied)
    finally:
        await room.close()
