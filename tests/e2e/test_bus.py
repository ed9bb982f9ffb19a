"""The in-process bus: a stage that never returns fails its job within the deadline, and the
jobs after it still run (real speech, real models; only the stuck stage is made to hang)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from pipeline.audio import read_file
from pipeline.bus import InProcessBus, Job, JobResult
from pipeline.cascade import Cascade, Utterance
from pipeline.events import CaptionFinal, UtteranceFailed
from pipeline.models import Models
from pipeline.mt.routes import RoutedTranslator, RoutePlanner
from pipeline.segmenter import Segment
from pipeline.tts.base import SpeechSynthesizer
from testkit.fakes import FakeTranslator, FakeVoice, Stuck
from testkit.fixtures import Clip, clip_named

DEADLINE_S = 4.0


@dataclass
class Outcomes:
    results: list[JobResult] = field(default_factory=list)
    captions: list[CaptionFinal] = field(default_factory=list)
    at: list[float] = field(default_factory=list)

    async def result(self, done: JobResult) -> None:
        self.results.append(done)
        self.at.append(time.monotonic())

    def caption(self, job: Job, caption: CaptionFinal) -> None:
        self.captions.append(caption)

    async def until(self, count: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.results) < count:
            assert time.monotonic() < deadline, f"{len(self.results)} of {count} results"
            await asyncio.sleep(0.05)


def job_of(clip: Clip, number: int, targets: tuple[str, ...]) -> Job:
    segment = Segment(0, 3.0, read_file(clip.path).samples, speech_ratio=0.9)
    return Job("room", Utterance(f"u-{number}", "ana", number, "en", segment), targets)


@pytest.fixture
def stuck() -> Stuck:
    return Stuck()


@pytest.fixture
async def running(
    models: Models, stuck: Stuck, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[InProcessBus, Outcomes]]:
    stage = request.param
    translator = models.translator
    voices: SpeechSynthesizer = models.voices
    if stage == "mt":  # the real translator, except that pt never returns (until released)
        pairs = dict.fromkeys(translator.planner.available_pairs(), 1.0)
        hanging = FakeTranslator(pairs, inner=translator, stuck={"pt": stuck})
        translator = RoutedTranslator(RoutePlanner([hanging]))
    else:
        voices = FakeVoice(inner=voices, stuck={"pt": stuck})
    outcomes = Outcomes()
    cascade = Cascade(models.recognizer, translator, voices)
    bus = InProcessBus(cascade, outcomes.result, on_caption=outcomes.caption)
    bus.job_timeout_s = DEADLINE_S
    await bus.start()
    try:
        yield bus, outcomes
    finally:
        stuck.release()  # let the abandoned thread end, so the test process exits cleanly
        await bus.stop(timeout_s=30)


@pytest.mark.parametrize("running", ["mt"], indirect=True)
async def test_a_stuck_translation_fails_by_the_deadline_and_the_room_goes_on(
    running: tuple[InProcessBus, Outcomes], clips: list[Clip]
) -> None:
    bus, outcomes = running
    clip = clip_named(clips, "en_commonvoice_platforms")
    submitted = time.monotonic()
    await bus.submit(job_of(clip, 0, ("pt", "es")))
    await bus.submit(job_of(clip, 1, ("es",)))
    await outcomes.until(2, DEADLINE_S + 30)
    stuck, after = outcomes.results
    for target in ("pt", "es"):
        event = stuck.result.translations[target].event
        assert isinstance(event, UtteranceFailed)
        assert "stuck" in event.reason
    assert outcomes.at[0] - submitted < DEADLINE_S + 2
    assert isinstance(after.result.translations["es"].event, CaptionFinal)
    assert after.result.translations["es"].speech is not None
    assert bus.abandoned_threads == 1


@pytest.mark.parametrize("running", ["tts"], indirect=True)
async def test_a_stuck_voice_keeps_the_caption_and_the_room_goes_on(
    running: tuple[InProcessBus, Outcomes], clips: list[Clip]
) -> None:
    bus, outcomes = running
    clip = clip_named(clips, "en_commonvoice_platforms")
    await bus.submit(job_of(clip, 0, ("pt",)))
    await bus.submit(job_of(clip, 1, ("es",)))
    await outcomes.until(2, DEADLINE_S + 30)
    stuck, after = outcomes.results
    held = stuck.result.translations["pt"]
    assert isinstance(held.event, CaptionFinal) and held.delivered and held.speech is None
    assert [c.target_language for c in outcomes.captions] == ["pt", "es"]  # no late duplicate
    assert after.result.translations["es"].speech is not None
