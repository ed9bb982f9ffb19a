"""Streaming VAD segmentation with the real Silero detector, on real speech and on non-speech."""

from __future__ import annotations

import csv
import itertools
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from pipeline.audio import ASR_SAMPLE_RATE, Samples, read_file
from pipeline.segmenter import FRAME_S, Segment, Segmenter, SegmenterConfig, segment_stream
from pipeline.vad import FRAME_SAMPLES, SileroDetector
from testkit.fixtures import Clip, clip_named
from testkit.signals import music, silence, white_noise

CONVERSATION = Path("conversation") / "ca" / "ca_softcatala_dosparlants.wav"


def run(
    samples: Samples, config: SegmenterConfig | None = None, chunk: int | None = None
) -> list[Segment]:
    """Segments of one stream, pushed in pieces of `chunk` samples (one piece if None)."""
    segmenter = Segmenter(SileroDetector(), config)
    found: list[Segment] = []
    step = chunk or max(len(samples), 1)
    for start in range(0, len(samples), step):
        found.extend(segmenter.push(samples[start : start + step]))
    found.extend(segmenter.flush())
    return found


def assert_well_formed(segments: list[Segment], duration_s: float, config: SegmenterConfig) -> None:
    """Ordered, non-overlapping, inside the stream (up to the padded last frame), long enough."""
    assert [s.index for s in segments] == list(range(len(segments)))
    min_speech_frames = config.frames(config.min_speech_ms)
    for segment in segments:
        assert segment.start_s >= 0.0
        assert segment.end_s <= duration_s + FRAME_S + 1e-9
        assert segment.samples.dtype == np.float32
        frames = math.ceil(len(segment.samples) / FRAME_SAMPLES)
        assert frames >= min_speech_frames
        assert segment.speech_ratio * frames >= min_speech_frames - 1e-6
        assert 0.0 < segment.speech_ratio <= 1.0
    for before, after in itertools.pairwise(segments):
        assert before.end_s <= after.start_s + 1e-9, (before.end_s, after.start_s)


def read_turns(tsv: Path) -> list[tuple[float, float, str]]:
    """(start_s, end_s, speaker) rows of a .segments.tsv (lines starting with '#' are comments)."""
    with tsv.open(encoding="utf-8") as handle:
        lines = [line for line in handle if line.strip() and not line.startswith("#")]
    return [(float(r[0]), float(r[1]), r[2]) for r in csv.reader(lines, delimiter="\t")]


@pytest.fixture(scope="module")
def conversation(fixtures_dir: Path) -> tuple[Samples, list[tuple[float, float, str]]]:
    wav = fixtures_dir / CONVERSATION
    turns = read_turns(wav.with_name(wav.stem + ".segments.tsv"))
    return read_file(wav).samples, turns


# ---------------------------------------------------------------- real speech


def test_conversation_segments_follow_speaker_turns(
    conversation: tuple[Samples, list[tuple[float, float, str]]],
) -> None:
    samples, turns = conversation
    duration_s = len(samples) / ASR_SAMPLE_RATE
    assert len(turns) == 14 and turns[-1][1] == pytest.approx(34.0)
    config = SegmenterConfig()
    segments = run(samples, config)
    assert_well_formed(segments, duration_s, config)
    assert 8 <= len(segments) <= 20
    assert all(s.speech_ratio >= 0.5 for s in segments)

    # Speaker changes (A→B, B→A). The TSV times are coarse (whole seconds, from Whisper), so a
    # change counts as respected when it lies in a pause between segments or within 1 s of a
    # segment's edge; a segmenter that ran turns together would leave changes deep inside segments.
    changes = [b[0] for a, b in itertools.pairwise(turns) if a[2] != b[2]]
    assert len(changes) == 10
    edges = np.array([t for s in segments for t in (s.start_s, s.end_s)])

    def respected(t: float) -> bool:
        in_gap = not any(s.start_s < t < s.end_s for s in segments)
        return in_gap or float(np.min(np.abs(edges - t))) <= 1.0

    missed = [t for t in changes if not respected(t)]
    assert len(missed) <= 2, f"speaker changes inside segments: {missed}"

    # Speech is where the transcript says: the segments span the first to the last turn.
    assert segments[0].start_s < 2.0
    assert segments[-1].end_s > 32.0
    covered = sum(s.duration_s for s in segments)
    assert covered >= 0.7 * duration_s


