"""Hostile audio: silence, noise, music, clipped square waves, DC offset, extreme levels, NaN/Inf,
odd rates and layouts, empty and one-sample input, a ten-minute monologue without a pause.

Real Silero VAD, real Whisper base, real aiortc on 127.0.0.1. What must hold: no caption from
anything that is not speech, real speech still gives its words, segments never longer than the
configured maximum, memory that does not grow with the length of the stream, a call that goes on.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import tracemalloc
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import NamedTuple, cast

import av
import httpx
import numpy as np
import numpy.typing as npt
import pytest
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from pipeline.asr.whisper import HallucinationGuard
from pipeline.audio import ASR_SAMPLE_RATE, Samples, read_file, resample, sanitize
from pipeline.cascade import Cascade, CascadeResult, Utterance
from pipeline.events import CaptionFinal
from pipeline.models import Models, segmenter_config
from pipeline.segmenter import FRAME_S, Segment, Segmenter, SegmenterConfig
from pipeline.settings import Settings
from pipeline.vad import FRAME_SAMPLES, SileroDetector
from server.ingest import BATCH_S, AudioIngest
from server.playout import SAMPLE_RATE as LIVE_RATE
from testkit.fixtures import Clip, clip_named
from testkit.peer import Participant, from_speaker, leave_all
from testkit.quality import normalize_text, wer
from testkit.waiting import until

SR = ASR_SAMPLE_RATE
CHUNK = round(BATCH_S * SR)  # what the ingest hands the segmenter at a time (60 ms)
SPEECH = "en_commonvoice_platforms"  # "Today only platforms one and three are used."
Signal = Callable[[float, int], Samples]  # (seconds, sample rate) → mono float32


# ---------------------------------------------------------------- hostile signals


def _time(seconds: float, rate: int) -> npt.NDArray[np.float64]:
    return np.arange(int(seconds * rate)) / rate


def white_noise(level: float, seed: int = 0) -> Signal:
    def make(seconds: float, rate: int) -> Samples:
        noise = np.random.default_rng(seed).standard_normal(int(seconds * rate)) * level
        return np.clip(noise, -1.0, 1.0).astype(np.float32)

    return make


def pink_noise(seconds: float, rate: int) -> Samples:
    """1/f noise: the spectral tilt of a room, a fan, a crowd far away."""
    n = int(seconds * rate)
    spectrum = np.fft.rfft(np.random.default_rng(1).standard_normal(n))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1))
    pink = np.fft.irfft(spectrum, n)
    return np.asarray(0.5 * pink / np.abs(pink).max(), dtype=np.float32)


def chord_progression(seconds: float, rate: int) -> Samples:
    """C–Am–F–G, two chords a second, six harmonics per note, plucked envelopes, near full scale."""
    t = _time(seconds, rate)
    chords = [(261.6, 329.6, 392.0), (220.0, 261.6, 329.6), (174.6, 220.0, 261.6), (196.0, 246.9)]
    out = np.zeros_like(t)
    for beat in range(int(seconds * 2)):
        window = (t >= beat * 0.5) & (t < (beat + 1) * 0.5)
        local = t[window] - beat * 0.5
        envelope = np.minimum(1.0, local * 50) * np.exp(-2.0 * local)
        for pitch in chords[beat % len(chords)]:
            for harmonic in range(1, 7):
                out[window] += (
                    np.sin(2 * np.pi * pitch * harmonic * t[window]) / harmonic * envelope
                )
    return np.asarray(0.9 * out / np.abs(out).max(), dtype=np.float32)


def square_wave(hz: float, amplitude: float) -> Signal:
    def make(seconds: float, rate: int) -> Samples:
        return (amplitude * np.sign(np.sin(2 * np.pi * hz * _time(seconds, rate)))).astype(
            np.float32
        )

    return make


def overdriven_glide(seconds: float, rate: int) -> Samples:
    """A sine gliding through a voice's pitch range (90–150 Hz), driven 4× into clipping."""
    pitch = 120 + 30 * np.sin(2 * np.pi * 0.7 * _time(seconds, rate))
    return np.clip(4.0 * np.sin(2 * np.pi * np.cumsum(pitch) / rate), -1.0, 1.0).astype(np.float32)


