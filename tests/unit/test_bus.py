"""The in-process bus on a cascade of fakes: one result per job, captions before speech, a
bounded queue, a stuck stage failing on time, nothing lost on stop. Real time (the cascade runs
on threads), short deadlines."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import numpy as np
import pytest

from pipeline.bus import InProcessBus, Job, JobResult
from pipeline.cascade import Utterance
from pipeline.events import CaptionFinal, UtteranceFailed
from pipeline.segmenter import Segment
from testkit.fakes import FakeRecognizer, FakeVoice, Stuck, fake_cascade
from testkit.waiting import until

pytestmark = pytest.mark.looptime(False)


def job(number: int, targets: tuple[str, ...] = ("en", "pt")) -> Job:
    segment = Segment(number, 0.0, np.full(16000, 0.1, np.float32), speech_ratio=0.9)
    return Job("room", Utterance(f"u-{number}", "ana", number, "en", segment), targets)


class Collected:
    def __init__(self) -> None:
        self.results: list[JobResult] = []
        self.captions: list[tuple[str, str]] = []

    async def result(self, done: JobResult) -> None:
        self.results.append(done)

    def caption(self, submitted: Job, caption: CaptionFinal) -> None:
        self.captions.append((submitted.utterance.utterance_id, caption.target_language))

    def terminal(self, index: int, target: str) -> object:
        return self.results[index].result.translations[target].event


async def test_every_job_ends_in_one_terminal_event_per_target() -> None:
    seen = Collected()
    bus = InProcessBus(fake_cascade(), seen.result, on_caption=seen.caption)
    await bus.start()
    for number in range(5):
        await bus.submit(job(number))
    await until(lambda: len(seen.results) == 5, 10)
    await bus.stop(timeout_s=5)
    assert [r.job.utterance.sequence for r in seen.results] == list(range(5))  # in order
    for index in range(5):
        assert {*seen.results[index].result.translations} == {"en", "pt"}
        assert isinstance(seen.terminal(index, "pt"), CaptionFinal)
    assert sorted(seen.captions) == sorted((f"u-{n}", t) for n in range(5) for t in ("en", "pt"))


async def test_every_caption_is_handed_out_before_its_result() -> None:
    seen = Collected()
    captions_at_result: list[int] = []

    async def result(done: JobResult) -> None:
        captions_at_result.append(len(seen.captions))
        await seen.result(done)

    cascade = fake_cascade(pairs=[("en", "pt"), ("en", "es")])
    bus = InProcessBus(cascade, result, on_caption=seen.caption)
    await bus.start()
    await bus.submit(job(0, ("en", "pt", "es")))
    await until(lambda: len(seen.results) == 1, 10)
    await bus.stop(timeout_s=5)
    assert captions_at_result == [3]
    assert all(t.delivered for t in seen.results[0].result.translations.values())


async def test_a_full_queue_fails_the_job_at_once_instead_of_dropping_it() -> None:
    stuck = Stuck()
    seen = Collected()
    recognizer = FakeRecognizer()
    recognizer.script.stuck = stuck
    bus = InProcessBus(fake_cascade(recognizer=recognizer), seen.result, queue_size=1)
    bus.job_timeout_s = 5
    await bus.start()
    try:
        await bus.submit(job(0))
        await until(lambda: bus.pending == 0, 5)  # the worker took it (and is stuck in it)
        await bus.submit(job(1))  # queued
        await bus.submit(job(2))  # refused
        assert len(seen.results) == 1 and seen.results[0].job.utterance.sequence == 2
        refused = seen.terminal(0, "pt")
        assert isinstance(refused, UtteranceFailed) and "queue full" in refused.reason
    finally:
        stuck.release()
        await bus.stop(timeout_s=5)
    assert len(seen.results) == 3  # nothing lost


async def test_a_stuck_stage_fails_its_job_on_time_and_the_next_one_runs() -> None:
    stuck = Stuck()
    seen = Collected()
    voice = FakeVoice(seconds_per_word=0.01, stuck={"pt": stuck})
    bus = InProcessBus(fake_cascade(voice=voice), seen.result, on_caption=seen.caption)
    bus.job_timeout_s = 0.5
    await bus.start()
    try:
        await bus.submit(job(0))
        await until(lambda: len(seen.results) == 1, 5)
        kept = seen.terminal(0, "pt")
        assert isinstance(kept, CaptionFinal)  # the caption went out: it stays the final
        assert seen.results[0].result.translations["pt"].speech is None
        assert bus.abandoned_threads == 1
        voice.stuck.clear()
        await bus.submit(job(1))
        await until(lambda: len(seen.results) == 2, 5)
        assert seen.results[1].result.translations["pt"].speech is not None
    finally:
        stuck.release()
        await bus.stop(timeout_s=5)


async def test_stop_fails_what_is_still_queued_with_a_reason() -> None:
    stuck = Stuck()
    seen = Collected()
    recognizer = FakeRecognizer()
    recognizer.script.stuck = stuck
    bus = InProcessBus(fake_cascade(recognizer=recognizer), seen.result, queue_size=4)
    await bus.start()
    for number in range(3):
        await bus.submit(job(number))
    await asyncio.sleep(0.1)
    await bus.stop(timeout_s=0.2)
    stuck.release()
    assert len(seen.results) == 3
    reasons = {r.result.translations["pt"].event.reason for r in seen.results}  # type: ignore[union-attr]
    assert any("shut down" in reason for reason in reasons)


async def test_the_next_caption_does_not_wait_for_the_voice_before_it() -> None:
    stuck = Stuck()
    seen = Collected()
    voice = FakeVoice(stuck={"pt": stuck})
    bus = InProcessBus(fake_cascade(voice=voice), seen.result, on_caption=seen.caption)
    await bus.start()
    try:
        await bus.submit(job(0))
        await bus.submit(job(1))
        await until(lambda: ("u-1", "pt") in seen.captions, 5)  # while u-0 is being dubbed
        assert not seen.results
    finally:
        stuck.release()
    await until(lambda: len(seen.results) == 2, 5)
    await bus.stop(timeout_s=5)
    assert [r.job.utterance.sequence for r in seen.results] == [0, 1]  # dubs keep the order


async def test_a_dub_running_late_is_spoken_by_the_fast_voice() -> None:
    seen = Collected()
    bus = InProcessBus(fake_cascade(), seen.result, fallback_voices={"pt": "espeak:pt-br"})
    bus.fallback_lag_s = 4.0
    await bus.start()
    on_time, late = job(0), job(1)
    await bus.submit(dataclasses.replace(on_time, speech_end_at=time.time()))
    await bus.submit(dataclasses.replace(late, speech_end_at=time.time() - 5.0))
    await until(lambda: len(seen.results) == 2, 5)
    await bus.stop(timeout_s=5)
    assert seen.results[0].job.voice_map == {}
    assert seen.results[1].job.voice_map == {"pt": "espeak:pt-br"}  # not "en": its own words
