"""A room without HTTP or aiortc: seats, sessions, deadlines, floor, jobs and their events, on
fake peers, a recording bus and virtual time."""

from __future__ import annotations

import asyncio
import time

import av
import numpy as np
import pytest

from pipeline.audio import Audio
from pipeline.bus import JobResult
from pipeline.cascade import CascadeResult, Translation
from pipeline.events import UtteranceFailed
from pipeline.segmenter import Segment
from pipeline.speakers import VoicePrint
from server.access import Grant
from server.errors import BadRequest, Conflict, Forbidden
from testkit.fakes import fake_caption
from testkit.room_kit import LISTEN, room_kit, unit_settings


def grant(identity: str, role: str = "speaker", ttl_s: float = 3600) -> Grant:
    return Grant(identity, role, f"jti-{identity}", time.time() + ttl_s)  # type: ignore[arg-type]


def segment(index: int = 0, seconds: float = 1.0) -> Segment:
    return Segment(index, 0.0, np.zeros(int(seconds * 16000), np.float32), speech_ratio=0.9)


async def test_a_seat_is_connected_only_once_its_peer_is() -> None:
    async with room_kit() as kit:
        ana, peer = await kit.join("ana", connect=False)
        assert ana.info.connected is False
        channel = peer.connect()
        assert ana.info.connected is True
        seen = [e["participants"] for e in channel.of_type("participants.changed")]
        assert seen[-1][0]["connected"] is True
        assert channel.of_type("floor.changed")  # the floor state comes with the join


async def test_a_peer_that_never_connects_leaves_at_the_deadline() -> None:
    async with room_kit(unit_settings(connect_timeout_s=20)) as kit:
        await kit.join("ghost", connect=False)
        await asyncio.sleep(19)
        assert len(kit.room.participants) == 1
        await asyncio.sleep(2)
        assert kit.room.participants == {}
        assert kit.emptied == ["unit"]  # an emptied room asks to be closed
        assert kit.peers.last.state == "closed"


async def test_a_connected_peer_keeps_its_seat_past_the_deadline() -> None:
    async with room_kit(unit_settings(connect_timeout_s=20)) as kit:
        await kit.join("ana")
        await asyncio.sleep(25)
        assert len(kit.room.participants) == 1 and kit.emptied == []


async def test_one_identity_one_seat_the_newer_session_replaces_the_older() -> None:
    async with room_kit() as kit:
        first, old_peer = await kit.join("ben", "en", grant("ben"))
        old_channel = old_peer.channel
        old_secret = first.secret
        second, new_peer = await kit.join("ben", "pt", grant("ben"))
        assert second is first and len(kit.room.participants) == 1
        assert second.language == "pt" and second.secret != old_secret
        assert old_channel is not None
        assert [e["reason"] for e in old_channel.of_type("session.ended")] == ["replaced"]
        assert old_peer.state == "closed" and new_peer.state == "connected"
        assert set(kit.room.channels) == {"pt"}  # the old language's channel is gone
        with pytest.raises(Forbidden):
            kit.room.authorize(first.id, old_secret)


async def test_open_rooms_give_every_join_its_own_seat() -> None:
    async with room_kit() as kit:
        await kit.join("ana")
        await kit.join("ana")
        assert len(kit.room.participants) == 2


async def test_a_full_room_refuses_a_new_identity_but_not_a_returning_one() -> None:
    async with room_kit(unit_settings(max_participants_per_room=2)) as kit:
        await kit.join("a", grant=grant("a"))
        await kit.join("b", grant=grant("b"))
        with pytest.raises(Conflict):
            await kit.join("c", grant=grant("c"))
        await kit.join("b", grant=grant("b"))  # the reconnect path: no seat added
        assert len(kit.room.participants) == 2


async def test_a_refused_offer_leaves_no_seat_and_empties_the_room() -> None:
    async with room_kit() as kit:
        kit.peers.refuse = "no DTLS fingerprint"
        with pytest.raises(BadRequest):
            await kit.join("mallory")
        assert kit.room.participants == {} and kit.emptied == ["unit"]


async def test_a_vanished_peer_keeps_its_seat_for_the_grace_period_only() -> None:
    async with room_kit(unit_settings(reconnect_grace_s=30)) as kit:
        await kit.join("ana")
        bea, peer = await kit.join("bea", "pt")
        peer.vanish()
        await asyncio.sleep(29)
        assert bea.id in kit.room.participants
        await asyncio.sleep(2)
        assert bea.id not in kit.room.participants and kit.emptied == []


