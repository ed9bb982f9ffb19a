"""Media to listeners: encode once per language (and once for video), fan packets out.

Each listener gets a PacketTrack whose recv() hands aiortc pre-encoded av.Packets, which aiortc
packetises without encoding, so per-listener cost is packetising and encrypting only.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av.video.codeccontext import VideoCodecContext
from av.video.reformatter import VideoReformatter
from prometheus_client import Counter, Gauge, Histogram

from pipeline.audio import Samples
from pipeline.lipsync.base import Frame
from pipeline.tasks import BackgroundLoop
from server.playout import FRAME_S, FRAME_SAMPLES, SAMPLE_RATE, Playout

LOG = logging.getLogger(__name__)
PACKETS_DROPPED = Counter(
    "dragoman_listener_packets_dropped_total", "Stale packets dropped", ["kind"]
)
ENCODED_FRAMES = Counter(
    "dragoman_encoded_frames_total", "Frames encoded (once per variant)", ["kind"]
)
PLAYOUT_STALLS = Counter("dragoman_playout_stalls_total", "Playout ran dry mid-turn", ["language"])
AUDIO_FRAMES_SKIPPED = Counter(
    "dragoman_audio_frames_skipped_total",
    "20 ms frames the audio clock skipped after waking over a second late (a suspended process)",
)
AUDIO_CLOCK_LATE = Histogram(
    "dragoman_audio_clock_late_seconds",
    "How late the audio clock woke for its next 20 ms frame (a busy machine wakes it late)",
    buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0),
)
CHANNELS = Gauge("dragoman_media_channels", "Encoders running", ["kind"])
PLAYOUT_DELAY = Gauge(
    "dragoman_playout_delay_seconds", "A language's initial playout delay D", ["language", "mode"]
)
DUB_START_LATENCY = Histogram(
    "dragoman_dub_start_latency_seconds",
    "From the end of a segment's speech to its dub's first frame at the listeners",
    ["language", "mode"],
    buckets=(0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0, 8.0, 12.0, 20.0),
)
if TYPE_CHECKING:
    Packet = av.Packet[Any]
else:
    Packet = av.Packet
VideoSource = av.VideoFrame | Frame | None  # a decoded camera frame, or a lip-synced RGB one
AUDIO_TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)
VIDEO_TIME_BASE = fractions.Fraction(1, 90000)


class PacketTrack(MediaStreamTrack):
    """One listener's outgoing track: a bounded queue of shared packets, oldest dropped first."""

    def __init__(self, kind: str, capacity: int) -> None:
        super().__init__()
        self.kind = kind
        self._packets: deque[Packet] = deque(maxlen=capacity)
        self._ready = asyncio.Event()
        self.delivered = 0
        # A new video listener cannot decode delta frames until its first keyframe.
        self._awaiting_keyframe = kind == "video"

    def await_keyframe(self) -> None:
        """A new encoder feeds this track: its delta frames mean nothing until a keyframe."""
        self._awaiting_keyframe = True

    def push(self, packet: Packet) -> None:
        if self._awaiting_keyframe:
            if not packet.is_keyframe:
                return
            self._awaiting_keyframe = False
        if len(self._packets) == self._packets.maxlen:
            PACKETS_DROPPED.labels(self.kind).inc()
        self._packets.append(packet)
        self._ready.set()

    async def recv(self) -> Packet:
        while not self._packets:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        self.delivered += 1
        return self._packets.popleft()

    def stop(self) -> None:
        super().stop()
        self._ready.set()


class Fanout:
    """The listeners of one encoded variant."""

    def __init__(self) -> None:
        self.tracks: set[PacketTrack] = set()

    def publish(
        self,
        packet: Packet,
        muted: set[PacketTrack] | None = None,
        silence: bytes | None = None,
    ) -> None:
        """Send `packet` to every track; a muted one gets `silence` (an encoded silent frame) at
        the packet's time instead, when given."""
        quiet: Packet | None = None
        for track in self.tracks:
            if muted and track in muted:
                if silence is not None:
                    if quiet is None:
                        quiet = silent_twin(packet, silence)
                    track.push(quiet)
            else:
                track.push(packet)


def silent_twin(packet: Packet, silence: bytes) -> Packet:
    """A new packet of `silence` with `packet`'s timestamp. Never one shared packet re-stamped:
    a track's queue may still hold it, and packets that share a timestamp are merged into one
    frame by the receiver's jitter buffer (a catch-up batch of ten became one)."""
    twin = av.Packet(silence)
    twin.pts, twin.time_base = packet.pts, packet.time_base
    return twin


