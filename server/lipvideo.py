"""Lip-synced video per language: the floor holder's camera, its mouth following that language's
translated speech, encoded once per language and shared by every listener who wants it.

Each dub's video is made on its own thread while the dub waits in the playout (its speech is
never held back for it); the language's video channel then shows, tick by tick, the frame that
belongs to the speech being played, so picture and sound share one clock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

import av
from av.video.reformatter import VideoReformatter
from prometheus_client import Counter

from pipeline.audio import Audio, Samples
from pipeline.lipsync.base import LipSyncer, PhonemeTiming, Speech, VideoClip
from pipeline.lipsync.phonemes import dub_phonemes
from pipeline.lipsync.video import rgb
from pipeline.metrics import timed_stage
from pipeline.settings import Settings
from server.media import VideoChannel, VideoSource
from server.playout import SAMPLE_RATE, Dub, Playout

LOG = logging.getLogger(__name__)
LIPSYNC_SEGMENTS = Counter(
    "dragoman_lipsync_segments_total",
    "Dubs given lip-synced video (or not, and why)",
    ["outcome"],  # synced, no_video, failed
)


@dataclass(frozen=True)
class DubbedText:
    """What the dub says, so the mouth can follow its phonemes where the voice tells them."""

    text: str
    language: str
    voice: str  # the voice spec, e.g. 'espeak:pt-br' or 'piper:shipped'


def phonemes(said: DubbedText, audio: Audio) -> tuple[PhonemeTiming, ...]:
    """The dub's phoneme timings: an espeak-ng voice's own, else espeak-ng's laid onto it."""
    engine, _, voice = said.voice.partition(":")
    return dub_phonemes(said.text, said.language, voice if engine == "espeak" else None, audio)


def render(
    syncer: LipSyncer,
    frames: list[av.VideoFrame],
    speech: Samples,
    said: DubbedText,
    fps: int,
    size: tuple[int, int],
) -> VideoClip:
    """Blocking: the segment's camera frames at the channel's size, lip-synced to the speech."""
    scaler = VideoReformatter()  # the frames' own may be in use by an encoder's thread
    images = [rgb(f, size, scaler) for f in frames]
    with timed_stage("lipsync", syncer.name):
        audio = Audio(speech, SAMPLE_RATE)
        drive = Speech(audio, phonemes(said, audio))
        return syncer.sync(VideoClip(images, fps), drive)


class LipVideo:
    """A room's lip-synced video channels, one per language that someone watches."""

    def __init__(
        self,
        settings: Settings,
        syncer: LipSyncer | None,
        sync_executor: Executor,
        media_executor: Executor,
        live: Callable[[], av.VideoFrame | None],
    ) -> None:
        self.enabled = syncer is not None and settings.lipsync
        self.channels: dict[str, VideoChannel] = {}
        self._settings = settings
        self._syncer = syncer
        self._sync_executor = sync_executor
        self._media_executor = media_executor
        self._live = live

    def channel(self, language: str, playout: Playout) -> VideoChannel:
        """The language's channel, started on first use."""
        channel = self.channels.get(language)
        if channel is None:
            channel = VideoChannel(
                self._source(playout),
                self._media_executor,
                self._settings.video_fps,
                self._settings.video_width,
                self._settings.video_height,
                name=f"video-{language}",
            )
            self.channels[language] = channel
            channel.start()
        return channel

    def _source(self, playout: Playout) -> Callable[[], VideoSource]:
        def frame() -> VideoSource:
            synced = playout.video_frame()
            return synced if synced is not None else self._live()

        return frame

    def wanted(self, language: str) -> bool:
        return self.enabled and language in self.channels

    async def sync(self, dub: Dub, frames: list[av.VideoFrame], said: DubbedText) -> None:
        """Give the dub its video (it may already be playing: frames follow its position).
        The caller marks the dub `awaiting_video` as it schedules this; it is cleared here."""
        if self._syncer is None:
            return
        if not frames:  # camera off or no video sent: the live (or last held) frame shows
            LIPSYNC_SEGMENTS.labels("no_video").inc()
            return
        size = (self._settings.video_width, self._settings.video_height)
        loop = asyncio.get_running_loop()
        try:
            dub.video = await loop.run_in_executor(
                self._sync_executor,
                render,
                self._syncer,
                frames,
                dub.speech,
                said,
                self._settings.video_fps,
                size,
            )
        except Exception:  # the dub plays with the original video rather than not at all
            LOG.exception("lip-sync failed")
            LIPSYNC_SEGMENTS.labels("failed").inc()
            return
        finally:
            dub.awaiting_video = False
        LIPSYNC_SEGMENTS.labels("synced").inc()

    async def drop(self, language: str) -> None:
        channel = self.channels.pop(language, None)
        if channel is not None:
            await channel.stop()

    async def stop(self) -> None:
        for language in list(self.channels):
            await self.drop(language)
