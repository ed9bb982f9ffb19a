"""Phoneme timings for synthesised speech, to drive the mouth with visemes.

espeak-ng: the `espeak-ng` command has no timing output for its own voices (`--pho` writes
nothing unless an MBROLA voice is used; `-x`/`--ipa` give phonemes without times). Its library,
libespeak-ng (installed with it), does: synthesising with phoneme events on reports, for every
phoneme, the output sample where it starts. So this module runs the library in-process through
ctypes. Its audio is the same speech as `espeak-ng --stdout` for the same voice and text (the
command only appends trailing silence; checked with espeak-ng 1.51): the first synthesis in a
process matches it sample for sample, later ones differ in their noise and move phoneme
boundaries by under a millisecond. So the timings hold for speech made by `pipeline.tts.espeak`
(resampled or not) to about a millisecond, far finer than a video frame. Boundaries are where
the synthesiser switches phoneme; pauses come as nameless phonemes.

Piper: a voice loaded with `PiperVoice.load(path, include_alignments=True)` (needs `onnx`) and
synthesised with `include_alignments=True` gives per-phoneme sample counts (in steps of the
model's hop, 256 samples ≈ 12 ms at 22.05 kHz); `piper_phonemes` turns them into timings.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any, Protocol

import numpy as np

from pipeline.audio import Audio
from pipeline.errors import DragomanError
from pipeline.lipsync.base import PhonemeTiming, Speech
from pipeline.lipsync.drive import energy_track, phoneme_track
from pipeline.tts.base import SpeechSynthesizer
from pipeline.tts.espeak import ESPEAK_VOICES, EspeakSynthesizer
from pipeline.tts.espeak_library import espeak_library


def _timings(marks: list[tuple[str, int]], end: int, rate: int) -> tuple[PhonemeTiming, ...]:
    """Each phoneme lasts until the next starts; the last until the end of the speech."""
    ends = [sample for _, sample in marks[1:]] + [max(end, marks[-1][1] if marks else 0)]
    return tuple(
        PhonemeTiming(name, start / rate, stop / rate)
        for (name, start), stop in zip(marks, ends, strict=True)
        if stop > start
    )


def espeak_speech(text: str, voice: str) -> Speech:
    """Speak `text` with an espeak-ng voice (e.g. 'es', 'pt-br'): audio and phoneme timings from
    the same synthesis. Phoneme names are IPA ('a', 'ð', 'tʃ'); pauses have an empty name."""
    take = espeak_library().synthesize(text, voice)
    rate = espeak_library().sample_rate
    pcm = np.concatenate(take.chunks) if take.chunks else np.zeros(0, np.int16)
    audio = Audio(pcm.astype(np.float32) / 32768.0, rate)
    return Speech(audio, _timings(take.marks, max(take.end, len(pcm)), rate))


def espeak_phonemes(text: str, voice: str) -> tuple[PhonemeTiming, ...]:
    """Phoneme timings of `text` as the espeak-ng voice says it (about 0.2 ms per phoneme)."""
    return espeak_speech(text, voice).phonemes


class _PiperChunk(Protocol):
    """What `piper.AudioChunk` offers (one sentence)."""

    @property
    def sample_rate(self) -> int: ...
    @property
    def audio_float_array(self) -> Any: ...
    @property
    def phoneme_alignments(self) -> Any: ...


def piper_phonemes(chunks: Iterable[_PiperChunk]) -> tuple[PhonemeTiming, ...]:
    """Timings from Piper's per-sentence alignments, sentence after sentence; () when a chunk
    has none (a voice loaded without alignments): the caller then drives the mouth by audio."""
    timings: list[PhonemeTiming] = []
    offset = 0
    for chunk in chunks:
        if not chunk.phoneme_alignments:
            return ()
        start = offset
        for alignment in chunk.phoneme_alignments:
            stop = start + int(alignment.num_samples)
            timings.append(
                PhonemeTiming(
                    str(alignment.phoneme), start / chunk.sample_rate, stop / chunk.sample_rate
                )
            )
            start = stop
        offset += len(chunk.audio_float_array)
    return tuple(timings)


PAUSE_S = 0.08  # a silence this long splits speech into stretches


def voiced_spans(audio: Audio, hop_s: float = 0.02) -> list[tuple[float, float]]:
    """(start, end) of each stretch of sound in `audio`, pauses of PAUSE_S or more between."""
    hop = max(1, int(hop_s * audio.sample_rate))
    frames = len(audio.samples) // hop
    if frames == 0:
        return []
    levels = np.sqrt(np.mean(audio.samples[: frames * hop].reshape(frames, hop) ** 2, axis=1))
    loud = levels > max(float(levels.max()) * 0.05, 1e-4)
    spans: list[tuple[float, float]] = []
    for index in np.flatnonzero(loud):
        start, end = index * hop_s, (index + 1) * hop_s
        if spans and start - spans[-1][1] < PAUSE_S:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    return spans


def _phoneme_spans(timings: tuple[PhonemeTiming, ...]) -> list[list[PhonemeTiming]]:
    """The phonemes grouped into stretches, split where espeak-ng pauses PAUSE_S or more."""
    spans: list[list[PhonemeTiming]] = [[]]
    for timing in timings:
        pause = not timing.phoneme.strip()
        if pause and timing.end_s - timing.start_s >= PAUSE_S:
            if spans[-1]:
                spans.append([])
        elif not pause:
            spans[-1].append(timing)
    return [span for span in spans if span]


def _onto(span: list[PhonemeTiming], start: float, end: float) -> list[PhonemeTiming]:
    first, last = span[0].start_s, span[-1].end_s
    scale = (end - start) / max(last - first, 1e-6)
    return [
        PhonemeTiming(
            t.phoneme, start + (t.start_s - first) * scale, start + (t.end_s - first) * scale
        )
        for t in span
    ]


def _merge_closest(spans: list[tuple[float, float]], count: int) -> list[tuple[float, float]]:
    """Join the stretches separated by the shortest pauses until `count` are left."""
    spans = list(spans)
    while len(spans) > count:
        gaps = [later[0] - earlier[1] for earlier, later in itertools.pairwise(spans)]
        at = int(np.argmin(gaps))
        spans[at : at + 2] = [(spans[at][0], spans[at + 1][1])]
    return spans


def aligned(timings: tuple[PhonemeTiming, ...], audio: Audio) -> tuple[PhonemeTiming, ...]:
    """espeak-ng's phonemes of a text laid onto another voice's speech of it: each stretch of
    phonemes (between espeak-ng's pauses) onto a stretch of sound (the dub's pauses, the
    shortest joined until they are as many), linearly; silences between."""
    phonemes, sounds = _phoneme_spans(timings), voiced_spans(audio)
    if not phonemes or not sounds:
        return ()
    while len(phonemes) > len(sounds):  # the dub runs on where espeak-ng paused
        gaps = [b[0].start_s - a[-1].end_s for a, b in itertools.pairwise(phonemes)]
        at = int(np.argmin(gaps))
        phonemes[at : at + 2] = [phonemes[at] + phonemes[at + 1]]
    sounds = _merge_closest(sounds, len(phonemes))
    pieces = [_onto(span, s, e) for span, (s, e) in zip(phonemes, sounds, strict=True)]
    return _lined_up(tuple(t for piece in pieces for t in piece), audio)


ALIGN_FPS = 100.0
ALIGN_SEARCH_S = 0.12  # stretching is this close, at worst; the loudness settles the rest


def _lined_up(timings: tuple[PhonemeTiming, ...], audio: Audio) -> tuple[PhonemeTiming, ...]:
    """The stretched phonemes shifted to where their mouth opening best follows the dub's
    loudness: a voice that trails off or breathes in moves its stretches' edges, which left
    the mouth 20–70 ms behind Kokoro's Portuguese."""
    count = int(audio.duration_s * ALIGN_FPS)
    if count < 3 or not timings:
        return timings
    mouth = phoneme_track(timings, count, ALIGN_FPS).astype(np.float64)
    loud = energy_track(audio, count, ALIGN_FPS).astype(np.float64)
    search = int(ALIGN_SEARCH_S * ALIGN_FPS)

    def fit(lag: int) -> float:
        a, b = mouth[max(0, -lag) : count - max(0, lag)], loud[max(0, lag) : count - max(0, -lag)]
        return float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else -1.0

    shift = max(range(-search, search + 1), key=lambda lag: (fit(lag), -abs(lag))) / ALIGN_FPS
    return tuple(PhonemeTiming(t.phoneme, t.start_s + shift, t.end_s + shift) for t in timings)


def dub_phonemes(
    text: str, language: str, espeak_voice: str | None, audio: Audio
) -> tuple[PhonemeTiming, ...]:
    """Phoneme timings for a dub: exact for an espeak-ng voice (`espeak_voice`), else espeak-ng's
    timings for the language laid onto the dub (Kokoro, Festival and Piper say the same
    phonemes at their own pace); () when the language has no espeak-ng voice."""
    voice = espeak_voice or ESPEAK_VOICES.get(language)
    if voice is None or not text.strip():
        return ()
    try:
        timings = espeak_phonemes(text, voice)
    except DragomanError:
        return ()
    return timings if espeak_voice is not None else aligned(timings, audio)


def speech_for(voice: SpeechSynthesizer, text: str, audio: Audio, language: str) -> Speech:
    """`audio` (what `voice` made of `text`, at any rate) with phoneme timings (see
    `dub_phonemes`); without them the lip-sync follows the audio's loudness."""
    own = voice.voice if isinstance(voice, EspeakSynthesizer) else None
    return Speech(audio, dub_phonemes(text, language, own, audio))