class OpusStream:
    """Mono 48 kHz Opus, 20 ms per packet, timestamps continuous across silence."""

    def __init__(self) -> None:
        self._codec = av.CodecContext.create("libopus", "w")
        self._codec.sample_rate = SAMPLE_RATE
        self._codec.layout = "mono"
        self._codec.format = "s16"
        self._codec.bit_rate = 32000
        self._codec.options = {"application": "voip", "frame_duration": "20"}
        self._pts = 0

    def encode(self, samples: Samples) -> list[Packet]:
        pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._pts
        frame.time_base = AUDIO_TIME_BASE
        self._pts += len(samples)
        packets = list(self._codec.encode(frame))
        for packet in packets:
            packet.time_base = AUDIO_TIME_BASE
        return packets


class LiveAudio:
    """The floor holder's original voice at 48 kHz, between ingest and the channels that play it."""

    def __init__(self, max_s: float = 1.0) -> None:
        self._frames: deque[Samples] = deque(maxlen=max(1, round(max_s / FRAME_S)))
        self._pending = np.zeros(0, dtype=np.float32)

    def push(self, samples: Samples) -> None:
        self._pending = np.concatenate([self._pending, samples])
        while len(self._pending) >= FRAME_SAMPLES:
            self._frames.append(self._pending[:FRAME_SAMPLES])
            self._pending = self._pending[FRAME_SAMPLES:]

    def next_frame(self) -> Samples | None:
        return self._frames.popleft() if self._frames else None

    def clear(self) -> None:
        self._frames.clear()
        self._pending = np.zeros(0, dtype=np.float32)


AUDIO_RESYNC_S = 1.0  # further behind than this, the clock skips ahead rather than catch up
AUDIO_CATCH_UP_FRAMES = 10  # frames made at most per wake-up (one burst of 200 ms)


def frames_due(lateness_s: float) -> int:
    """Frames owed at a wake-up `lateness_s` after the next frame was due. A busy machine
    (every core on inference) wakes the clock late, and every hop to the encoder thread waits
    for a core: catching up in one batch keeps 50 packets a second, where one frame per wake-up
    fell to two thirds of that."""
    return max(1, min(AUDIO_CATCH_UP_FRAMES, 1 + int(lateness_s / FRAME_S)))


class _CountedLoop(BackgroundLoop):
    """A media loop counted in dragoman_media_channels by its kind while it runs."""

    kind = "media"

    def start(self) -> None:
        super().start()
        CHANNELS.labels(self.kind).inc()

    async def stop(self) -> None:
        if self.running:
            await super().stop()
            CHANNELS.labels(self.kind).dec()


class AudioChannel(_CountedLoop):
    """One language's audio: translated playout (or the live original), Opus-encoded once."""

    kind = "audio"

    def __init__(
        self,
        language: str,
        playout: Playout | None,
        live: LiveAudio,
        original_gain: float,
        executor: Executor,
    ) -> None:
        super().__init__()
        self.name = f"audio-{language}"
        self.language = language
        self.playout = playout  # None: this channel carries the original voice
        self.live = live
        self.original_gain = original_gain
        self.fanout = Fanout()
        self.muted: set[PacketTrack] = set()
        self._encoder = OpusStream()
        self._executor = executor
        self._stalls_reported = 0

    def _mix(self) -> Samples:
        original = self.live.next_frame()
        if self.playout is None:
            return original if original is not None else np.zeros(FRAME_SAMPLES, np.float32)
        speech = self.playout.next_frame()
        frame = np.zeros(FRAME_SAMPLES, np.float32) if speech is None else speech
        if original is not None and self.original_gain > 0:
            frame = frame + self.original_gain * original
        return frame

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        silence = bytes(
            (
                await loop.run_in_executor(
                    self._executor, OpusStream().encode, np.zeros(FRAME_SAMPLES, np.float32)
                )
            )[0]
        )
        next_tick = loop.time()
        while True:
            late = loop.time() - next_tick
            AUDIO_CLOCK_LATE.observe(max(0.0, late))
            due = frames_due(late)
            frames = [self._mix() for _ in range(due)]
            packets = await loop.run_in_executor(self._executor, self._encode_all, frames)
            ENCODED_FRAMES.labels("audio").inc(due)
            for packet in packets:
                self.fanout.publish(packet, self.muted, silence)
            self._report_stalls()
            next_tick += due * FRAME_S
            await asyncio.sleep(max(0.0, next_tick - loop.time()))
            behind = loop.time() - next_tick
            if behind > AUDIO_RESYNC_S:  # suspended, not merely busy
                AUDIO_FRAMES_SKIPPED.inc(int(behind / FRAME_S))
                next_tick = loop.time()

    def _encode_all(self, frames: list[Samples]) -> list[Packet]:
        return [packet for frame in frames for packet in self._encoder.encode(frame)]

    def _report_stalls(self) -> None:
        if self.playout is not None and self.playout.stalls > self._stalls_reported:
            PLAYOUT_STALLS.labels(self.language).inc(self.playout.stalls - self._stalls_reported)
            self._stalls_reported = self.playout.stalls