def dc(level: float) -> Signal:
    def make(seconds: float, rate: int) -> Samples:
        return np.full(int(seconds * rate), level, dtype=np.float32)

    return make


def dc_steps(seconds: float, rate: int) -> Samples:
    """An offset switching on and off twice a second (a loose connector)."""
    return (0.8 * ((_time(seconds, rate) * 2).astype(int) % 2)).astype(np.float32)


def clicks(seconds: float, rate: int) -> Samples:
    """Full-scale two-sample clicks, five a second."""
    out = np.zeros(int(seconds * rate), dtype=np.float32)
    out[:: rate // 5], out[1 :: rate // 5] = 1.0, -1.0
    return out


def non_finite(seconds: float, rate: int) -> Samples:
    """What a broken float decoder hands over: NaN, +Inf and -Inf, nothing else."""
    return np.resize(np.array([np.nan, np.inf, -np.inf], np.float32), int(seconds * rate))


NON_SPEECH: dict[str, Signal] = {
    "digital-silence": dc(0.0),
    "dither-90dBFS": white_noise(10 ** (-90 / 20), seed=5),
    "white-noise": white_noise(0.1),
    "white-noise-full-scale-clipped": white_noise(1.0, seed=2),
    "pink-noise": pink_noise,
    "chord-progression": chord_progression,
    "square-440Hz-full-scale": square_wave(440.0, 1.0),
    "square-120Hz-voice-pitch": square_wave(120.0, 0.9),
    "overdriven-glide": overdriven_glide,
    "dc-offset": dc(0.5),
    "dc-full-scale-negative": dc(-1.0),
    "dc-steps": dc_steps,
    "clicks": clicks,
    "nan-and-inf": non_finite,
}


def at_peak(samples: Samples, dbfs: float) -> Samples:
    return np.asarray(samples / np.abs(samples).max() * 10 ** (dbfs / 20), dtype=np.float32)


def sprinkled(samples: Samples, every: int = 101) -> Samples:
    """About 1 % of the samples replaced by NaN, +Inf or -Inf."""
    out = samples.copy()
    out[::every] = np.nan
    out[7 :: every * 3] = np.inf
    out[13 :: every * 3] = -np.inf
    return out


HOSTILE_SPEECH: dict[str, Callable[[Samples], Samples]] = {
    "dc-offset-plus-0.5": lambda s: np.clip(s + 0.5, -1.0, 1.0),
    "dc-offset-minus-0.3": lambda s: np.clip(s - 0.3, -1.0, 1.0),
    "full-scale-clipped-x8": lambda s: np.clip(at_peak(s, 0.0) * 8, -1.0, 1.0),
    "quiet-40dBFS": lambda s: at_peak(s, -40.0),
    "nan-inf-sprinkled": sprinkled,
    "overs-unclipped-x20": lambda s: at_peak(s, 0.0) * 20,  # float input beyond [-1, 1]
}


# ---------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def config(settings: Settings) -> SegmenterConfig:
    return segmenter_config(settings)


@pytest.fixture(scope="module")
def cascade(models: Models, settings: Settings) -> Cascade:
    return Cascade(
        models.recognizer,
        models.translator,
        models.voices,
        min_speech_ratio=settings.asr_min_speech_ratio,
        synthesize=False,
    )


@pytest.fixture(scope="module")
def speech(clips: list[Clip]) -> tuple[Samples, str]:
    clip = clip_named(clips, SPEECH)
    return read_file(clip.path).samples, clip.transcript


def segments_of(samples: Samples, config: SegmenterConfig) -> list[Segment]:
    """Through a fresh segmenter, in the ingest's 60 ms chunks, as they would arrive."""
    segmenter = Segmenter(SileroDetector(), config)
    found = [
        s for i in range(0, len(samples), CHUNK) for s in segmenter.push(samples[i : i + CHUNK])
    ]
    return found + segmenter.flush()


def processed(cascade: Cascade, segments: list[Segment]) -> list[CascadeResult]:
    return [
        cascade.process(Utterance(f"u-{i}", "mallory", i, "en", segment), ["en", "pt"])
        for i, segment in enumerate(segments)
    ]


def captions(results: list[CascadeResult]) -> list[CaptionFinal]:
    return [
        t.event
        for result in results
        for t in result.translations.values()
        if isinstance(t.event, CaptionFinal)
    ]


def said(results: list[CascadeResult]) -> str:
    return " ".join(c.source_text for c in captions(results) if c.target_language == "en")


def foreign_words(text: str, reference: str) -> set[str]:
    """Words of `text` that are not in the reference: what a hallucination would add."""
    return set(normalize_text(text, "en")) - set(normalize_text(reference, "en"))


def rms_db(samples: Samples) -> float:
    return float(10 * np.log10(np.mean(np.square(samples, dtype=np.float64)) + 1e-20))


# ---------------------------------------------------------------- 1. pipeline level


@pytest.mark.parametrize("name", list(NON_SPEECH))
def test_non_speech_never_becomes_a_caption(
    name: str, config: SegmenterConfig, cascade: Cascade
) -> None:
    audio = NON_SPEECH[name](6.0, SR)
    segments = segments_of(audio, config)
    results = processed(cascade, segments)
    assert not captions(results), [c.source_text for c in captions(results)]
    assert all(r.dropped is not None for r in results)
    # Second line of defence: fed to the ASR as if the VAD had called it speech, still nothing.
    fooled = Segment(0, 0.0, sanitize(audio[: 4 * SR]), speech_ratio=1.0)
    result = cascade.process(Utterance("u-forced", "mallory", 0, "en", fooled), ["en", "pt"])
    assert result.dropped is not None and not result.translations, result.transcript


def test_speech_after_every_hostile_input_on_one_stream(
    config: SegmenterConfig, cascade: Cascade, speech: tuple[Samples, str]
) -> None:
    """The VAD's recurrent state survives 84 s of junk: the speech after it is found, alone."""
    samples, transcript = speech
    junk = [make(6.0, SR) for make in NON_SPEECH.values()]
    stream = np.concatenate([*junk, np.zeros(SR // 2, np.float32), samples])
    segments = segments_of(stream, config)
    junk_s = sum(len(j) for j in junk) / SR
    assert len(segments) == 1 and segments[0].start_s >= junk_s, [s.start_s for s in segments]
    results = processed(cascade, segments)
    assert wer(transcript, said(results), "en") <= 0.2, said(results)


@pytest.mark.parametrize("name", list(HOSTILE_SPEECH))
def test_hostile_speech_still_gives_its_words(
    name: str, config: SegmenterConfig, cascade: Cascade, speech: tuple[Samples, str]
) -> None:
    samples, transcript = speech
    segments = segments_of(HOSTILE_SPEECH[name](samples).astype(np.float32), config)
    assert segments
    assert all(np.isfinite(s.samples).all() and np.abs(s.samples).max() <= 1.0 for s in segments)
    results = processed(cascade, segments)
    assert wer(transcript, said(results), "en") <= 0.2, said(results)
    assert {c.target_language for c in captions(results)} == {"en", "pt"}
    assert all(c.target_text.strip() for c in captions(results))


def test_whisper_quiet_speech_is_never_hallucinated(
    config: SegmenterConfig, cascade: Cascade, speech: tuple[Samples, str]
) -> None:
    """At -60 dBFS peak (-78 dBFS RMS) the VAD hears only the loudest syllables: what is
    captioned must be the speaker's words, never invented ones. A quiet syllable may be
    misheard ("are used" as "all use" on some CPUs), an invented phrase is all foreign."""
    samples, transcript = speech
    results = processed(cascade, segments_of(at_peak(samples, -60.0), config))
    text = said(results)
    words = normalize_text(text, "en")
    assert len(words) >= 3, text
    assert 3 * len(foreign_words(text, transcript)) <= len(words), text  # a third at most


def test_a_non_finite_sample_does_not_void_the_transcript(
    models: Models, speech: tuple[Samples, str]
) -> None:
    """One NaN used to turn Whisper's whole window into 'repetitive' garbage, alone or batched."""
    samples, transcript = speech
    broken = samples.copy()
    broken[20_000], broken[30_000] = np.nan, np.inf
    alone = models.recognizer.transcribe(broken, "en")
    assert wer(transcript, alone.text, "en") <= 0.2, alone
    nan_only = np.full(1, np.nan, np.float32)
    batch = models.recognizer.transcribe_batch([(broken, "en"), (nan_only, "en"), (samples, "en")])
    assert wer(transcript, batch[0].text, "en") <= 0.2, batch
    assert not batch[1].is_speech and batch[1].dropped_reason
    assert wer(transcript, batch[2].text, "en") <= 0.2, batch


@dataclass
class Decoded:
    text: str
    no_speech_prob: float
    avg_logprob: float = -0.5
    compression_ratio: float = 1.5


def test_a_stutter_is_rejected_only_where_whisper_doubts_there_is_speech() -> None:
    """What the overdriven glide made Whisper say (no-speech probability 0.66, log-prob -0.93,
    too short for the compression ratio): rejected. The same words said clearly: kept."""
    guard = HallucinationGuard()
    assert guard.rejects(Decoded(" You're you're you're you're", 0.66, -0.93)) == "repetitive"
    assert guard.rejects(Decoded(" No, no, no, no.", 0.05, -0.3)) is None
    assert guard.rejects(Decoded(" I think, I think so.", 0.7, -0.4)) is None


# ---------------------------------------------------------------- 2. rates and layouts


def av_frames(
    samples: Samples, rate: int, fmt: str, layout: str, left_only: bool = False
) -> list[av.AudioFrame]:
    """16 kHz mono speech as 20 ms decoded frames of another rate, sample format and layout."""
    signal = resample(samples, SR, rate)
    channels = 2 if layout == "stereo" else 1
    step = rate // 50
    frames = []
    for pts in range(0, len(signal), step):
        piece = np.tile(signal[pts : pts + step], (channels, 1))
        if left_only:
            piece[1:] = 0.0
        if fmt.startswith("s16"):
            piece = (np.clip(piece, -1.0, 1.0) * 32767).astype(np.int16)
        data = piece if av.AudioFormat(fmt).is_planar else piece.T.reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format=fmt, layout=layout)
        frame.sample_rate, frame.pts = rate, pts
        frames.append(frame)
    return frames


class FrameTrack(MediaStreamTrack):
    """An inbound audio track that hands over prepared decoded frames, then ends."""

    kind = "audio"

    def __init__(self, frames: list[av.AudioFrame]) -> None:
        super().__init__()
        self._frames = deque(frames)

    async def recv(self) -> av.AudioFrame:
        if not self._frames:
            self.stop()
            raise MediaStreamError
        return self._frames.popleft()


async def ingested(
    frames: list[av.AudioFrame], config: SegmenterConfig
) -> tuple[list[Segment], Samples, float]:
    """The segments AudioIngest cuts from these frames, the live 48 kHz audio it passed on, and
    how much 16 kHz audio the segmenter read."""
    segments: list[Segment] = []
    live: list[Samples] = []

    async def on_voice(speaking: bool) -> None:
        pass

    async def on_segment(segment: Segment, ended_at: float) -> None:
        segments.append(segment)

    segmenter = Segmenter(SileroDetector(), config)
    with ThreadPoolExecutor(1) as executor:
        ingest = AudioIngest(segmenter, executor, live.append, on_voice, on_segment)
        await ingest.run(FrameTrack(frames))
    return segments, np.concatenate(live or [np.zeros(0, np.float32)]), segmenter.position_s


LAYOUTS = {
    "48k-s16-stereo (aiortc Opus)": (48000, "s16", "stereo", False),
    "48k-fltp-stereo": (48000, "fltp", "stereo", False),
    "44.1k-s16-stereo-packed": (44100, "s16", "stereo", False),
    "44.1k-fltp-stereo": (44100, "fltp", "stereo", False),
    "44.1k-s16-left-channel-only": (44100, "s16", "stereo", True),
    "16k-s16p-stereo": (16000, "s16p", "stereo", False),
    "8k-s16-mono (PCMU)": (8000, "s16", "mono", False),
}


@pytest.mark.parametrize("name", list(LAYOUTS))
async def test_every_rate_and_layout_gives_the_same_16k_segments(
    name: str, config: SegmenterConfig, speech: tuple[Samples, str]
) -> None:
    rate, fmt, layout, left_only = LAYOUTS[name]
    samples = np.concatenate([np.zeros(SR // 2, np.float32), speech[0], np.zeros(SR, np.float32)])
    reference = segments_of(samples, config)
    segments, live, read_s = await ingested(
        av_frames(samples, rate, fmt, layout, left_only), config
    )
    duration_s = len(samples) / SR
    assert abs(read_s - duration_s) <= FRAME_S
    assert len(live) == pytest.approx(duration_s * LIVE_RATE, rel=0.01)  # the live voice: 48 kHz
    assert len(segments) == len(reference) == 1
    got, want = segments[0], reference[0]
    assert abs(got.start_s - want.start_s) <= 2 * FRAME_S
    assert abs(got.duration_s - want.duration_s) <= 3 * FRAME_S
    assert got.samples.dtype == np.float32 and np.isfinite(got.samples).all()
    expected_db = rms_db(want.samples) - (6.02 if left_only else 0.0)  # the mix averages
    assert abs(rms_db(got.samples) - expected_db) <= 1.0  # not +3 dB from swresample's downmix
    if rate > 8000:
        offset = round((got.start_s - want.start_s) * SR)
        n = min(len(got.samples), len(want.samples)) - abs(offset) - 64
        a = got.samples[max(0, -offset) :][:n]
        b = want.samples[max(0, offset) :][:n]
        assert float(np.corrcoef(a, b)[0, 1]) >= 0.98


def telephone(samples: Samples) -> Samples:
    """300–3400 Hz, 8 kHz, 8-bit µ-law companding: what a phone bridge sends (PCMU)."""
    spectrum = np.fft.rfft(samples)
    hz = np.fft.rfftfreq(len(samples), 1 / SR)
    spectrum[(hz < 300) | (hz > 3400)] = 0
    narrow = resample(np.fft.irfft(spectrum, len(samples)).astype(np.float32), SR, 8000)
    mu = 255.0
    compressed = np.sign(narrow) * np.log1p(mu * np.abs(np.clip(narrow, -1, 1))) / np.log1p(mu)
    quantised = np.round(compressed * 127) / 127
    expanded = np.sign(quantised) * ((1 + mu) ** np.abs(quantised) - 1) / mu
    return np.asarray(expanded, dtype=np.float32)


async def test_telephone_band_8k_speech_is_transcribed(
    clips: list[Clip], config: SegmenterConfig, cascade: Cascade
) -> None:
    clip = clip_named(clips, "en_librispeech_1272-128104-0000")
    phone = telephone(read_file(clip.path).samples)
    frames = av_frames(resample(phone, 8000, SR), 8000, "s16", "mono")
    assert frames[0].samples == 160  # 20 ms of PCMU
    segments, _live, _read = await ingested(frames, config)
    results = processed(cascade, segments)
    assert wer(clip.transcript, said(results), "en") <= 0.2, said(results)


async def test_format_changes_mid_stream_do_not_stop_the_ingest(
    config: SegmenterConfig, speech: tuple[Samples, str]
) -> None:
    """Opus 48 kHz stereo, then PCMU 8 kHz mono, then 44.1 kHz planar float: a peer switching
    codec used to kill the ingest ('Frame does not match AudioResampler setup')."""
    samples = np.concatenate([speech[0], np.zeros(SR // 2, np.float32)])
    frames = [
        *av_frames(samples, 48000, "s16", "stereo"),
        *av_frames(samples, 8000, "s16", "mono"),
        *av_frames(samples, 44100, "fltp", "stereo"),
    ]
    segments, live, read_s = await ingested(frames, config)
    total_s = 3 * len(samples) / SR
    assert abs(read_s - total_s) <= 2 * FRAME_S
    assert len(live) == pytest.approx(total_s * LIVE_RATE, rel=0.01)
    assert len(segments) == 3
    thirds = [int(s.start_s // (len(samples) / SR)) for s in segments]
    assert thirds == [0, 1, 2]


# ---------------------------------------------------------------- 3. one and zero samples


def test_one_and_zero_sample_segments_in_segmenter_and_asr(
    models: Models, cascade: Cascade, config: SegmenterConfig, speech: tuple[Samples, str]
) -> None:
    nothing, one, one_nan = (
        np.zeros(0, np.float32),
        np.full(1, 0.9, np.float32),
        np.full(1, np.nan, np.float32),
    )
    segmenter = Segmenter(SileroDetector(), config)
    for piece in (nothing, one, one_nan, nothing, one):
        assert segmenter.push(piece) == []
    assert segmenter.flush() == [] and segmenter.flush() == []
    # A segment of every tiny size, with and without the VAD gate: dropped, no exception.
    for samples in (nothing, one, one_nan):
        for ratio in (0.0, 1.0):
            segment = Segment(0, 0.0, samples, speech_ratio=ratio)
            result = cascade.process(Utterance("u-tiny", "mallory", 0, "en", segment), ["en", "pt"])
            assert result.dropped is not None and not result.translations
        transcript = models.recognizer.transcribe(samples, "en")
        assert not transcript.is_speech and transcript.dropped_reason
    # Tiny clips batched between real ones do not disturb their neighbours.
    batch = models.recognizer.transcribe_batch(
        [(nothing, "en"), (speech[0], "en"), (one, "en"), (speech[0], "en")]
    )
    assert [t.is_speech for t in batch] == [False, True, False, True]
    assert all(wer(speech[1], batch[i].text, "en") <= 0.2 for i in (1, 3))


async def test_one_and_zero_sample_frames_in_the_ingest(
    config: SegmenterConfig, speech: tuple[Samples, str]
) -> None:
    def tiny(samples: int) -> av.AudioFrame:
        frame = av.AudioFrame(format="s16", layout="stereo", samples=samples)
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.sample_rate = 48000
        return frame

    only_tiny, live, read_s = await ingested([tiny(0), tiny(1), tiny(0), tiny(1)], config)
    assert only_tiny == [] and read_s == 0.0 and len(live) <= 2
    samples = np.concatenate([speech[0], np.zeros(SR // 2, np.float32)])
    normal = av_frames(samples, 48000, "s16", "stereo")
    mixed = [f for frame in normal for f in (tiny(0), frame, tiny(1))]
    segments, _live, _read = await ingested(mixed, config)
    reference, _, _ = await ingested(av_frames(samples, 48000, "s16", "stereo"), config)
    assert len(segments) == len(reference) == 1
    assert abs(segments[0].duration_s - reference[0].duration_s) <= 2 * FRAME_S


# ---------------------------------------------------------------- 4. a ten-minute monologue


@pytest.fixture(scope="module")
def monologue(clips: list[Clip]) -> Samples:
    return pauseless_speech(clips)


def pauseless_speech(clips: list[Clip]) -> Samples:
    """About a minute of real English speech with every pause cut out (frames the VAD scores
    below 0.5 removed): a speaker who never stops. Looped, it makes any length."""
    detector = SileroDetector()
    voiced = []
    for clip in clips:
        if clip.language != "en" or clip.speakers != 1:
            continue
        samples = read_file(clip.path).samples
        frames = samples[: len(samples) // FRAME_SAMPLES * FRAME_SAMPLES].reshape(-1, FRAME_SAMPLES)
        detector.reset()
        probs = np.array([detector.speech_probability(f) for f in frames])
        voiced.append(frames[probs >= 0.5].reshape(-1))
    return np.concatenate(voiced)


def looped(base: Samples, start: int, size: int) -> Samples:
    return base[np.arange(start, start + size) % len(base)]


class Seen(NamedTuple):
    """A segment without its audio (the test must not be what holds memory)."""

    number: int
    start_s: float
    end_s: float
    cut_at_max_length: bool
    cut_rank: float  # share of the segment's frames quieter than its last one (0: quietest)


def seen(segment: Segment, base: Samples) -> Seen:
    """Checks the segment's audio is the input's, at its place; keeps only its metadata."""
    start = round(segment.start_s * SR)
    np.testing.assert_array_equal(segment.samples, looped(base, start, len(segment.samples)))
    whole = len(segment.samples) // FRAME_SAMPLES * FRAME_SAMPLES
    frames = segment.samples[:whole].reshape(-1, FRAME_SAMPLES).astype(np.float64)
    frame_rms = np.sqrt(np.mean(frames**2, axis=1))
    rank = float(np.mean(frame_rms < frame_rms[-1]))
    return Seen(segment.index, segment.start_s, segment.end_s, segment.cut_at_max_length, rank)


def monologue_run(base: Samples, seconds: int, config: SegmenterConfig) -> tuple[list[Seen], int]:
    """`seconds` of the looped monologue pushed in 60 ms chunks as fast as possible: what came
    out, and the traced memory peak (bytes) of the whole run."""
    total = seconds * SR
    chunks = (looped(base, at, min(CHUNK, total - at)) for at in range(0, total, CHUNK))
    found: list[Seen] = []
    segmenter = Segmenter(SileroDetector(), config)
    peak = 0
    tracemalloc.start()
    try:
        for chunk in itertools.chain(chunks, [None]):
            segments = segmenter.push(chunk) if chunk is not None else segmenter.flush()
            peak = max(peak, tracemalloc.get_traced_memory()[1])
            found.extend(seen(s, base) for s in segments)  # the checks' own memory not counted
            del segments
            tracemalloc.reset_peak()
    finally:
        tracemalloc.stop()
    return found, peak


def test_ten_minute_monologue_is_cut_at_max_length_in_bounded_memory(
    monologue: Samples, config: SegmenterConfig
) -> None:
    assert len(monologue) / SR >= 55
    runs = {seconds: monologue_run(monologue, seconds, config) for seconds in (60, 600)}
    for seconds, (segments, _peak) in runs.items():
        assert [s.number for s in segments] == list(range(len(segments)))
        assert max(s.end_s - s.start_s for s in segments) <= config.max_segment_s + 1e-9
        # Nothing lost: the segments tile the whole stream, each starting where the last ended.
        assert segments[0].start_s == 0.0
        for before, after in itertools.pairwise(segments):
            assert after.start_s == pytest.approx(before.end_s, abs=1e-9)
        assert segments[-1].end_s == pytest.approx(seconds, abs=1e-9)
        cut = [s for s in segments if s.cut_at_max_length]
        assert len(cut) >= seconds / config.max_segment_s  # a cut at least every 12 s
        # Cut where it is quiet (the segmenter weighs speech probability with level): mostly at
        # one of the quietest frames, where a cut anywhere would sit at the median.
        ranks = [s.cut_rank for s in cut]
        assert np.median(ranks) <= 0.05 and np.mean(np.array(ranks) <= 0.1) >= 2 / 3, ranks
    (short, short_peak), (long, long_peak) = runs[60], runs[600]
    assert len(long) >= 9 * len(short)
    # Bounded: ten times the audio, no more memory (a segment's worth is 12 s × 64 KB/s).
    assert long_peak <= 1.2 * short_peak + 256 * 1024, (short_peak, long_peak)
    assert long_peak <= 8 * 1024 * 1024


# ---------------------------------------------------------------- 5. in a call


async def test_a_call_goes_on_through_hostile_audio(
    gateway: str,
    http: httpx.AsyncClient,
    clips: list[Clip],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Over a real WebRTC peer: noise, a full-scale square wave, clipped overdriven tones and DC
    steps, then real speech. The listener reads the speech and nothing else; the server is fine."""
    caplog.set_level(logging.ERROR)
    clip = clip_named(clips, SPEECH)
    rate = 48000
    junk = [
        white_noise(0.3, seed=7)(1.5, rate),
        square_wave(440.0, 1.0)(1.5, rate),
        overdriven_glide(1.5, rate),
        dc_steps(1.0, rate),
        np.zeros(rate // 2, np.float32),
    ]
    speaker = Participant(gateway, "hostile-audio", "mallory", "en")
    listener = Participant(gateway, "hostile-audio", "bruno", "pt")
    await speaker.join(http, speak=True)
    await listener.join(http, speak=False)
    assert speaker.microphone is not None
    for piece in junk:
        speaker.microphone.say(piece)
    speaker.microphone.say(read_file(clip.path, rate).samples)
    await until(lambda: not speaker.microphone.speaking, 20)  # type: ignore[union-attr]
    await until(lambda: bool(from_speaker(listener, speaker)), 15)
    await asyncio.sleep(1.0)  # anything else in flight arrives by now
    heard = from_speaker(listener, speaker)
    junk_s = sum(len(piece) for piece in junk) / rate
    # The speaker's stream starts when the peer connects, before the junk: a caption of the
    # junk would start inside its first seconds.
    assert all(cast(float, c["speech_start_s"]) >= junk_s - 0.5 for c in heard), heard
    text = " ".join(str(c["source_text"]) for c in heard)
    assert wer(clip.transcript, text, "en") <= 0.2, text
    # A hallucination adds a phrase; one misheard word ("one in three" for "one and three",
    # seen once in CI-like runs) is Whisper's error, already bounded by the WER above.
    assert len(foreign_words(text, clip.transcript)) <= 1, text
    assert all(c["target_text"] and c["target_language"] == "pt" for c in heard)
    own = [c for c in speaker.captions() if c["speaker"] == speaker.participant_id]
    assert len(own) == len(heard)  # the speaker reads the same utterances, no extra ones
    assert not listener.of_type("utterance.failed") and not speaker.of_type("utterance.failed")
    # The server is healthy and the room is intact.
    health = await http.get(f"{gateway}/healthz")
    room = await http.get(f"{gateway}/api/rooms/hostile-audio")
    transcript = await http.get(f"{gateway}/api/rooms/hostile-audio/transcript")
    assert [r.status_code for r in (health, room, transcript)] == [200, 200, 200]
    ids = {p["id"] for p in room.json()["participants"]}
    assert ids == {speaker.participant_id, listener.participant_id}
    kept = " ".join(str(c["source_text"]) for c in transcript.json())
    assert len(foreign_words(kept, clip.transcript)) <= 1, kept  # as the captions above
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
    await leave_all(http, speaker, listener)
