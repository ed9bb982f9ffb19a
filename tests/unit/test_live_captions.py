"""Live captions of the floor holder, on fakes and virtual time: partials before the final and
in revision order, committed words never taken back, best effort everywhere, finals first."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import numpy as np
import pytest

from pipeline.bus import InProcessBus, Job, JobResult
from pipeline.cascade import Cascade, CascadeResult, Utterance
from pipeline.events import CaptionFinal, CaptionPartial, UtteranceDropped
from pipeline.live import PartialRequest
from pipeline.segmenter import Segment
from server.participant import EventOutbox
from testkit.fakes import (
    FakeChannel,
    FakeMicrophone,
    FakeRecognizer,
    FakeVoice,
    RecordingBus,
    Script,
    Stuck,
    fake_caption,
    fake_cascade,
)
from testkit.room_kit import room_kit
from testkit.waiting import until

HYPOTHESES = [
    "ask",
    "ask not what",
    "ask not what your",
    "Ask not what your country can",
    "ask not what your country can do for you",
]


class SubmitWatchingBus(RecordingBus):
    """Counts the partials a listener had when each job was submitted."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.channel: FakeChannel | None = None
        self.partials_at_submit: list[int] = []

    async def submit(self, job: Job) -> None:
        assert self.channel is not None
        self.partials_at_submit.append(len(self.channel.of_type("caption.partial")))
        await super().submit(job)


async def speak(kit: Any, seconds: float) -> tuple[Any, FakeChannel, FakeChannel]:
    _, listener = await kit.join("bea", "pt")
    kit.speech[:] = [0.0] * 10 + [0.9] * round(seconds / 0.032) + [0.0] * 40
    ana, peer = await kit.join("ana", "en")
    assert listener.channel is not None and peer.channel is not None
    if isinstance(kit.bus, SubmitWatchingBus):
        kit.bus.channel = listener.channel
    microphone = FakeMicrophone()
    microphone.say(seconds + 0.5)
    peer.send_track(microphone)
    await asyncio.sleep(seconds + 3.0)
    microphone.stop()
    return ana, listener.channel, peer.channel


async def test_partials_come_in_revision_order_before_the_final_which_continues_them() -> None:
    recognizer = FakeRecognizer(HYPOTHESES)
    bus = SubmitWatchingBus(live=fake_cascade(recognizer))
    async with room_kit(bus=bus) as kit:
        ana, listener, own = await speak(kit, 3.2)
        partials = listener.of_type("caption.partial")
        [job] = kit.bus.jobs
        assert len(partials) >= 3 and bus.partials_at_submit == [len(partials)]  # none after
        assert {p["utterance_id"] for p in partials} == {job.utterance.utterance_id}
        assert [p["revision"] for p in partials] == list(range(len(partials)))
        committed = [p["committed_text"].lower().split() for p in partials]
        for earlier, later in itertools.pairwise(committed):
            assert later[: len(earlier)] == earlier  # never shrinks, never changes
        assert committed[-1][:4] == ["ask", "not", "what", "your"]
        assert all(p["target_language"] == "pt" for p in partials)
        assert partials[-1]["target_text"] == partials[-1]["committed_text"]  # MT copies here
        # The speaker reads their own live transcript, committed and unstable parts.
        mine = own.of_type("caption.partial")
        assert mine and all(p["target_language"] == "en" for p in mine)
        # The final continues the committed words: given as its prefix, or heard whole.
        final_words = (job.utterance.heard or job.utterance.committed).lower().split()
        assert final_words[: len(committed[-1])] == committed[-1]
        assert job.utterance.committed.lower().split() == committed[-1]
        assert all(request.targets == ("pt",) for request in bus.partial_requests)
        del ana


async def test_a_skipped_reading_is_harmless() -> None:
    async with room_kit(bus=RecordingBus()) as kit:  # skips every partial
        _, listener, _ = await speak(kit, 2.0)
        assert listener.of_type("caption.partial") == []
        [job] = kit.bus.jobs
        assert (job.utterance.committed, job.utterance.heard, job.heard_soon) == ("", "", None)
        assert kit.bus.partial_requests  # it was asked, and said no