STILL_REFRESH_S = 1.0  # a picture that does not change is encoded again this often


class VideoChannel(_CountedLoop):
    """The floor holder's camera, VP8-encoded once for every listener; keyframes on request."""

    kind = "video"

    def __init__(
        self,
        source: Callable[[], VideoSource],
        executor: Executor,
        fps: int,
        width: int,
        height: int,
        keyframe_interval_s: float = 3.0,
        name: str = "video",
    ) -> None:
        super().__init__()
        self.name = name
        self.fanout = Fanout()
        self._source = source
        self._executor = executor
        self._fps = fps
        self._size = (width, height)
        self._keyframe_interval = max(1, round(keyframe_interval_s * fps))
        self._codec = self._new_codec()
        self._scaler = VideoReformatter()
        self._index = 0  # ticks of the channel's clock (the frames' timestamps)
        self._keyframe_wanted = True
        self._last: VideoSource = None
        self._encoded: VideoSource = None  # the picture last encoded
        self._encoded_at = -1  # and its tick
        self._keyframe_at = 0
        self._refresh = max(1, round(STILL_REFRESH_S * fps))

    def _new_codec(self) -> VideoCodecContext:
        codec = av.CodecContext.create("libvpx", "w")
        codec.width, codec.height = self._size
        codec.pix_fmt = "yuv420p"
        codec.time_base = fractions.Fraction(1, self._fps)
        codec.bit_rate = 600_000
        codec.options = {
            "deadline": "realtime",
            "cpu-used": "8",
            "lag-in-frames": "0",
            "error-resilient": "1",
        }
        return codec

    def request_keyframe(self) -> None:
        self._keyframe_wanted = True

    def _encode(self, source: VideoSource, keyframe: bool, tick: int) -> list[Packet]:
        if source is None:
            source = np.zeros((self._size[1], self._size[0], 3), dtype=np.uint8)
        if isinstance(source, np.ndarray):
            frame = av.VideoFrame.from_ndarray(source, format="rgb24")
        else:
            frame = source
        # Its own scaler: a camera frame may be encoded by several channels at once, and a
        # frame's built-in one (frame.reformat) is not safe to share between threads.
        scaled = self._scaler.reformat(
            frame, width=self._size[0], height=self._size[1], format="yuv420p"
        )
        scaled.pts = tick
        scaled.time_base = fractions.Fraction(1, self._fps)
        scaled.pict_type = (
            av.video.frame.PictureType.I if keyframe else av.video.frame.PictureType.NONE
        )
        packets = list(self._codec.encode(scaled))
        for packet in packets:
            packet.pts = round(tick * 90000 / self._fps)
            packet.time_base = VIDEO_TIME_BASE
        return packets

    def _plan(self, frame: VideoSource) -> bool | None:
        """This tick's frame: a keyframe (True), a delta frame (False), or none (None): a still
        picture (no camera, a camera that sends nothing, lips held between dubs) is sent again
        only every STILL_REFRESH_S, since a receiver keeps showing the last frame and encoding
        a 640×480 picture costs ~5 ms of a core. Advances the channel's clock by one tick."""
        tick, self._index = self._index, self._index + 1
        keyframe = self._keyframe_wanted or tick - self._keyframe_at >= self._keyframe_interval
        if frame is self._encoded and tick - self._encoded_at < self._refresh and not keyframe:
            return None
        self._keyframe_wanted = False
        self._encoded, self._encoded_at = frame, tick
        self._keyframe_at = tick if keyframe else self._keyframe_at
        return keyframe

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        period = 1.0 / self._fps
        next_tick = loop.time()
        while True:
            if self.fanout.tracks:
                frame = self._source()
                frame = self._last if frame is None else frame  # camera off: the last one held
                self._last = frame
                tick = self._index
                keyframe = self._plan(frame)
                if keyframe is not None:
                    for packet in await loop.run_in_executor(
                        self._executor, self._encode, frame, keyframe, tick
                    ):
                        self.fanout.publish(packet)
                    ENCODED_FRAMES.labels("video").inc()
            next_tick += period
            await asyncio.sleep(max(0.0, next_tick - loop.time()))
            if loop.time() - next_tick > 0.5:
                next_tick = loop.time()
