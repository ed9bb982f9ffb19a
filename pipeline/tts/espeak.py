"""espeak-ng (Debian) formant synthesis: every language, very fast, robotic."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import numpy as np

from pipeline.audio import Audio, read_wav_bytes
from pipeline.errors import ModelUnavailableError, StageError
from pipeline.tts.base import SpeechSynthesizer

# The espeak-ng voice of each language: for languages nothing better speaks, for phonemes (what
# Kokoro reads) and for phoneme timings (lip-sync visemes) of any voice.
ESPEAK_VOICES = {
    "en": "en-us",
    "pt": "pt-br",
    "es": "es",
    "fr": "fr-fr",
    "it": "it",
    "ca": "ca",
    "de": "de",
    "nl": "nl",
    "ro": "ro",
}


class EspeakSynthesizer(SpeechSynthesizer):
    """Runs `espeak-ng --stdout` with the text on stdin (never on the command line)."""

    name = "espeak-ng"
    origin = "Debian espeak-ng"

    def __init__(self, voice: str, timeout_s: float = 10.0) -> None:
        binary = shutil.which("espeak-ng")
        if binary is None:
            raise ModelUnavailableError("espeak-ng is not installed (apt-get install espeak-ng)")
        self._binary = binary
        self.voice = voice
        self._timeout_s = timeout_s

    def clauses(self, text: str, language: str, voice: str | None = None) -> Iterator[Audio]:
        """All of it at once: espeak-ng speaks hundreds of times faster than real time, and its
        phoneme timings (lip-sync) hold for the text said in one go, not clause by clause."""
        yield self.synthesize(text, language)

    def synthesize(self, text: str, language: str, voice: str | None = None) -> Audio:
        if not text.strip():
            return Audio(np.zeros(0, np.float32), 22050)
        try:
            result = subprocess.run(
                [self._binary, "-v", self.voice, "--stdout", "--stdin"],
                input=text.encode("utf-8"),
                capture_output=True,
                timeout=self._timeout_s,
                check=True,
            )
        except (subprocess.TimeoutExpired, subprocess.CalledProcessError) as exc:
            raise StageError("tts", f"espeak-ng voice {self.voice}: {exc}") from exc
        return read_wav_bytes(result.stdout)