def test_jfk_segments_cover_most_of_the_speech(clips: list[Clip]) -> None:
    clip = clip_named(clips, "en_jfk_inaugural_1961")
    samples = read_file(clip.path).samples
    config = SegmenterConfig()
    segments = run(samples, config)
    assert_well_formed(segments, clip.duration_s, config)
    assert 2 <= len(segments) <= 8
    assert sum(s.duration_s for s in segments) >= 0.7 * clip.duration_s
    assert not any(s.cut_at_max_length for s in segments)


def test_segments_never_extend_past_the_stream(clips: list[Clip]) -> None:
    clip = clip_named(clips, "en_jfk_inaugural_1961")
    samples = read_file(clip.path).samples
    segments = run(samples)
    total = len(samples) / ASR_SAMPLE_RATE
    assert all(s.end_s <= total + 1e-9 for s in segments), [s.end_s for s in segments]


def test_segment_starts_with_the_speech_pad(clips: list[Clip]) -> None:
    """One second of digital silence, then speech that starts abruptly (JFK from its first word)."""
    jfk = read_file(clip_named(clips, "en_jfk_inaugural_1961").path).samples
    onset = int(0.352 * ASR_SAMPLE_RATE)  # first frame with speech probability >= 0.5
    config = SegmenterConfig()
    segments = run(np.concatenate([silence(1.0), jfk[onset:]]), config)
    first = segments[0]
    pad_s = config.speech_pad_ms / 1000
    assert 1.0 - pad_s - FRAME_S - 1e-9 <= first.start_s <= 1.0 - pad_s + FRAME_S
    lead = int(ASR_SAMPLE_RATE * (1.0 - first.start_s))
    assert not np.any(first.samples[: lead - 1])  # the pad is the silence before the onset
    assert np.any(first.samples[lead + FRAME_SAMPLES : lead + 2 * FRAME_SAMPLES])


def test_speech_shorter_than_min_speech_is_dropped(clips: list[Clip]) -> None:
    jfk = read_file(clip_named(clips, "en_jfk_inaugural_1961").path).samples
    blip = jfk[int(0.5 * ASR_SAMPLE_RATE) : int(0.7 * ASR_SAMPLE_RATE)]  # 200 ms of a word
    stream = np.concatenate([silence(1.0), blip, silence(1.0)])
    assert run(stream) == []  # default min_speech_ms=250
    kept = run(stream, SegmenterConfig(min_speech_ms=32))
    assert len(kept) == 1
    assert 1.0 - 0.2 <= kept[0].start_s <= 1.0 and kept[0].end_s <= 1.2 + 0.5


# ---------------------------------------------------------------- non-speech


@pytest.mark.parametrize("level", [0.003, 0.03, 0.1, 0.3, 0.5])
def test_white_noise_gives_no_segments(level: float) -> None:
    assert run(white_noise(10.0, level=level, seed=int(level * 1000))) == []


def test_music_gives_no_segments() -> None:
    assert run(music(20.0)) == []


def test_silence_gives_no_segments() -> None:
    assert run(silence(10.0)) == []
    assert run(silence(10.0), chunk=333) == []


# ---------------------------------------------------------------- maximum length