async def test_only_the_floor_holder_is_read() -> None:
    bus = RecordingBus(live=fake_cascade(FakeRecognizer(HYPOTHESES)))
    async with room_kit(bus=bus) as kit:
        await speak(kit, 2.0)
        speakers = {request.utterance_id.split("/")[1] for request in bus.partial_requests}
        assert len(speakers) == 1 and kit.bus.jobs[0].utterance.speaker in speakers


def _job(number: int, heard_soon: asyncio.Future[str] | None = None) -> Job:
    segment = Segment(number, 0.0, np.full(16000, 0.1, np.float32), speech_ratio=0.9)
    utterance = Utterance(f"u-{number}", "ana", number, "en", segment, committed="ask")
    return Job("room", utterance, ("en", "pt"), heard_soon=heard_soon)


def collecting_bus(cascade: Cascade) -> tuple[InProcessBus, list[JobResult]]:
    results: list[JobResult] = []

    async def collect(done: JobResult) -> None:
        results.append(done)

    return InProcessBus(cascade, collect), results


def _request() -> PartialRequest:
    return PartialRequest("u-9", "en", np.zeros(16000, np.float32), targets=("pt",))


@pytest.mark.looptime(False)
async def test_a_burst_of_partials_never_delays_a_final() -> None:
    stuck = Stuck()
    recognizer = FakeRecognizer(["ask not"], script=Script(stuck=stuck))
    bus, results = collecting_bus(fake_cascade(recognizer))
    await bus.start()
    await bus.submit(_job(0))
    await until(lambda: len(recognizer.calls) == 1, 5)  # the final is being read
    burst = await asyncio.wait_for(
        asyncio.gather(*(bus.read_partial(_request()) for _ in range(20))), 1
    )
    assert burst == [None] * 20  # skipped at once, not queued behind (or ahead of) it
    stuck.release()
    await until(lambda: len(results) == 1, 5)
    await bus.stop(timeout_s=5)
    assert len(recognizer.calls) == 1 and recognizer.prefixes == ["ask"]
    event = results[0].result.translations["pt"].event
    assert isinstance(event, CaptionFinal)


@pytest.mark.looptime(False)
async def test_a_final_takes_the_transcript_of_the_reading_in_flight() -> None:
    recognizer = FakeRecognizer(["never used"])
    bus, results = collecting_bus(fake_cascade(recognizer))
    await bus.start()
    heard: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    await bus.submit(_job(0, heard_soon=heard))
    await asyncio.sleep(0.2)
    assert results == []  # waits for the reading, not for a decode of its own
    heard.set_result("ask not what your country can do")
    await until(lambda: len(results) == 1, 5)
    skipped: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    skipped.set_result("")  # the reading was skipped: the final decodes after all
    await bus.submit(_job(1, heard_soon=skipped))
    await until(lambda: len(results) == 2, 5)
    await bus.stop(timeout_s=5)
    first, second = (r.result.translations["en"].event for r in results)
    assert isinstance(first, CaptionFinal) and isinstance(second, CaptionFinal)
    assert first.source_text == "ask not what your country can do"
    assert second.source_text == "never used" and recognizer.calls == ["en"]


@pytest.mark.looptime(False)
async def test_a_partial_reading_translates_only_grown_committed_words() -> None:
    recognizer = FakeRecognizer(["ask not what you"])
    cascade = fake_cascade(recognizer)
    request = PartialRequest(
        "u-1", "en", np.zeros(16000, np.float32), "ask", "ask not what", ("pt",)
    )
    reading = cascade.read_partial(request)
    assert reading.agreement.committed == "ask not what"
    assert reading.translations == {"pt": "ask not what"}
    assert recognizer.prefixes == ["ask"]
    same = PartialRequest("u-1", "en", request.samples, "ask not what", "ask not", ("pt",))
    assert cascade.read_partial(same).translations == {}


