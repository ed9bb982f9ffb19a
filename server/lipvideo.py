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

import av
import numpy as np
from prometheus_client import Counter

from pipeline.audio import Audio, Samples
from pipeline.lipsync.base import Frame, LipSyncer, Speech, VideoClip
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


def render(
    syncer: LipSyncer, frames: list[av.VideoFrame], speech: Samples, fps: int, size: tuple[int, int]
) -> VideoClip:
    """Blocking: the segment's camera frames at the channel's size, lip-synced to the speech."""
    width, height = size
    images = [rgb(frame, width, height) for frame in frames]
    with timed_stage("lipsync", syncer.name):
        return syncer.sync(VideoClip(images, fps), Speech(Audio(speech, SAMPLE_RATE)))


def rgb(frame: av.VideoFrame, width: int, height: int) -> Frame:
    image = frame.to_ndarray(format="rgb24", width=width, height=height)
    return np.asarray(image, dtype=np.uint8)


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

    async def sync(self, dub: Dub, frames: list[av.VideoFrame]) -> None:
        """Give the dub its video (it may already be playing: frames follow its position)."""
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
                self._settings.video_fps,
                size,
            )
        except Exception:  # the dub plays with the original video rather than not at all
            LOG.exception("lip-sync failed")
            LIPSYNC_SEGMENTS.labels("failed").inc()
            return
        LIPSYNC_SEGMENTS.labels("synced").inc()

    async def drop(self, language: str) -> None:
        channel = self.channels.pop(language, None)
        if channel is not None:
            await channel.stop()

    async def stop(self) -> None:
        for language in list(self.channels):
            await self.drop(language)
