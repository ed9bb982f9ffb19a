"""A worker's decisions without Redis: which streams it reads, where a recognised utterance
goes next (the original's caption at once, one translate job per other language), drops and
failures as results, poison jobs given up explicitly."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.bus import Job
from pipeline.capabilities import advertisement
from pipeline.cascade import Utterance
from pipeline.segmenter import Segment
from pipeline.settings import Settings
from pipeline.streams import results_stream, translate_stream
from pipeline.wire import JobHeader, read_result, read_text_job
from pipeline.worker import Worker
from testkit.fakes import FakeRecognizer, fake_cascade

pytestmark = pytest.mark.looptime(False)
UNREACHABLE = "redis://127.0.0.1:9/0"  # never contacted: these tests only ask the worker


def worker(
    texts: tuple[str, ...] = ("hello",), pairs: list[tuple[str, str]] | None = None
) -> Worker:
    pairs = pairs or [("en", "pt"), ("en", "es")]
    info = advertisement("w-1", ("asr", "translate"), ["en", "pt"], pairs, {}, "cpu")
    settings = Settings(redis_url=UNREACHABLE)
    cascade = fake_cascade(recognizer=FakeRecognizer(texts), pairs=pairs)
    return Worker(settings, cascade, info)


def header(targets: tuple[str, ...], ratio: float = 0.9) -> JobHeader:
    segment = Segment(0, 0.0, np.full(16000, 0.1, np.float32), speech_ratio=ratio)
    job = Job("room", Utterance("room/ana/0", "ana", 0, "en", segment), targets)
    return JobHeader.of("job-1", "gw-a", job)


def recognised(subject: Worker, job: JobHeader) -> list[tuple[str, dict[bytes, bytes]]]:
    [result] = subject._cascade.recognize_many(
        [(job.utterance(np.full(16000, 0.1, np.float32)), job.targets)]
    )
    outputs = subject._after_recognition(job, result)
    return [
        (
            o.stream,
            {
                k.encode(): v if isinstance(v, bytes) else str(v).encode()
                for k, v in o.fields.items()
            },
        )
        for o in outputs
    ]


def test_it_reads_the_streams_of_its_languages_and_pairs() -> None:
    streams = worker().streams
    assert streams["asr"] == ["dragoman:asr:en", "dragoman:asr:pt"]
    assert streams["translate"] == [translate_stream("en", "pt"), translate_stream("en", "es")]


def test_the_original_is_captioned_at_once_and_each_other_language_becomes_a_translate_job() -> (
    None
):
    outputs = recognised(worker(), header(("en", "pt", "es")))
    streams = [stream for stream, _ in outputs]
    assert streams == [
        results_stream("gw-a"),
        translate_stream("en", "pt"),
        translate_stream("en", "es"),
    ]
    final, _ = read_result(outputs[0][1])
    assert final.kind == "final" and final.event.type == "caption.final"
    assert final.event.target_text == "hello"  # type: ignore[union-attr]
    job = read_text_job(outputs[1][1])
    assert (job.text, job.target, job.job.job_id) == ("hello", "pt", "job-1")


def test_a_segment_without_speech_comes_back_as_one_drop() -> None:
    outputs = recognised(worker(texts=("",)), header(("en", "pt")))
    [(stream, fields)] = outputs
    result, _ = read_result(fields)
    assert stream == results_stream("gw-a") and result.kind == "dropped"


def test_a_job_delivered_too_often_fails_every_target_at_the_bus_stage() -> None:
    outputs = worker()._given_up(header(("en", "pt")), ("en", "pt"), deliveries=4)
    events = [
        read_result(
            {
                k.encode(): v if isinstance(v, bytes) else str(v).encode()
                for k, v in o.fields.items()
            }
        )[0].event
        for o in outputs
    ]
    assert [(e.type, e.stage) for e in events] == [("utterance.failed", "bus")] * 2  # type: ignore[union-attr]
    assert all("given up" in e.reason for e in events)  # type: ignore[union-attr]


def test_a_worker_needs_a_bus() -> None:
    info = advertisement("w", ("asr",), ["en"], [], {}, "cpu")
    with pytest.raises(ValueError, match="REDIS_URL"):
        Worker(Settings(), fake_cascade(), info)