def _partial(revision: int, utterance_id: str = "room/ana/0") -> CaptionPartial:
    return CaptionPartial(
        utterance_id=utterance_id,
        revision=revision,
        speaker="ana",
        source_language="en",
        committed_text="ask",
        unstable_text="not",
        target_language="pt",
        target_text="ask",
    )


def test_a_waiting_partial_is_replaced_by_its_next_revision_and_by_the_final() -> None:
    outbox = EventOutbox()
    outbox.send(_partial(0))
    outbox.send(_partial(0, "room/ana/1"))
    outbox.send(_partial(1))
    outbox.send(fake_caption("room/ana/1"))  # the channel is not open yet: all four wait
    channel = FakeChannel()
    outbox.attach(channel)
    sent = [(e["type"], e["utterance_id"], e.get("revision")) for e in channel.events]
    assert sent == [
        ("caption.partial", "room/ana/0", 1),
        ("caption.final", "room/ana/1", None),
    ]


def test_no_partial_joins_a_backed_up_channel_but_finals_do() -> None:
    outbox = EventOutbox()
    channel = FakeChannel()
    outbox.attach(channel)
    channel.bufferedAmount = 1 << 20
    outbox.send(_partial(0))
    outbox.send(fake_caption())
    assert [e["type"] for e in channel.events] == ["caption.final"]


@pytest.mark.looptime(False)
async def test_a_final_whose_reading_never_comes_decodes_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("pipeline.bus.HEARD_WAIT_S", 0.2)
    recognizer = FakeRecognizer(["ask not"])
    bus, results = collecting_bus(fake_cascade(recognizer))
    await bus.start()
    never: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    await bus.submit(_job(0, heard_soon=never))
    await until(lambda: len(results) == 1, 5)
    await bus.stop(timeout_s=5)
    event = results[0].result.translations["en"].event
    assert isinstance(event, CaptionFinal) and event.source_text == "ask not"


async def test_closing_the_room_frees_a_final_waiting_for_a_reading() -> None:
    bus = RecordingBus(live=fake_cascade(FakeRecognizer(HYPOTHESES)))
    async with room_kit(bus=bus) as kit:
        live = kit.room.live
        assert live is not None
        ana, _ = await kit.join("ana", "en")
        stream = live._stream_of(ana)
        stream.reading = asyncio.get_running_loop().create_future()
        await kit.room.close()
        assert stream.reading.done() and stream.reading.result() == ""


async def test_a_dropped_utterance_clears_its_live_caption_at_every_listener() -> None:
    bus = RecordingBus(live=fake_cascade(FakeRecognizer(HYPOTHESES)))
    async with room_kit(bus=bus) as kit:
        _, listener, _ = await speak(kit, 2.0)
        [job] = kit.bus.jobs
        result = CascadeResult(job.utterance)
        result.dropped = UtteranceDropped(
            utterance_id=job.utterance.utterance_id, reason="hallucination"
        )
        await kit.room.on_result(JobResult(job, result))
        [dropped] = listener.of_type("utterance.dropped")
        assert dropped["utterance_id"] == job.utterance.utterance_id


@pytest.mark.looptime(False)
async def test_partials_yield_to_a_dub_being_spoken_too() -> None:
    stuck = Stuck()
    voice = FakeVoice(seconds_per_word=0.01, stuck={"pt": stuck})
    bus, results = collecting_bus(fake_cascade(FakeRecognizer(["ask not"]), voice=voice))
    await bus.start()
    await bus.submit(_job(0))
    await until(lambda: "pt" in " ".join(voice.timeline), 5)  # its dub is being spoken
    assert await bus.read_partial(_request()) is None
    stuck.release()
    await until(lambda: len(results) == 1, 5)
    assert await bus.read_partial(_request()) is not None  # idle: read at once
    await bus.stop(timeout_s=5)
