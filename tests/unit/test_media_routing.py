"""Media routing in a room, on fake peers and virtual time: one channel per language present,
every listener on its own language, the holder never hearing itself, the original voice on a
second audio m-line, video to watchers; and speech from a microphone through the ingest, the
segmenter and the floor into a job."""

from __future__ import annotations

import asyncio

from server.participant import Participant
from server.room import Room
from testkit.fakes import FakeMicrophone
from testkit.room_kit import LISTEN, WITH_ORIGINAL, room_kit


def listening(room: Room, participant: Participant) -> set[str]:
    """The languages whose channel sends to this participant's first audio track."""
    return {
        language
        for language, channel in room.channels.items()
        if participant.audio_out in channel.fanout.tracks
    }


async def test_one_channel_per_language_present_each_listener_on_its_own() -> None:
    async with room_kit() as kit:
        ana, _ = await kit.join("ana", "en")
        bea, _ = await kit.join("bea", "pt")
        dan, _ = await kit.join("dan", "pt")
        assert set(kit.room.channels) == {"en", "pt"}
        assert listening(kit.room, ana) == {"en"}
        assert listening(kit.room, bea) == listening(kit.room, dan) == {"pt"}
        assert kit.room.channels["pt"].fanout.tracks >= {bea.audio_out, dan.audio_out}


async def test_a_language_nobody_speaks_any_more_loses_its_channel() -> None:
    async with room_kit() as kit:
        await kit.join("ana", "en")
        cid, _ = await kit.join("cid", "es")
        await kit.room.leave(cid.id)
        assert set(kit.room.channels) == {"en"}


async def test_the_holder_does_not_hear_its_own_voice_and_listeners_hear_it_dubbed() -> None:
    async with room_kit() as kit:
        ana, _ = await kit.join("ana", "en")
        await kit.join("eve", "en")
        bea, _ = await kit.join("bea", "pt")
        await kit.room.request_floor(ana.id, ana.secret)
        english, portuguese = kit.room.channels["en"], kit.room.channels["pt"]
        assert english.muted == {ana.audio_out}  # eve, same language, hears the original
        assert portuguese.muted == set()
        assert english.original_gain == 1.0
        assert portuguese.original_gain == kit.room.settings.original_under_translation
        await kit.room.release_floor(ana.id, ana.secret)
        await kit.room.request_floor(bea.id, bea.secret)
        assert english.muted == set() and portuguese.muted == {bea.audio_out}


async def test_a_second_audio_line_carries_the_holders_original_voice() -> None:
    async with room_kit() as kit:
        ana, _ = await kit.join("ana", "en")
        bea, _ = await kit.join("bea", "pt", offer=WITH_ORIGINAL)
        assert bea.original_out is not None
        await kit.room.request_floor(ana.id, ana.secret)
        assert bea.original_out in kit.room.channels["en"].fanout.tracks
        assert bea.original_out not in kit.room.channels["pt"].fanout.tracks
        await kit.room.release_floor(ana.id, ana.secret)
        await kit.room.request_floor(bea.id, bea.secret)  # bea's own voice: not back to her
        assert all(bea.original_out not in c.fanout.tracks for c in kit.room.channels.values())


async def test_video_goes_to_those_whose_offer_asked_for_it() -> None:
    async with room_kit() as kit:
        ana, _ = await kit.join("ana", "en")
        bea, _ = await kit.join("bea", "pt", offer=LISTEN)
        assert ana.watches_video and ana.video_out in kit.room.video.fanout.tracks
        assert not bea.watches_video and bea.video_out not in kit.room.video.fanout.tracks


async def test_a_listener_receives_packets_of_its_language() -> None:
    async with room_kit() as kit:
        bea, _ = await kit.join("bea", "pt")
        await asyncio.sleep(1.0)
        packets = [await asyncio.wait_for(bea.audio_out.recv(), 1) for _ in range(10)]
        assert all(packet.time_base is not None for packet in packets)  # Opus, 20 ms each


async def test_speech_from_a_microphone_takes_the_floor_and_becomes_a_job() -> None:
    async with room_kit() as kit:
        _, listener = await kit.join("bea", "pt")
        kit.speech[:] = [0.0] * 10 + [0.9] * 40 + [0.0] * 30  # 1.3 s of speech, then a pause
        ana, peer = await kit.join("ana", "en")
        microphone = FakeMicrophone()
        microphone.say(3.0)
        peer.send_track(microphone)
        await asyncio.sleep(4.0)
        assert listener.channel is not None
        holders = [e["holder"] for e in listener.channel.of_type("floor.changed")]
        assert holders[-2:] == [ana.id, None]  # taken by speaking, freed by the pause after
        speaking = [e["speaking"] for e in listener.channel.of_type("speaking.changed")]
        assert speaking == [True, False]
        [job] = kit.bus.jobs
        assert job.utterance.speaker == ana.id and job.targets == ("en", "pt")
        assert 1.0 <= job.utterance.segment.duration_s <= 2.0
        microphone.stop()


async def test_a_muted_microphone_sends_nothing_to_translate() -> None:
    async with room_kit() as kit:
        kit.speech[:] = [0.9] * 60
        ana, peer = await kit.join("ana", "en")
        kit.room.set_muted(ana.id, ana.secret, True)
        microphone = FakeMicrophone()
        microphone.say(2.0)
        peer.send_track(microphone)
        await asyncio.sleep(3.0)
        assert kit.bus.jobs == [] and kit.room.floor.holder is None
        microphone.stop()