async def test_a_reconnection_within_the_grace_period_keeps_the_seat() -> None:
    async with room_kit(unit_settings(reconnect_grace_s=30)) as kit:
        bea, peer = await kit.join("bea", "pt")
        peer.fail()
        await asyncio.sleep(10)
        await kit.room.reconnect(bea.id, bea.secret, LISTEN)
        kit.peers.last.connect()
        await asyncio.sleep(25)
        assert kit.room.participants == {bea.id: bea}


async def test_removal_tells_the_session_then_ends_it() -> None:
    async with room_kit() as kit:
        ben, peer = await kit.join("ben", grant=grant("ben"))
        channel = peer.channel
        assert channel is not None
        await kit.room.moderate(ben.id, "remove")
        assert [e["reason"] for e in channel.of_type("session.ended")] == ["removed"]
        assert peer.state == "closed" and kit.room.participants == {}
        assert kit.emptied == ["unit"]


async def test_a_session_ends_when_its_token_expires() -> None:
    async with room_kit() as kit:
        ana, peer = await kit.join("ana", grant=grant("ana", ttl_s=30))
        await asyncio.sleep(29)
        assert ana.id in kit.room.participants
        await asyncio.sleep(2)
        assert peer.channel is not None
        assert [e["reason"] for e in peer.channel.of_type("session.ended")] == ["token_expired"]
        assert kit.room.participants == {}


async def test_a_replaced_sessions_old_token_does_not_end_the_new_one() -> None:
    async with room_kit() as kit:
        await kit.join("ana", grant=grant("ana", ttl_s=10))
        ana, _ = await kit.join("ana", grant=grant("ana", ttl_s=1000))
        await asyncio.sleep(20)
        assert ana.id in kit.room.participants


async def test_a_moderators_mute_holds_until_a_moderator_lifts_it() -> None:
    async with room_kit() as kit:
        ben, _ = await kit.join("ben", grant=grant("ben"))
        await kit.room.moderate(ben.id, "mute")
        assert ben.info.muted and ben.info.muted_by_moderator
        with pytest.raises(Forbidden, match="moderator"):
            kit.room.set_muted(ben.id, ben.secret, False)
        await kit.join("ben", grant=grant("ben"))  # rejoining does not lift it
        assert ben.muted_by_moderator
        await kit.room.moderate(ben.id, "unmute")
        assert ben.muted  # lifting it does not open the microphone
        kit.room.set_muted(ben.id, ben.secret, False)
        assert not ben.info.muted


async def test_listeners_never_speak() -> None:
    async with room_kit() as kit:
        cid, _ = await kit.join("cid", grant=grant("cid", role="listener"))
        assert cid.muted
        with pytest.raises(Forbidden):
            kit.room.set_muted(cid.id, cid.secret, False)
        with pytest.raises(Forbidden):
            await kit.room.request_floor(cid.id, cid.secret)


async def test_the_holders_segment_becomes_one_job_for_every_language_present() -> None:
    async with room_kit() as kit:
        ana, _ = await kit.join("ana", "en")
        await kit.join("bea", "pt")
        await kit.join("cid", "es")
        await kit.join("dan", "pt")  # a second pt listener adds no work
        await kit.room.request_floor(ana.id, ana.secret)
        await kit.room._on_segment(ana.id, segment(), time.time())
        [job] = kit.bus.jobs
        assert job.targets == ("en", "es", "pt")  # the speaker's own captions first
        assert job.utterance.speaker == ana.id and job.utterance.sequence == 0


async def test_queued_speech_is_held_then_translated_in_order_when_the_floor_passes() -> None:
    async with room_kit() as kit:
        ana, _ = await kit.join("ana", "en")
        bea, _ = await kit.join("bea", "pt")
        await kit.room.request_floor(ana.id, ana.secret)
        await kit.room.request_floor(bea.id, bea.secret)  # queued behind ana
        await kit.room._on_segment(bea.id, segment(0), time.time())
        await kit.room._on_segment(bea.id, segment(1), time.time())
        assert kit.bus.jobs == []
        await kit.room.release_floor(ana.id, ana.secret)
        assert [job.utterance.sequence for job in kit.bus.jobs] == [0, 1]
        assert all(job.utterance.speaker == bea.id for job in kit.bus.jobs)


