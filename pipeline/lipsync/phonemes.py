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

from collections.abc import Iterable
from typing import Any, Protocol

import numpy as np

from pipeline.audio import Audio
from pipeline.errors import DragomanError
from pipeline.lipsync.base import PhonemeTiming, Speech
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


def stretched(timings: tuple[PhonemeTiming, ...], duration_s: float) -> tuple[PhonemeTiming, ...]:
    """The same phonemes in the same proportions, lasting `duration_s` in all."""
    if not timings or timings[-1].end_s <= 0:
        return ()
    scale = duration_s / timings[-1].end_s
    return tuple(PhonemeTiming(t.phoneme, t.start_s * scale, t.end_s * scale) for t in timings)


def dub_phonemes(
    text: str, language: str, espeak_voice: str | None, duration_s: float
) -> tuple[PhonemeTiming, ...]:
    """Phoneme timings for a dub: exact for an espeak-ng voice (`espeak_voice`), else espeak-ng's
    timings for the language stretched to the dub (Kokoro, Festival and Piper say the same
    phonemes at their own pace); () when the language has no espeak-ng voice."""
    voice = espeak_voice or ESPEAK_VOICES.get(language)
    if voice is None or not text.strip():
        return ()
    try:
        timings = espeak_phonemes(text, voice)
    except DragomanError:
        return ()
    return timings if espeak_voice is not None else stretched(timings, duration_s)


def speech_for(voice: SpeechSynthesizer, text: str, audio: Audio, language: str) -> Speech:
    """`audio` (what `voice` made of `text`, at any rate) with phoneme timings (see
    `dub_phonemes`); without them the lip-sync follows the audio's loudness."""
    own = voice.voice if isinstance(voice, EspeakSynthesizer) else None
    return Speech(audio, dub_phonemes(text, language, own, audio.duration_s))
