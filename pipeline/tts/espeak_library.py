"""libespeak-ng in this process (ctypes): one global synthesiser behind a lock.

Two uses: synthesis with phoneme events (each phoneme's start sample, for lip-sync visemes), and
text to IPA phonemes (what Kokoro reads), clause by clause. The library is initialised once per
process; every call holds the lock.
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np

from pipeline.errors import ModelUnavailableError, StageError
from pipeline.tts.text import clauses

# speak_lib.h
_SYNCHRONOUS = 2
_PHONEME_EVENTS, _PHONEME_IPA, _DONT_EXIT = 0x0001, 0x0002, 0x8000
_PHONEMES_IPA = 0x02  # espeak_TextToPhonemes: IPA output
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
class Take:
    """What one synthesis produced: audio chunks, and (name, start sample) per phoneme."""

    chunks: list[np.ndarray[Any, np.dtype[np.int16]]] = field(default_factory=list)
    marks: list[tuple[str, int]] = field(default_factory=list)
    end: int = 0


class Espeak:
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
        self._take = Take()
        self._callback = _Callback(self._collect)  # kept referenced: the library calls it later
        self._lib.espeak_SetSynthCallback(self._callback)
        self._lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        self._lib.espeak_TextToPhonemes.argtypes = [
            ctypes.POINTER(ctypes.c_void_p),
            ctypes.c_int,
            ctypes.c_int,
        ]

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

    def synthesize(self, text: str, voice: str) -> Take:
        data = text.encode("utf-8") + b"\0"
        with self._lock:
            self._select(voice)
            self._take = Take()
            status = self._lib.espeak_Synth(
                data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
            )
            self._lib.espeak_Synchronize()
            take = self._take
        if status != 0:
            raise StageError("tts", f"libespeak-ng could not synthesise (status {status})")
        return take

    def ipa(self, text: str, voice: str) -> str:
        """IPA phonemes of `text` (one clause: no punctuation inside), stress marks included."""
        data = ctypes.create_string_buffer(text.encode("utf-8"))
        pointer = ctypes.c_void_p(ctypes.addressof(data))
        pieces: list[str] = []
        with self._lock:
            self._select(voice)
            while pointer.value:
                found = self._lib.espeak_TextToPhonemes(
                    ctypes.byref(pointer), _CHARS_UTF8, _PHONEMES_IPA
                )
                if found:
                    pieces.append(found.decode("utf-8", errors="ignore"))
        return " ".join(piece.strip() for piece in pieces if piece.strip())


@cache
def espeak_library() -> Espeak:
    return Espeak()


def text_to_ipa(text: str, voice: str) -> str:
    """IPA for `text` as the espeak-ng voice would say it, clause punctuation kept in place."""
    library = espeak_library()
    return " ".join(f"{library.ipa(words, voice)}{marks[:1]}" for words, marks in clauses(text))
