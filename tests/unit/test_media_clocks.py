"""The media clocks: audio keeps 50 packets a second when every hop to the encoder is slow (a
machine whose cores are all busy with inference), by catching up in batches; video encodes a
picture that does not change once a second, not at every tick."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from server.media import (
    AUDIO_CATCH_UP_FRAMES,
    AudioChannel,
    LiveAudio,
    PacketTrack,
    VideoChannel,
    frames_due,
)
from server.playout import DelayEstimate, Playout


class SlowExecutor(ThreadPoolExecutor):
    """Every call waits `delay_s` for a core before it runs."""

    def __init__(self, delay_s: float) -> None:
        super().__init__(max_workers=1)
        self.delay_s = delay_s

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        def late() -> Any:
            time.sleep(self.delay_s)
            return fn(*args, **kwargs)

        return super().submit(late)


async def run_for(channel: AudioChannel, executor: ThreadPoolExecutor, seconds: float) -> None:
    channel.start()
    try:
        await asyncio.sleep(seconds)
    finally:
        await channel.stop()
        executor.shutdown(wait=True)


def test_frames_owed_grow_with_lateness_up_to_one_burst() -> None:
    assert frames_due(-0.01) == 1
    assert frames_due(0.0) == 1
    assert frames_due(0.045) == 3
    assert frames_due(30.0) == AUDIO_CATCH_UP_FRAMES


@pytest.mark.looptime(False)  # the encoder's thread is slow in real time
async def test_slow_encoder_hops_still_give_fifty_packets_a_second() -> None:
    executor = SlowExecutor(delay_s=0.03)  # alone, 33 wake-ups a second at most
    channel = AudioChannel("pt", Playout(DelayEstimate(0.5)), LiveAudio(), 0.0, executor)
    listener = PacketTrack("audio", capacity=500)
    channel.fanout.tracks.add(listener)
    await run_for(channel, executor, 2.0)
    assert len(listener._packets) >= 0.9 * 2.0 / 0.02


@pytest.mark.looptime(False)
async def test_a_muted_listener_gets_silence_at_every_timestamp_of_a_catch_up_batch() -> None:
    """The floor holder hears silence on their own language's channel: each silent packet has
    its own timestamp, or the receiver merges a whole batch into one frame."""
    executor = SlowExecutor(delay_s=0.03)  # late hops: the clock catches up in batches
    channel = AudioChannel("pt", Playout(DelayEstimate(0.5)), LiveAudio(), 0.0, executor)
    holder, other = PacketTrack("audio", capacity=500), PacketTrack("audio", capacity=500)
    channel.fanout.tracks.update({holder, other})
    channel.muted = {holder}
    await run_for(channel, executor, 1.0)
    stamps = [packet.pts for packet in holder._packets]
    assert len(stamps) >= 40
    assert stamps == [packet.pts for packet in other._packets][: len(stamps)]
    assert np.all(np.diff(stamps) == 960)  # 20 ms apart, none repeated


def planned(channel: VideoChannel, pictures: list[object]) -> list[bool | None]:
    return [channel._plan(picture) for picture in pictures]  # type: ignore[arg-type]


def test_a_still_picture_is_sent_once_a_second_a_moving_one_at_every_tick() -> None:
    channel = VideoChannel(lambda: None, ThreadPoolExecutor(1), 15, 64, 48)
    still = planned(channel, [None] * 45)
    assert [i for i, kind in enumerate(still) if kind is not None] == [0, 15, 30]
    assert still[0] is True  # the first is a keyframe
    moving = planned(channel, [np.zeros((48, 64, 3), np.uint8) for _ in range(45)])
    assert all(kind is not None for kind in moving)
    assert moving.count(True) == 1  # a keyframe every 3 s (45 ticks) since the last one


def test_a_keyframe_request_is_served_even_for_a_still_picture() -> None:
    channel = VideoChannel(lambda: None, ThreadPoolExecutor(1), 15, 64, 48)
    planned(channel, [None] * 3)
    channel.request_keyframe()
    assert planned(channel, [None, None]) == [True, None]
