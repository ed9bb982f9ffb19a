"""A room: its participants, its floor, and one media channel per language present."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import av
from aiortc.mediastreams import MediaStreamTrack
from prometheus_client import Counter, Gauge

from pipeline.audio import Audio, Samples
from pipeline.bus import Bus, Job, JobResult
from pipeline.cascade import Utterance
from pipeline.events import (
    CaptionFinal,
    DropReason,
    DubStarted,
    FloorChanged,
    ParticipantsChanged,
    RoomEvent,
    ServerClosing,
    SessionEnded,
    SessionEndReason,
    SpeakingChanged,
    TranslationStatus,
    UtteranceDropped,
)
from pipeline.lipsync.base import LipSyncer
from pipeline.segmenter import Segment, Segmenter, SegmenterConfig
from pipeline.settings import Settings
from pipeline.speakers import VoicePrint
from pipeline.tasks import KeyedLocks, TaskSet, cancel_and_wait
from pipeline.tts.casting import VoiceCasting, shipped_prints
from pipeline.tts.voices import voice_specs
from pipeline.vad import SileroDetector, VoiceActivityDetector
from server.access import Grant
from server.errors import Conflict, Forbidden, NotFound
from server.floor import Floor
from server.ingest import AudioIngest
from server.lipvideo import DubbedText, LipVideo
from server.live_captions import LiveCaptions, LivePacing, Settled
from server.media import (
    DUB_START_LATENCY,
    PLAYOUT_DELAY,
    AudioChannel,
    LiveAudio,
    PacketTrack,
    VideoChannel,
)
from server.participant import Participant
from server.peer import EventChannel, Peer, PeerEvents, PeerFactory, aiortc_peers
from server.playout import DelayEstimate, Dub, Playout, PlayoutMode
from server.video_history import VideoHistory

LOG = logging.getLogger(__name__)
PARTICIPANTS = Gauge("dragoman_participants", "Connected participants")
JOBS = Counter("dragoman_jobs_total", "Utterances submitted for translation", ["targets"])
TARGETS_IN_FLIGHT = Gauge(
    "dragoman_targets_in_flight", "Target languages submitted to the bus and awaiting a result"
)
HELD_DROPPED = Counter(
    "dragoman_queued_speech_dropped_total", "Speech held for the floor, dropped", ["reason"]
)
SESSIONS_ENDED = Counter(
    "dragoman_sessions_ended_total",
    "Sessions the gateway ended: replaced, removed, token expired, never connected",
    ["reason"],
)
TRANSCRIPT_LIMIT = 10_000
VOICEPRINT_MIN_S = 1.5  # speech a speaker's voiceprint is taken from
GOODBYE_TIMEOUT_S = 1.0  # how long a last event may take to leave before the peer closes


@dataclass(frozen=True)
class RoomContext:
    """What every room shares: settings, the bus and the media thread pool."""

    settings: Settings
    bus: Bus
    media_executor: Executor
    segmenter_config: SegmenterConfig
    lipsync: LipSyncer | None = None
    lipsync_executor: Executor | None = None
    # Audio encodes every 20 ms; behind a video encode or a VAD batch it would fall behind.
    audio_executor: Executor | None = None
    peers: PeerFactory | None = None  # default: aiortc endpoints in this process
    vad: Callable[[], VoiceActivityDetector] = SileroDetector
    # A speaker's voiceprint from their speech (None: every speaker gets the default voices).
    voiceprint: Callable[[Samples], VoicePrint] | None = None

    def peer_factory(self, events: PeerEvents) -> Peer:
        return (self.peers or aiortc_peers(self.settings))(events)

    def vad_factory(self) -> VoiceActivityDetector:
        return self.vad()


class Room:
    def __init__(
        self,
        room_id: str,
        context: RoomContext,
        on_empty: Callable[[Room], Awaitable[None]] | None = None,
    ) -> None:
        self.id = room_id
        self.context = context
        self._on_empty = on_empty
        self.settings = context.settings
        self.participants: dict[str, Participant] = {}
        self.floor = Floor(self.settings.floor_release_s, _loop_time)  # virtual time in tests
        self.channels: dict[str, AudioChannel] = {}
        self.video = VideoChannel(
            self._holder_frame,
            context.media_executor,
            self.settings.video_fps,
            self.settings.video_width,
            self.settings.video_height,
        )
        self.lip_video = LipVideo(
            self.settings,
            context.lipsync,
            context.lipsync_executor or context.media_executor,
            context.media_executor,
            self._holder_frame,
        )
        self.transcript: deque[CaptionFinal] = deque(maxlen=TRANSCRIPT_LIMIT)
        self.jobs_submitted = 0
        self._ticker: asyncio.Task[None] | None = None
        self._chores = TaskSet()
        self._signalling = KeyedLocks()  # one negotiation at a time per identity
        self._streaming: dict[tuple[str, str], Dub] = {}  # dubs still being spoken
        self.casting = VoiceCasting(shipped_prints())
        self.voice_mode = self.settings.tts_voice_mode
        self.playout_mode: PlayoutMode = self.settings.playout_mode
        self.live = self._live_captions()
        self.closed = False

    def _live_captions(self) -> LiveCaptions | None:
        settings = self.settings
        if not settings.live_captions or settings.translation_mode != "turn_taking":
            return None
        return LiveCaptions(
            self.id,
            self.context.bus,
            LivePacing(settings.live_min_audio_s, settings.live_min_step_s),
            holder=lambda: self.floor.holder,
            languages=self.listener_languages,
            send=self._send_to_language,
            spawn=self._chore,
        )

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self.video.start()
        self._ticker = asyncio.create_task(self._tick_floor(), name=f"floor-{self.id}")

    async def close(self) -> None:
        """Stop the room's chores (no timer may act on it any more), leave everyone (flushing
        their speech), then stop the media channels."""
        self.closed = True
        if self.live is not None:
            self.live.close()
        await self._chores.cancel_all()  # but the chore that emptied the room, if one did
        for participant_id in list(self.participants):
            await self.leave(participant_id)
        await self._stop_media()

    async def _stop_media(self) -> None:
        ticker, self._ticker = self._ticker, None
        await cancel_and_wait(ticker)
        await self.video.stop()
        await self.lip_video.stop()
        for channel in list(self.channels.values()):
            await channel.stop()
        self.channels.clear()

    async def _tick_floor(self) -> None:
        while True:
            await asyncio.sleep(0.1)
            if self.floor.tick():
                await self._floor_changed()

    # -- joining and leaving --------------------------------------------------------------

    async def join(
        self,
        name: str,
        language: str,
        offer: str,
        grant: Grant | None = None,
        lipsync: bool = True,
    ) -> tuple[Participant, str]:
        """A new seat; or, for an identity already here, the reconnect path: the new session
        replaces the old one (told `session.ended`), and no seat is added."""
        grant = grant or Grant(identity=None, role="speaker")
        if grant.identity is None:
            return await self._seat(name, language, offer, grant, lipsync)
        async with self._signalling.hold(grant.identity):
            existing = self._participant_of(grant.identity)
            if existing is None:
                return await self._seat(name, language, offer, grant, lipsync)
            return await self._replace(existing, name, language, offer, grant, lipsync)

    def _participant_of(self, identity: str) -> Participant | None:
        return next((p for p in self.participants.values() if p.grant.identity == identity), None)

    async def _seat(
        self, name: str, language: str, offer: str, grant: Grant, lipsync: bool
    ) -> tuple[Participant, str]:
        if len(self.participants) >= self.settings.max_participants_per_room:
            raise Conflict(
                f"room {self.id} is full ({self.settings.max_participants_per_room} participants)"
            )
        participant = Participant(
            id=secrets.token_urlsafe(9), name=name, language=language, lipsync=lipsync
        )
        participant.grant = grant
        participant.muted = not grant.speaks  # a listener's voice is never translated
        self.participants[participant.id] = participant
        try:
            answer = await self._connect(participant, offer)
        except BaseException:
            self.participants.pop(participant.id, None)
            await participant.close_peer()
            await self._settle()
            raise
        self._ensure_channel(language)
        PARTICIPANTS.inc()
        self._watch_token(participant)
        self._broadcast(self._participants_event())
        participant.outbox.send(self._floor_event())
        return participant, answer

    async def _replace(
        self,
        participant: Participant,
        name: str,
        language: str,
        offer: str,
        grant: Grant,
        lipsync: bool,
    ) -> tuple[Participant, str]:
        """The same identity joined again (another tab, a restarted browser): one seat, the
        newest session. Its place in the floor and a moderator's mute carry over."""
        await self._say_goodbye(participant, "replaced")
        await self._disconnect(participant)
        participant.name, participant.language, participant.lipsync = name, language, lipsync
        participant.grant = grant
        participant.muted = participant.muted or not grant.speaks
        participant.secret = secrets.token_urlsafe(24)  # the old session's calls stop working
        try:
            answer = await self._connect(participant, offer)
        except BaseException:
            await self.leave(participant.id)
            raise
        self._ensure_channel(language)
        await self._drop_unused_channels()
        self._watch_token(participant)
        self._broadcast(self._participants_event())
        participant.outbox.send(self._floor_event())
        return participant, answer

    async def reconnect(
        self, participant_id: str, secret: str, offer: str
    ) -> tuple[Participant, str]:
        """Same identity, same room, a new peer connection; the old one is closed."""
        participant = self.authorize(participant_id, secret)
        async with self._signalling.hold(participant.grant.identity or participant.id):
            await self._disconnect(participant)
            try:
                answer = await self._connect(participant, offer)
            except BaseException:  # a half-built peer: closed, the seat kept for the grace time
                await participant.close_peer()
                self._chore(self._expire(participant.id, None), f"expire-{participant.id}")
                raise
        self._broadcast(self._participants_event())
        participant.outbox.send(self._floor_event())
        return participant, answer

    async def _disconnect(self, participant: Participant) -> None:
        """End a participant's peer connection, keeping its seat: its last words still count."""
        if participant.audio_in is not None:
            await participant.audio_in.flush()
        await participant.close_peer()
        self._unsubscribe(participant)

    async def renegotiate(self, participant_id: str, secret: str, offer: str) -> str:
        """A new offer on the same connection, e.g. a camera or microphone added or removed."""
        participant = self.authorize(participant_id, secret)
        if participant.peer is None:
            raise Conflict("not connected: join again with your participant id to reconnect")
        return await self._negotiate(participant, participant.peer, offer)

    async def leave(self, participant_id: str) -> None:
        participant = self.participants.get(participant_id)
        if participant is None:
            return
        if participant.audio_in is not None:
            await participant.audio_in.flush()  # the last words still become finals
        self._drop_held(participant, "speaker_left")
        changed = self.floor.remove(participant_id)
        del self.participants[participant_id]
        PARTICIPANTS.dec()
        self._unsubscribe(participant)
        await participant.close_peer()
        await self._drop_unused_channels()
        if changed:
            await self._floor_changed()
        self._broadcast(self._participants_event())
        await self._settle()

    async def _settle(self) -> None:
        """An empty room is closed by its owner, however it became empty."""
        if not self.participants and not self.closed and self._on_empty is not None:
            await self._on_empty(self)

    async def remove(self, participant_id: str, reason: SessionEndReason) -> None:
        """End a participant's session for good: it is told why, then it leaves."""
        participant = self.participants.get(participant_id)
        if participant is None:
            return
        await self._say_goodbye(participant, reason)
        await self.leave(participant_id)

    async def _say_goodbye(self, participant: Participant, reason: SessionEndReason) -> None:
        SESSIONS_ENDED.labels(reason).inc()
        participant.outbox.send(SessionEnded(reason=reason))
        await participant.outbox.flushed(GOODBYE_TIMEOUT_S)

    def _watch_token(self, participant: Participant) -> None:
        """A session lasts as long as its access token: at expiry it ends, with an event."""
        grant = participant.grant
        if grant.expires_at > 0:
            self._chore(self._end_at_expiry(participant, grant), f"token-{participant.id}")

    async def _end_at_expiry(self, participant: Participant, grant: Grant) -> None:
        await asyncio.sleep(max(0.0, grant.expires_at - time.time()))
        if self.participants.get(participant.id) is participant and participant.grant is grant:
            LOG.info("participant %s: access token expired; session ended", participant.id)
            await self.remove(participant.id, "token_expired")

    def _chore(self, work: Coroutine[Any, Any, None], name: str) -> None:
        if self.closed:  # a closing room starts nothing new
            work.close()
            return
        self._chores.spawn(work, name)

    def _on_dropped(self, participant: Participant, peer: Peer) -> None:
        if participant.peer is peer and participant.id in self.participants and not self.closed:
            self._chore(self._expire(participant.id, peer), f"expire-{participant.id}")

    async def _expire(self, participant_id: str, peer: Peer | None) -> None:
        """A dropped connection keeps its seat for a grace period, for a reconnection."""
        await asyncio.sleep(self.settings.reconnect_grace_s)
        participant = self.participants.get(participant_id)
        if participant is not None and participant.peer is peer:
            LOG.info("participant %s did not reconnect; removed", participant_id)
            await self.leave(participant_id)

    async def _evict(self, participant_id: str) -> None:
        LOG.warning("participant %s is not reading its events; removed", participant_id)
        await self.leave(participant_id)

    def _send(self, participant: Participant, event: RoomEvent) -> None:
        participant.outbox.send(event)
        if participant.outbox.overflowing and participant.id in self.participants:
            self._chore(self._evict(participant.id), f"evict-{participant.id}")

    def authorize(self, participant_id: str, secret: str) -> Participant:
        participant = self.participants.get(participant_id)
        if participant is None:
            raise NotFound(f"no participant {participant_id} in room {self.id}")
        if not secrets.compare_digest(participant.secret, secret):
            raise Forbidden("wrong participant secret")
        return participant

    # -- WebRTC ---------------------------------------------------------------------------

    async def _connect(self, participant: Participant, offer: str) -> str:
        connection = _Connection(self, participant)
        peer = connection.peer = self.context.peer_factory(connection)
        participant.peer = peer
        participant.audio_out = PacketTrack("audio", capacity=50)
        participant.video_out = PacketTrack("video", capacity=30)
        participant.watches_video = False
        participant.original_out = None
        answer = await self._negotiate(participant, peer, offer)
        self._chore(self._connect_deadline(connection), f"connect-{participant.id}")
        return answer

    async def _connect_deadline(self, connection: _Connection) -> None:
        """A peer that answers but never finishes ICE and DTLS gives its seat back."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(connection.connected.wait(), self.settings.connect_timeout_s)
        participant, peer = connection.participant, connection.peer
        if participant.peer is peer and not connection.connected.is_set():  # never connected
            LOG.info(
                "participant %s did not connect within %.0f s; removed",
                participant.id,
                self.settings.connect_timeout_s,
            )
            SESSIONS_ENDED.labels("connect_timeout").inc()
            await self.leave(participant.id)

    async def _negotiate(self, participant: Participant, peer: Peer, offer: str) -> str:
        """Answer the offer, then route what it lets the listener receive."""
        answer = await peer.negotiate(
            offer, lambda kind, sending: self._next_outgoing(participant, kind, sending)
        )
        sending = peer.sending()
        if participant.video_out in sending:
            participant.watches_video = True
            self._watch(participant)
        if participant.audio_out in sending:
            self._ensure_channel(participant.language).fanout.tracks.add(participant.audio_out)
        self._update_mutes()
        return answer

    @staticmethod
    def _next_outgoing(
        participant: Participant, kind: str, sending: set[PacketTrack]
    ) -> PacketTrack | None:
        """First audio m-line: my language; a second one: the holder's original voice; video."""
        if kind == "video":
            return participant.video_out if participant.video_out not in sending else None
        if participant.audio_out not in sending:
            return participant.audio_out
        if participant.original_out is None:
            participant.original_out = PacketTrack("audio", capacity=50)
            return participant.original_out
        return None if participant.original_out in sending else participant.original_out

    def _consume(self, participant: Participant, track: MediaStreamTrack) -> None:
        """Every inbound track is consumed for as long as it lives."""
        if track.kind == "audio":
            segmenter = Segmenter(self.context.vad_factory(), self.context.segmenter_config)
            ingest = AudioIngest(
                segmenter,
                self.context.media_executor,
                on_live=lambda samples: self._on_live(participant.id, samples),
                on_voice=lambda speaking: self._on_voice(participant.id, speaking),
                on_segment=lambda segment, ended_at: self._on_segment(
                    participant.id, segment, ended_at
                ),
                growing=self.live.tap(participant) if self.live is not None else None,
            )
            ingest.muted = participant.muted
            participant.audio_in = ingest
            participant.spawn(ingest.run(track), "audio-in")
        else:
            participant.video_history = VideoHistory(
                self.settings.video_fps, self.settings.segment_max_s + 2.0
            )
            participant.video_in.on_frame = lambda frame: self._record(participant, frame)
            participant.spawn(participant.video_in.run(track), "video-in")

    def _record(self, participant: Participant, frame: av.VideoFrame) -> None:
        """Keep the camera of whoever may be translated next: the holder and the queue."""
        if self.lip_video.enabled and (
            participant.id == self.floor.holder or participant.id in self.floor.queue
        ):
            participant.video_history.add(time.time(), frame)

    def _unsubscribe(self, participant: Participant) -> None:
        outgoing = [participant.audio_out, participant.video_out, participant.original_out]
        for track in [t for t in outgoing if t is not None]:
            for channel in self.channels.values():
                channel.fanout.tracks.discard(track)
                channel.muted.discard(track)
            self._unwatch(track)
            track.stop()

    # -- media channels ---------------------------------------------------------------------

    def _ensure_channel(self, language: str) -> AudioChannel:
        channel = self.channels.get(language)
        if channel is None:
            playout = Playout(
                DelayEstimate(
                    self.settings.playout_max_delay_s,
                    mode=self.playout_mode,
                    smooth_max_delay_s=self.settings.playout_smooth_max_delay_s,
                ),
                max_video_wait_s=self.settings.lipsync_max_wait_s,
                on_start=lambda dub: self._dub_started(language, dub),
            )
            channel = AudioChannel(
                language,
                playout,
                LiveAudio(),
                self.settings.original_under_translation,
                self.context.audio_executor or self.context.media_executor,
            )
            self.channels[language] = channel
            channel.start()
        return channel

    async def _drop_unused_channels(self) -> None:
        languages = {p.language for p in self.participants.values()}
        for language in [lang for lang in self.channels if lang not in languages]:
            await self.channels.pop(language).stop()
            await self.lip_video.drop(language)

    # -- video ------------------------------------------------------------------------------

    def _video_for(self, participant: Participant) -> VideoChannel:
        """Lip-synced video in the listener's language, unless they or the room turned it off,
        or the floor holder speaks that language anyway (no dub: the original is the same)."""
        if not (self.lip_video.enabled and participant.lipsync):
            return self.video
        if participant.language == self._holder_language():
            return self.video
        playout = self._ensure_channel(participant.language).playout
        assert playout is not None
        return self.lip_video.channel(participant.language, playout)

    def _watch(self, participant: Participant) -> None:
        """Subscribe the listener's video to its channel; a switch starts at a keyframe."""
        track, channel = participant.video_out, self._video_for(participant)
        if track in channel.fanout.tracks:
            return
        self._unwatch(track)
        track.await_keyframe()
        channel.fanout.tracks.add(track)
        channel.request_keyframe()

    def _unwatch(self, track: PacketTrack) -> None:
        self.video.fanout.tracks.discard(track)
        for channel in self.lip_video.channels.values():
            channel.fanout.tracks.discard(track)

    def _rewatch_all(self) -> None:
        for participant in self.participants.values():
            if participant.watches_video:
                self._watch(participant)

    def set_lipsync(self, participant_id: str, secret: str, enabled: bool) -> None:
        """A listener's choice: lip-synced video, or the original video with translated audio."""
        participant = self.authorize(participant_id, secret)
        participant.lipsync = enabled
        if participant.watches_video:
            self._watch(participant)
        self._broadcast(self._participants_event())

    def set_playout_mode(self, mode: PlayoutMode) -> None:
        """The room's playout (a moderator's choice): live, or smooth (a turn back to back)."""
        self.playout_mode = mode
        for channel in self.channels.values():
            if channel.playout is not None:
                channel.playout.delay.mode = mode

    def set_room_lipsync(self, enabled: bool) -> None:
        """The room's setting (a moderator's): off means original video for everyone."""
        self.lip_video.enabled = enabled and self.context.lipsync is not None
        self._rewatch_all()

    def _holder_frame(self) -> av.VideoFrame | None:
        holder = self.participants.get(self.floor.holder or "")
        return holder.video_in.latest if holder is not None else None

    def _holder_language(self) -> str | None:
        holder = self.participants.get(self.floor.holder or "")
        return holder.language if holder is not None else None

    def _route_originals(self) -> None:
        """Second audio tracks follow the floor: the holder's own channel, unless that is theirs."""
        holder = self.participants.get(self.floor.holder or "")
        for participant in self.participants.values():
            original = participant.original_out
            if original is None:
                continue
            for channel in self.channels.values():
                channel.fanout.tracks.discard(original)
            if (
                holder is not None
                and holder is not participant
                and holder.language != participant.language
            ):
                self._ensure_channel(holder.language).fanout.tracks.add(original)

    def _update_mutes(self) -> None:
        """Channels play the holder's own voice in the holder's language: not back to the holder."""
        self._route_originals()
        holder = self.participants.get(self.floor.holder or "")
        for language, channel in self.channels.items():
            channel.muted = (
                {holder.audio_out} if holder is not None and holder.language == language else set()
            )
            channel.original_gain = (
                1.0
                if language == self._holder_language()
                else self.settings.original_under_translation
            )

    def _on_live(self, participant_id: str, samples: Samples) -> None:
        if participant_id != self.floor.holder:
            return
        for channel in self.channels.values():
            channel.live.push(samples)

    # -- floor ------------------------------------------------------------------------------

    async def _on_voice(self, participant_id: str, speaking: bool) -> None:
        participant = self.participants.get(participant_id)
        if participant is not None and participant.speaking != speaking:
            participant.speaking = speaking
            self._broadcast(SpeakingChanged(participant=participant_id, speaking=speaking))
        if speaking and self.floor.voice(participant_id):
            await self._floor_changed()

    async def request_floor(self, participant_id: str, secret: str) -> None:
        participant = self.authorize(participant_id, secret)
        if not participant.grant.speaks:
            raise Forbidden("listeners cannot take the floor")
        if self.floor.request(participant_id):
            await self._floor_changed()

    async def release_floor(self, participant_id: str, secret: str) -> None:
        participant = self.authorize(participant_id, secret)
        queued = participant_id in self.floor.queue
        if self.floor.release(participant_id):
            if queued:
                self._drop_held(participant, "floor_released")
            await self._floor_changed()

    async def _floor_changed(self) -> None:
        for channel in self.channels.values():
            channel.live.clear()
        self._update_mutes()
        self._rewatch_all()
        self.video.request_keyframe()
        self._broadcast(self._floor_event())
        holder = self.participants.get(self.floor.holder or "")
        if holder is not None:
            while holder.held:
                segment, ended_at = holder.held.popleft()
                await self._submit(holder, segment, ended_at)

    # -- speech → jobs → events -------------------------------------------------------------

    async def _on_segment(self, participant_id: str, segment: Segment, ended_at: float) -> None:
        participant = self.participants.get(participant_id)
        if participant is None:
            return
        if self.settings.translation_mode == "all_pairs":
            await self._submit_all_pairs(participant, segment, ended_at)
        elif participant_id == self.floor.holder:
            await self._submit(participant, segment, ended_at)
        elif participant_id in self.floor.queue:
            self._hold(participant, segment, ended_at)
        else:
            self._drop(participant, participant.next_sequence(), "not_holding_floor")

    def _hold(self, participant: Participant, segment: Segment, ended_at: float) -> None:
        """Speech while queued waits for the floor, up to queued_speech_max_s (oldest dropped)."""
        participant.held.append((segment, ended_at))
        while participant.held and participant.held_s > self.settings.queued_speech_max_s:
            participant.held.popleft()
            self._drop(participant, participant.next_sequence(), "floor_queue_overflow")

    def _drop_held(self, participant: Participant, reason: DropReason) -> None:
        while participant.held:
            participant.held.popleft()
            self._drop(participant, participant.next_sequence(), reason)

    def _drop(self, participant: Participant, sequence: int, reason: DropReason) -> None:
        HELD_DROPPED.labels(reason).inc()
        event = UtteranceDropped(
            utterance_id=f"{self.id}/{participant.id}/{sequence}",
            reason=reason,
            speaker=participant.id,
        )
        participant.outbox.send(event)

    def listener_languages(self, speaker: Participant) -> tuple[str, ...]:
        """The speaker's own language (captions of the original) and every other one present."""
        others = sorted({p.language for p in self.participants.values()} - {speaker.language})
        return (speaker.language, *others)

    async def _submit(self, speaker: Participant, segment: Segment, ended_at: float) -> None:
        live = self.live.settle(speaker, segment) if self.live is not None else Settled()
        sequence = speaker.next_sequence()
        utterance = Utterance(
            f"{self.id}/{speaker.id}/{sequence}",
            speaker.id,
            sequence,
            speaker.language,
            segment,
            committed=live.committed,
            heard=live.heard,
        )
        targets = self.listener_languages(speaker)
        for language in targets[1:]:
            self._ensure_channel(language).playout.pending_jobs += 1  # type: ignore[union-attr]
        self.jobs_submitted += 1
        JOBS.labels(str(len(targets))).inc()
        voices = await self._voices_for(speaker, segment, targets[1:])
        job = Job(self.id, utterance, targets, ended_at, voices=voices, heard_soon=live.heard_soon)
        TARGETS_IN_FLIGHT.inc(len(targets))
        await self.context.bus.submit(job)

    async def _voices_for(
        self, speaker: Participant, segment: Segment, languages: tuple[str, ...]
    ) -> tuple[tuple[str, str], ...]:
        """The speaker's voice in each language: near their own (from their first segment
        long enough to tell), or the languages' defaults in neutral mode or until then."""
        voiceprint = self.context.voiceprint
        if self.voice_mode == "neutral" or voiceprint is None or not languages:
            return ()
        if speaker.voiceprint is None and segment.duration_s >= VOICEPRINT_MIN_S:
            loop = asyncio.get_running_loop()
            speaker.voiceprint = await loop.run_in_executor(
                self.context.media_executor, voiceprint, segment.samples
            )
        if speaker.voiceprint is None:
            return ()
        specs = voice_specs(self.settings.tts_voices)
        return tuple(
            (language, self.casting.cast(speaker.id, speaker.voiceprint, language, specs[language]))
            for language in languages
            if language in specs
        )

    async def _submit_all_pairs(
        self, speaker: Participant, segment: Segment, ended_at: float
    ) -> None:
        """The naive baseline: no floor, and a whole pipeline run for every listener."""
        sequence = speaker.next_sequence()
        utterance = Utterance(
            f"{self.id}/{speaker.id}/{sequence}", speaker.id, sequence, speaker.language, segment
        )
        dubbed: set[str] = set()
        for listener in [p for p in self.participants.values() if p is not speaker]:
            plays = listener.language != speaker.language and listener.language not in dubbed
            if plays:
                dubbed.add(listener.language)
                self._ensure_channel(listener.language).playout.pending_jobs += 1  # type: ignore[union-attr]
            self.jobs_submitted += 1
            JOBS.labels("1").inc()
            job = Job(
                self.id,
                utterance,
                (listener.language,),
                ended_at,
                recipient=listener.id,
                plays=plays,
            )
            TARGETS_IN_FLIGHT.inc()
            await self.context.bus.submit(job)

    async def on_result(self, done: JobResult) -> None:
        """Each target's terminal event to that language's listeners; speech to its playout."""
        result, job = done.result, done.job
        own = job.recipient is None or job.recipient == job.utterance.speaker
        if result.dropped is not None and own:
            dropped = result.dropped.model_copy(update={"speaker": job.utterance.speaker})
            if self.live is not None and job.recipient is None:
                self._broadcast(dropped)  # listeners shown its live caption clear it
            elif (speaker := self.participants.get(job.utterance.speaker)) is not None:
                speaker.outbox.send(dropped)
        for language in job.targets:
            translation = result.translations.get(language)
            streamed = self._streaming.pop((job.utterance.utterance_id, language), None)
            if streamed is not None:
                streamed.finish()
            channel = self.channels.get(language)
            if channel is not None and self._plays(job, language) and channel.playout is not None:
                channel.playout.pending_jobs = max(0, channel.playout.pending_jobs - 1)
                if translation is not None and translation.speech is not None:
                    delay = channel.playout.delay
                    delay.observe(
                        result.processing_s,
                        job.utterance.segment.duration_s,
                        translation.speech.duration_s,
                    )
                    PLAYOUT_DELAY.labels(language, delay.mode).set(delay.delay_s)
                    dub = streamed or channel.playout.add(
                        translation.speech.samples,
                        utterance_id=job.utterance.utterance_id,
                        speech_end_at=job.speech_end_at,
                    )
                    if isinstance(translation.event, CaptionFinal):
                        self._lipsync(job, translation.event, dub)
            if translation is None or translation.delivered:
                continue
            event = translation.event
            if isinstance(event, CaptionFinal):
                self.deliver_caption(job, event)
            else:
                self._deliver(job, language, event)

    @staticmethod
    def _plays(job: Job, language: str) -> bool:
        """The job's speech in `language` goes to that language's playout."""
        return job.plays and language != job.utterance.language

    def deliver_clause(self, job: Job, language: str, clause: Audio) -> None:
        """A clause of a dub, as soon as it is spoken: the first starts the dub playing (after
        the playout's delay), the next ones extend it, the job's result completes it. Where
        someone watches the language lip-synced and the speaker's camera was on, the dub waits
        for its whole speech instead: the picture is made from all of it, and sound and picture
        start together."""
        channel = self.channels.get(language)
        if not self._plays(job, language) or channel is None or channel.playout is None:
            return
        if self.lip_video.wanted(language) and self._camera_frames(job):
            return
        key = (job.utterance.utterance_id, language)
        streaming = self._streaming.get(key)
        if streaming is None:
            self._streaming[key] = channel.playout.add(
                clause.samples,
                complete=False,
                utterance_id=job.utterance.utterance_id,
                speech_end_at=job.speech_end_at,
            )
        else:
            streaming.extend(clause.samples)

    def _dub_started(self, language: str, dub: Dub) -> None:
        """A dub's first frame is on its way: its listeners hear it now."""
        if dub.speech_end_at > 0:
            DUB_START_LATENCY.labels(language, self.playout_mode).observe(
                max(0.0, time.time() - dub.speech_end_at)
            )
        if dub.utterance_id:
            self._send_to_language(
                language,
                DubStarted(
                    utterance_id=dub.utterance_id,
                    target_language=language,
                    speech_end_at=dub.speech_end_at,
                ),
            )

    def _camera_frames(self, job: Job) -> list[av.VideoFrame]:
        """The speaker's camera frames while the job's segment was said (none: camera off)."""
        speaker = self.participants.get(job.utterance.speaker)
        if speaker is None:
            return []
        segment = job.utterance.segment
        # The segmenter's clock to the wall clock: the voiced speech ended at speech_end_at.
        voiced_until = segment.voiced_until_s or segment.end_s
        start = job.speech_end_at - (voiced_until - segment.start_s)
        end = job.speech_end_at + (segment.end_s - voiced_until)
        return speaker.video_history.between(start, end)

    def _lipsync(self, job: Job, caption: CaptionFinal, dub: Dub) -> None:
        """Video for the dub, when someone watches this language lip-synced."""
        language = caption.target_language
        if not self.lip_video.wanted(language):
            return
        frames = self._camera_frames(job)
        dub.awaiting_video = bool(frames)  # from now: the sync task clears it when done
        voice = (
            job.voice_map.get(language)
            or voice_specs(self.settings.tts_voices).get(language, ("",))[0]
        )
        said = DubbedText(caption.target_text, language, voice)
        self._chore(self.lip_video.sync(dub, frames, said), f"lipsync-{language}")

    def deliver_caption(self, job: Job, caption: CaptionFinal) -> None:
        """A final caption, sent as soon as it exists (its speech follows when synthesised)."""
        caption = caption.model_copy(update={"speech_end_at": job.speech_end_at})
        if job.recipient is None or job.recipient == job.utterance.speaker or job.plays:
            self.transcript.append(caption)
        self._deliver(job, caption.target_language, caption)

    def _deliver(self, job: Job, language: str, event: RoomEvent) -> None:
        if job.recipient is None:
            self._send_to_language(language, event)
        elif (recipient := self.participants.get(job.recipient)) is not None:
            self._send(recipient, event)

    def _send_to_language(self, language: str, event: RoomEvent) -> None:
        for participant in list(self.participants.values()):
            if participant.language == language:
                self._send(participant, event)

    def announce(self, status: TranslationStatus | ServerClosing) -> None:
        self._broadcast(status)

    def _broadcast(self, event: RoomEvent) -> None:
        for participant in list(self.participants.values()):
            self._send(participant, event)

    def _floor_event(self) -> FloorChanged:
        return FloorChanged(holder=self.floor.holder, queue=list(self.floor.queue))

    def _participants_event(self) -> ParticipantsChanged:
        return ParticipantsChanged(participants=[p.info for p in self.participants.values()])

    def set_muted(self, participant_id: str, secret: str, muted: bool) -> None:
        participant = self.authorize(participant_id, secret)
        if not muted and not participant.grant.speaks:
            raise Forbidden("listeners cannot unmute: their token does not allow speaking")
        if not muted and participant.muted_by_moderator:
            raise Forbidden("a moderator muted you; only a moderator can lift it")
        self._mute(participant, muted)

    def _mute(self, participant: Participant, muted: bool) -> None:
        participant.muted = muted
        if participant.audio_in is not None:
            participant.audio_in.muted = muted
        self._broadcast(self._participants_event())

    # -- moderation -------------------------------------------------------------------------

    async def moderate(self, target_id: str, action: str) -> None:
        """A moderator mutes (until a moderator unmutes), lets speak again, moves to the back
        of the floor queue, or removes a participant."""
        target = self.participants.get(target_id)
        if target is None:
            raise NotFound(f"no participant {target_id} in room {self.id}")
        if action == "mute":
            target.muted_by_moderator = True
            self._mute(target, True)
        elif action == "unmute":  # lifts the moderator's mute; the microphone stays theirs
            target.muted_by_moderator = False
            self._broadcast(self._participants_event())
        elif action == "requeue":
            if self.floor.move_to_back(target_id):
                await self._floor_changed()
        elif action == "remove":
            await self.remove(target_id, "removed")


def _loop_time() -> float:
    return asyncio.get_running_loop().time()


class _Connection:
    """One peer connection of a participant, as the room hears of it (the PeerEvents)."""

    def __init__(self, room: Room, participant: Participant) -> None:
        self.room, self.participant = room, participant
        self.peer: Peer
        self.connected = asyncio.Event()

    def on_channel(self, channel: EventChannel) -> None:
        self.participant.outbox.attach(channel)

    def on_track(self, track: MediaStreamTrack) -> None:
        self.room._consume(self.participant, track)

    def on_state(self, state: str) -> None:
        if state == "connected":
            self.connected.set()
            self.participant.media_started = self.participant.peer is self.peer
        if state in ("connected", "failed", "closed") and not self.room.closed:
            self.room._broadcast(self.room._participants_event())
        if state in ("failed", "closed"):
            self.on_vanished()

    def on_vanished(self) -> None:
        self.room._on_dropped(self.participant, self.peer)

    def on_keyframe_request(self) -> None:
        self.room._video_for(self.participant).request_keyframe()
