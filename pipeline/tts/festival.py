"""Festival (Debian): the Catalan HTS voice (`festvox-ca-ona-hts`) and the Italian diphone voice
(`festvox-italp16k`), read back word for word by Whisper where espeak-ng is not understood.

One long-lived `festival --pipe` interpreter per voice, never a process per sentence: each
request is a Scheme expression that saves the utterance to a WAV file in a private folder, then
prints a numbered marker (stdout is line-buffered through `stdbuf`, so the marker arrives at
once). Festival reads Latin-1; other characters become spaces.
"""

from __future__ import annotations

import itertools
import os
import select
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from pipeline.audio import Audio, read_wav_bytes
from pipeline.errors import ModelUnavailableError, StageError
from pipeline.tts.base import SpeechSynthesizer
from pipeline.tts.text import clauses

VOICES = {"upc_ca_ona_hts": "festvox-ca-ona-hts", "lp_diphone": "festvox-italp16k"}


def scheme_string(text: str) -> str:
    """`text` as a Festival string literal: Latin-1, quotes escaped, controls removed."""
    latin = "".join(char if ord(char) < 256 and char.isprintable() else " " for char in text)
    return '"' + latin.replace("\\", "\\\\").replace('"', '\\"') + '"'


class FestivalSynthesizer(SpeechSynthesizer):
    name = "festival"

    def __init__(self, voice: str, timeout_s: float = 20.0) -> None:
        if voice not in VOICES:
            raise ModelUnavailableError(f"no Festival voice {voice!r}; voices: {sorted(VOICES)}")
        if shutil.which("festival") is None:
            raise ModelUnavailableError(
                f"festival is not installed (apt-get install festival {VOICES[voice]})"
            )
        self.voice = voice
        self.origin = f"Debian festival + {VOICES[voice]}"
        self._timeout_s = timeout_s
        self._folder = Path(tempfile.mkdtemp(prefix="dragoman-festival-"))
        self._lock = threading.Lock()
        self._requests = itertools.count()
        self._process: subprocess.Popen[bytes] | None = None
        with self._lock:
            self._start()

    def _start(self) -> None:
        self._process = subprocess.Popen(
            ["stdbuf", "-oL", "festival", "--pipe"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self._ask(f"(voice_{self.voice})", "voice")

    def _ask(self, expression: str, label: str) -> None:
        """Send one expression and wait for its marker (the interpreter answers in order)."""
        process = self._process
        assert process is not None and process.stdin is not None and process.stdout is not None
        marker = f"DRAGOMAN-{label}-{next(self._requests)}"
        try:
            process.stdin.write(f'{expression}\n(format t "{marker}\\n")\n'.encode("latin-1"))
            process.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise StageError("tts", f"festival ({self.voice}) stopped: {exc}") from exc
        deadline = time.monotonic() + self._timeout_s
        seen = b""
        while marker.encode() not in seen:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([process.stdout], [], [], max(0.0, left))
            if not ready:
                raise StageError("tts", f"festival ({self.voice}) gave no answer in time")
            chunk = os.read(process.stdout.fileno(), 65536)
            if not chunk:
                raise StageError("tts", f"festival ({self.voice}) exited")
            seen = seen[-4096:] + chunk

    def clauses(self, text: str, language: str, voice: str | None = None) -> Iterator[Audio]:
        for words, marks in clauses(text):
            yield self._say(f"{words}{marks[:1]}")

    def synthesize(self, text: str, language: str, voice: str | None = None) -> Audio:
        """Clause by clause, each a request of its own: one long run-on text in one request
        outlived the timeout (400 words of Catalan HTS: 10 s here, over 20 s on a busier
        machine), and a request that long holds the interpreter from every other call."""
        spoken = list(self.clauses(text, language, voice))
        if not spoken:
            return self._say("")
        return Audio(np.concatenate([a.samples for a in spoken]), spoken[0].sample_rate)

    def _say(self, text: str) -> Audio:
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self._start()  # it died (a bad utterance): a fresh interpreter, once
            wav = self._folder / "utterance.wav"
            wav.unlink(missing_ok=True)
            try:
                self._ask(
                    f"(utt.save.wave (utt.synth (Utterance Text {scheme_string(text)})) "
                    f'"{wav}" (quote riff))',
                    "say",
                )
            except StageError:
                self._stop()
                raise
            if not wav.exists():
                raise StageError("tts", f"festival ({self.voice}) wrote no audio")
            return read_wav_bytes(wav.read_bytes())

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def close(self) -> None:
        with self._lock:
            self._stop()
            shutil.rmtree(self._folder, ignore_errors=True)