async def test_speech_of_someone_without_the_floor_is_dropped_and_they_are_told() -> None:
    async with room_kit() as kit:
        ana, _ = await kit.join("ana", "en")
        bea, bea_peer = await kit.join("bea", "pt")
        await kit.room.request_floor(ana.id, ana.secret)
        await kit.room._on_segment(bea.id, segment(), time.time())
        assert kit.bus.jobs == []
        assert bea_peer.channel is not None
        [dropped] = bea_peer.channel.of_type("utterance.dropped")
        assert dropped["reason"] == "not_holding_floor" and dropped["speaker"] == bea.id


async def test_held_speech_beyond_its_bound_is_dropped_oldest_first() -> None:
    async with room_kit(unit_settings(queued_speech_max_s=2.5)) as kit:
        ana, _ = await kit.join("ana", "en")
        bea, bea_peer = await kit.join("bea", "pt")
        await kit.room.request_floor(ana.id, ana.secret)
        await kit.room.request_floor(bea.id, bea.secret)
        for index in range(3):
            await kit.room._on_segment(bea.id, segment(index, 1.0), time.time())
        assert bea_peer.channel is not None
        reasons = [e["reason"] for e in bea_peer.channel.of_type("utterance.dropped")]
        assert reasons == ["floor_queue_overflow"]
        await kit.room.release_floor(ana.id, ana.secret)
        assert len(kit.bus.jobs) == 2


async def test_the_floor_passes_after_the_holders_silence() -> None:
    async with room_kit(unit_settings(floor_release_s=1.5)) as kit:
        ana, _ = await kit.join("ana", "en")
        await kit.room._on_voice(ana.id, True)
        assert kit.room.floor.holder == ana.id
        await kit.room._on_voice(ana.id, False)
        await asyncio.sleep(1.0)
        assert kit.room.floor.holder == ana.id
        await asyncio.sleep(1.0)
        assert kit.room.floor.holder is None


async def test_each_target_ends_in_one_terminal_event_for_its_listeners_only() -> None:
    async with room_kit() as kit:
        ana, ana_peer = await kit.join("ana", "en")
        _, bea_peer = await kit.join("bea", "pt")
        _, cid_peer = await kit.join("cid", "es")
        await kit.room.request_floor(ana.id, ana.secret)
        await kit.room._on_segment(ana.id, segment(), time.time())
        [job] = kit.bus.jobs
        result = CascadeResult(job.utterance)
        for language in ("en", "pt"):
            result.translations[language] = Translation(
                fake_caption(job.utterance.utterance_id, language)
            )
        result.translations["es"] = Translation(
            UtteranceFailed(
                utterance_id=job.utterance.utterance_id,
                target_language="es",
                stage="mt",
                reason="backend crashed",
            )
        )
        await kit.room.on_result(JobResult(job, result))
        channels = {"en": ana_peer.channel, "pt": bea_peer.channel, "es": cid_peer.channel}
        for language, channel in channels.items():
            assert channel is not None
            finals = channel.of_type("caption.final") + channel.of_type("utterance.failed")
            assert [e["target_language"] for e in finals] == [language]
        assert [c.target_language for c in kit.room.transcript] == ["en", "pt"]


async def test_leaving_mid_speech_flushes_and_drops_held_speech_with_a_reason() -> None:
    async with room_kit() as kit:
        ana, _ = await kit.join("ana", "en")
        bea, bea_peer = await kit.join("bea", "pt")
        await kit.room.request_floor(ana.id, ana.secret)
        await kit.room.request_floor(bea.id, bea.secret)
        await kit.room._on_segment(bea.id, segment(), time.time())
        channel = bea_peer.channel
        await kit.room.leave(bea.id)
        assert channel is not None
        assert [e["reason"] for e in channel.of_type("utterance.dropped")] == ["speaker_left"]
        assert kit.room.floor.queue == []


async def test_closing_stops_every_timer() -> None:
    async with room_kit(unit_settings(connect_timeout_s=20)) as kit:
        await kit.join("ghost", connect=False)
        await kit.join("ana", grant=grant("ana", ttl_s=30))
        await kit.room.close()
        assert kit.room.participants == {}
        await asyncio.sleep(100)  # no deadline or expiry fires on a closed room
        assert kit.emptied == []