@pytest.mark.parametrize("name", ["en_fleurs_005", "en_ljspeech_LJ001-0005"])
def test_max_length_cuts_at_quiet_points(clips: list[Clip], name: str) -> None:
    clip = clip_named(clips, name)
    samples = read_file(clip.path).samples
    config = SegmenterConfig(max_segment_s=3.0)
    segments = run(samples, config)
    assert_well_formed(segments, clip.duration_s, config)
    assert all(s.duration_s <= 3.0 + FRAME_S + 1e-9 for s in segments)
    cuts = [s for s in segments if s.cut_at_max_length]
    assert len(cuts) >= 2
    for segment in cuts:
        whole = len(segment.samples) // FRAME_SAMPLES * FRAME_SAMPLES
        frames = segment.samples[:whole].reshape(-1, FRAME_SAMPLES)
        frame_rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
        assert frame_rms[-1] < np.median(frame_rms), (segment.start_s, frame_rms[-1])
    # A cut leaves no hole: the next segment starts where the cut one ended.
    for before, after in itertools.pairwise(segments):
        if before.cut_at_max_length:
            assert after.start_s == pytest.approx(before.end_s, abs=1e-9)
    # Cutting loses no speech compared with the default segmentation.
    uncut = run(samples)
    assert sum(s.duration_s for s in segments) >= 0.9 * sum(s.duration_s for s in uncut)


# ---------------------------------------------------------------- streaming behaviour


def test_chunk_size_does_not_change_segments(clips: list[Clip]) -> None:
    samples = read_file(clip_named(clips, "en_fleurs_005").path).samples
    config = SegmenterConfig(max_segment_s=3.0)
    whole = run(samples, config)
    assert len(whole) >= 3
    for chunk in (100, 512, 7919):
        pieces = run(samples, config, chunk=chunk)
        assert [(s.start_s, len(s.samples), s.cut_at_max_length) for s in pieces] == [
            (s.start_s, len(s.samples), s.cut_at_max_length) for s in whole
        ], chunk
        for a, b in zip(pieces, whole, strict=True):
            np.testing.assert_array_equal(a.samples, b.samples)


def test_tiny_and_empty_pushes() -> None:
    segmenter = Segmenter(SileroDetector())
    assert segmenter.flush() == []
    assert segmenter.push(np.zeros(0, np.float32)) == []
    assert segmenter.push(np.array([0.3], np.float32)) == []
    assert segmenter.push(np.zeros(0, np.float32)) == []
    assert segmenter.flush() == []
    assert segmenter.flush() == []
    assert list(segment_stream([], SileroDetector())) == []
    assert list(segment_stream([np.zeros(1, np.float32)], SileroDetector())) == []


def test_ten_minute_stream_with_speech_at_five_minutes(clips: list[Clip]) -> None:
    speech = read_file(clip_named(clips, "en_jfk_inaugural_1961").path).samples
    tail = silence(2.0)
    reference = run(np.concatenate([speech, tail]))
    assert len(reference) >= 3

    offset_s, total_s, second = 300, 600, ASR_SAMPLE_RATE
    pushed = 0

    def chunks() -> Iterator[Samples]:
        nonlocal pushed
        quiet = np.zeros(second, np.float32)
        for _ in range(offset_s):
            pushed += second
            yield quiet
        for start in range(0, len(speech), second):
            pushed += len(speech[start : start + second])
            yield speech[start : start + second]
        remaining = total_s * second - pushed
        while remaining > 0:
            size = min(second, remaining)
            pushed += size
            remaining -= size
            yield quiet[:size]

    found = list(segment_stream(chunks(), SileroDetector()))
    assert pushed == total_s * second
    assert len(found) == len(reference)
    for got, want in zip(found, reference, strict=True):
        assert got.start_s == pytest.approx(offset_s + want.start_s, abs=FRAME_S + 1e-9)
        assert abs(len(got.samples) - len(want.samples)) <= FRAME_SAMPLES
    assert [s.index for s in found] == list(range(len(found)))


def test_voiced_until_marks_the_end_of_speech_before_the_pause(clips: list[Clip]) -> None:
    from pipeline.segmenter import FRAME_S, SegmenterConfig, segment_stream

    audio = read_file(clip_named(clips, "en_commonvoice_platforms").path)
    config = SegmenterConfig(speech_pad_ms=160)
    for segment in segment_stream([audio.samples], SileroDetector(), config):
        assert segment.start_s < segment.voiced_until_s <= segment.end_s
        if not segment.cut_at_max_length and segment.end_s < audio.duration_s - 0.5:
            assert segment.end_s - segment.voiced_until_s >= 0.16 - FRAME_S
