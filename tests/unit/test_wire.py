"""The Redis wire format: jobs, translate jobs and results survive the trip; garbage does not."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.audio import Audio
from pipeline.bus import Job
from pipeline.cascade import Utterance
from pipeline.events import UtteranceDropped
from pipeline.segmenter import Segment
from pipeline.wire import (
    JobHeader,
    ResultHeader,
    WireError,
    decode_pcm,
    encode_pcm,
    job_fields,
    read_job,
    read_result,
    result_fields,
)
from testkit.fakes import fake_caption


def encoded(fields: dict[str, object]) -> dict[bytes, bytes]:
    return {
        key.encode(): value if isinstance(value, bytes) else str(value).encode()
        for key, value in fields.items()
    }


def test_a_job_round_trips_with_its_audio() -> None:
    samples = np.linspace(-1, 1, 1600, dtype=np.float32)
    segment = Segment(3, 1.5, samples, speech_ratio=0.8, cut_at_max_length=True, voiced_until_s=2.4)
    job = Job("room", Utterance("room/ana/3", "ana", 3, "en", segment), ("en", "pt"), 99.0)
    header = JobHeader.of("job-1", "gw-a", job)
    back, pcm = read_job(encoded(job_fields(header, samples)))
    assert back == header
    utterance = back.utterance(pcm)
    assert utterance.segment.cut_at_max_length and utterance.segment.voiced_until_s == 2.4
    assert np.max(np.abs(pcm - samples)) < 1e-4


def test_pcm_is_clipped_and_nan_free() -> None:
    decoded = decode_pcm(encode_pcm(np.array([2.0, -3.0, np.nan, 0.5], np.float32)))
    assert decoded.tolist() == pytest.approx([1.0, -1.0, 0.0, 0.5], abs=1e-4)
    with pytest.raises(WireError):
        decode_pcm(b"\x00\x01\x02")


def test_results_carry_their_event_type_and_speech() -> None:
    caption = fake_caption("u", "pt", "oi")
    speech = Audio(np.zeros(480, np.float32), 48000)
    header = ResultHeader(kind="final", job_id="j", target="pt", event=caption, speech_rate=48000)
    back, audio = read_result(encoded(result_fields(header, speech)))
    assert back.event == caption and audio is not None and audio.sample_rate == 48000
    dropped = ResultHeader(
        kind="dropped", job_id="j", event=UtteranceDropped(utterance_id="u", reason="no_speech")
    )
    assert read_result(encoded(result_fields(dropped)))[0].event.type == "utterance.dropped"


@pytest.mark.parametrize(
    "fields",
    [{}, {b"header": b"{"}, {b"header": b'{"job_id": ""}', b"pcm": b""}, {b"pcm": b"\x00\x00"}],
)
def test_malformed_entries_raise_wire_errors(fields: dict[bytes, bytes]) -> None:
    with pytest.raises(WireError):
        read_job(fields)
    with pytest.raises(WireError):
        read_result(fields)