async def test_clauses_start_the_dub_before_the_result_which_completes_it() -> None:
    async with room_kit(unit_settings(playout_max_delay_s=0.0)) as kit:
        ana, _ = await kit.join("ana", "en")
        await kit.join("bea", "pt")
        await kit.room.request_floor(ana.id, ana.secret)
        await kit.room._on_segment(ana.id, segment(), time.time())
        [job] = kit.bus.jobs
        clause = Audio(np.full(9600, 0.2, np.float32), 48000)  # 0.2 s
        playout = kit.room.channels["pt"].playout
        assert playout is not None
        kit.room.deliver_clause(job, "pt", clause)
        kit.room.deliver_clause(job, "pt", clause)
        assert playout.buffered_s == pytest.approx(0.4)  # playing before the result exists
        result = CascadeResult(job.utterance)
        whole = Audio(np.full(19200, 0.2, np.float32), 48000)
        for language in ("en", "pt"):
            event = fake_caption(job.utterance.utterance_id, language)
            result.translations[language] = Translation(
                event, speech=whole if language == "pt" else None
            )
        await kit.room.on_result(JobResult(job, result))
        assert playout.buffered_s == pytest.approx(0.4)  # completed, not played twice
        assert playout.pending_jobs == 0
        kit.room.deliver_clause(job, "en", clause)  # the speaker's own language is never dubbed
        assert "en" not in {dub for dub in kit.room._streaming}


async def test_a_lip_synced_dub_streams_by_clause_unless_the_speaker_had_a_camera_on() -> None:
    async with room_kit(unit_settings(playout_max_delay_s=0.0)) as kit:
        ana, _ = await kit.join("ana", "en")
        await kit.join("bea", "pt")
        playout = kit.room.channels["pt"].playout
        assert playout is not None
        kit.room.lip_video.enabled = True
        kit.room.lip_video.channel("pt", playout)  # bea watches pt lip-synced
        await kit.room.request_floor(ana.id, ana.secret)
        clause = Audio(np.full(9600, 0.2, np.float32), 48000)
        await kit.room._on_segment(ana.id, segment(0), time.time())
        kit.room.deliver_clause(kit.bus.jobs[-1], "pt", clause)
        assert playout.buffered_s == pytest.approx(0.2)  # no camera: no picture to wait for
        ana.video_history.add(time.time() - 0.5, av.VideoFrame(64, 64, "rgb24"))
        await kit.room._on_segment(ana.id, segment(1), time.time())
        kit.room.deliver_clause(kit.bus.jobs[-1], "pt", clause)
        assert playout.buffered_s == pytest.approx(0.2)  # waits for its whole speech and picture
        await kit.room.lip_video.stop()


def voice_at(f0: float) -> VoicePrint:
    return VoicePrint(f0, tuple([1.0] + [0.0] * 255))


async def test_each_speaker_keeps_a_voice_near_their_own_and_two_get_different_ones() -> None:
    pitches = {"deep": 100.0, "high": 230.0}
    heard: list[str] = []

    def voiceprint(samples: object) -> VoicePrint:
        return voice_at(pitches[heard[-1]])

    async with room_kit(voiceprint=voiceprint) as kit:
        deep, _ = await kit.join("deep", "en")
        high, _ = await kit.join("high", "en")
        await kit.join("bea", "pt")
        for speaker in (deep, high, deep):
            heard.append(speaker.name)
            await kit.room.request_floor(speaker.id, speaker.secret)
            await kit.room._on_segment(speaker.id, segment(seconds=2.0), time.time())
            await kit.room.release_floor(speaker.id, speaker.secret)
        voices = [job.voice_map["pt"] for job in kit.bus.jobs]
        assert voices[0] == voices[2] != voices[1]  # held for the call, different for two
        assert voices[0] in ("kokoro:pm_alex", "kokoro:pm_santa") and voices[1] == "kokoro:pf_dora"
        kit.room.voice_mode = "neutral"
        heard.append("deep")
        await kit.room.request_floor(deep.id, deep.secret)
        await kit.room._on_segment(deep.id, segment(seconds=2.0), time.time())
        assert kit.bus.jobs[-1].voices == ()  # neutral: every language's default voice
