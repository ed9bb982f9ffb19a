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

import ctypes
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Protocol

import numpy as np

from pipeline.audio import Audio
from pipeline.errors import ModelUnavailableError, StageError
from pipeline.lipsync.base import PhonemeTiming, Speech
from pipeline.tts.base import SpeechSynthesizer
from pipeline.tts.espeak import EspeakSynthesizer

# speak_lib.h
_SYNCHRONOUS = 2
_PHONEME_EVENTS, _PHONEME_IPA, _DONT_EXIT = 0x0001, 0x0002, 0x8000
_CHARS_UTF8, _POS_CHARACTER = 1, 1
_EVENT_END_OF_LIST, _EVENT_MSG_TERMINATED, _EVENT_PHONEME = 0, 6, 7


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


class _VoiceSpec(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_char_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


_Callback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


@dataclass
class _Take:
    """What one synthesis produced: audio chunks, and (name, start sample) per phoneme."""

    chunks: list[np.ndarray[Any, np.dtype[np.int16]]] = field(default_factory=list)
    marks: list[tuple[str, int]] = field(default_factory=list)
    end: int = 0


class _Espeak:
    """libespeak-ng, initialised once per process. The library is one global synthesiser: every
    call holds the lock."""

    def __init__(self) -> None:
        try:
            self._lib = ctypes.CDLL("libespeak-ng.so.1")
        except OSError as exc:
            raise ModelUnavailableError(
                "libespeak-ng is not installed (apt-get install espeak-ng)"
            ) from exc
        self._lib.espeak_Initialize.argtypes = [
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_int,
        ]
        self._lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self._lib.espeak_SetVoiceByProperties.argtypes = [ctypes.POINTER(_VoiceSpec)]
        self._lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        options = _PHONEME_EVENTS | _PHONEME_IPA | _DONT_EXIT
        self.sample_rate = int(self._lib.espeak_Initialize(_SYNCHRONOUS, 0, None, options))
        if self.sample_rate <= 0:
            raise ModelUnavailableError(
                "libespeak-ng failed to initialise (is its data installed?)"
            )
        self._lock = threading.Lock()
        self._take = _Take()
        self._callback = _Callback(self._collect)  # kept referenced: the library calls it later
        self._lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav: Any, count: int, events: Any) -> int:
        if count > 0 and wav:
            self._take.chunks.append(np.ctypeslib.as_array(wav, (count,)).copy())
        index = 0
        while events[index].type != _EVENT_END_OF_LIST:
            event = events[index]
            if event.type == _EVENT_PHONEME:
                name = event.id.string.decode("utf-8", errors="ignore")
                self._take.marks.append((name, event.sample))
            elif event.type == _EVENT_MSG_TERMINATED:
                self._take.end = event.sample
            index += 1
        return 0

    def _select(self, voice: str) -> None:
        """By voice name, else by language ('fr-fr'), as the espeak-ng command does."""
        name = voice.encode("utf-8")
        if self._lib.espeak_SetVoiceByName(name) == 0:
            return
        spec = _VoiceSpec(languages=name)
        if self._lib.espeak_SetVoiceByProperties(ctypes.byref(spec)) != 0:
            raise ModelUnavailableError(f"espeak-ng has no voice {voice!r}")

    def synthesize(self, text: str, voice: str) -> _Take:
        data = text.encode("utf-8") + b"\0"
        with self._lock:
            self._select(voice)
            self._take = _Take()
            status = self._lib.espeak_Synth(
                data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
            )
            self._lib.espeak_Synchronize()
            take = self._take
        if status != 0:
            raise StageError("tts", f"libespeak-ng could not synthesise (status {status})")
        return take


@cache
def _espeak() -> _Espeak:
    return _Espeak()


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
    take = _espeak().synthesize(text, voice)
    rate = _espeak().sample_rate
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


def speech_for(voice: SpeechSynthesizer, text: str, audio: Audio) -> Speech:
    """`audio` (what `voice` made of `text`, at any rate) with phoneme timings when the engine
    can tell them (espeak-ng), else without: the lip-sync then follows the audio's loudness."""
    if isinstance(voice, EspeakSynthesizer) and text.strip():
        return Speech(audio, espeak_phonemes(text, voice.voice))
    return Speech(audio)
