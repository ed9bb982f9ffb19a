"""ASR on real speech: accuracy per language, no text from non-speech, model resolution."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.asr.models import BASE_SHA256, resolve_whisper, whisper_base
from pipeline.asr.whisper import HallucinationGuard, WhisperRecognizer
from pipeline.audio import read_file
from pipeline.errors import ModelUnavailableError, UnsupportedLanguageError
from pipeline.models import Models
from testkit.fixtures import Clip, clip_named
from testkit.quality import word_errors
from testkit.signals import music, silence, white_noise


def corpus_wer(models: Models, clips: list[Clip]) -> float:
    edits = words = 0
    for clip in clips:
        text = models.recognizer.transcribe(read_file(clip.path).samples, clip.language).text
        e, w = word_errors(clip.transcript, text, clip.language)
        edits, words = edits + e, words + w
    return edits / words


def test_english_wer_is_at_most_15_percent(models: Models, clips: list[Clip]) -> None:
    english = [c for c in clips if c.language == "en"]
    assert len(english) >= 10
    assert corpus_wer(models, english) <= 0.15


@pytest.mark.parametrize("language", ["es", "pt", "fr", "de"])
def test_other_languages_wer_is_at_most_35_percent(
    models: Models, clips: list[Clip], language: str
) -> None:
    chosen = [c for c in clips if c.language == language]
    assert chosen
    assert corpus_wer(models, chosen) <= 0.35


@pytest.mark.parametrize(
    "samples",
    [silence(4.0), white_noise(4.0, 0.05), white_noise(4.0, 0.5, seed=3), music(4.0)],
    ids=["silence", "quiet-noise", "loud-noise", "music"],
)
def test_non_speech_gives_no_text_even_without_the_vad_gate(
    models: Models, samples: object
) -> None:
    transcript = models.recognizer.transcribe(samples, "en")  # type: ignore[arg-type]
    assert transcript.text == ""
    assert transcript.dropped_reason is not None


@dataclass
class _Decoded:
    text: str
    no_speech_prob: float = 0.0
    avg_logprob: float = -0.2
    compression_ratio: float = 1.2


@pytest.mark.parametrize(
    ("segment", "reason"),
    [
        (_Decoded("hello there", no_speech_prob=0.9, avg_logprob=-1.5), "no_speech"),
        (_Decoded("la la la la la la la la", compression_ratio=3.1), "repetitive"),
        (_Decoded("Thank you for watching!", no_speech_prob=0.3), "hallucination"),
        (_Decoded("Thank you.", no_speech_prob=0.25), "hallucination"),
    ],
)
def test_guard_rejects_hallucination_signs(segment: _Decoded, reason: str) -> None:
    assert HallucinationGuard().rejects(segment) == reason


@pytest.mark.parametrize(
    "segment",
    [
        _Decoded("Thank you.", no_speech_prob=0.02),
        _Decoded("ask what you can do", no_speech_prob=0.7, avg_logprob=-0.3),
    ],
)
def test_guard_keeps_confident_speech(segment: _Decoded) -> None:
    assert HallucinationGuard().rejects(segment) is None


def test_base_parts_are_joined_once_and_verified(tmp_path: Path) -> None:
    source = whisper_base(tmp_path)
    model = Path(source.location) / "model.bin"
    assert (Path(source.location) / "model.bin.sha256").read_text() == BASE_SHA256
    stamp = model.stat().st_mtime_ns
    assert whisper_base(tmp_path).location == source.location
    assert model.stat().st_mtime_ns == stamp  # not joined again


def test_truncated_cache_is_rebuilt(tmp_path: Path) -> None:
    model = Path(whisper_base(tmp_path).location) / "model.bin"
    with model.open("r+b") as handle:
        handle.truncate(1000)
    whisper_base(tmp_path)
    assert model.stat().st_size > 100_000_000


def test_model_folder_and_hub_names(tmp_path: Path) -> None:
    tiny = resolve_whisper("tiny.en", tmp_path)
    assert not tiny.multilingual and (Path(tiny.location) / "model.bin").exists()
    copied = tmp_path / "my-model"
    shutil.copytree(tiny.location, copied)
    assert resolve_whisper(str(copied), tmp_path).location == str(copied)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelUnavailableError, match=r"model\.bin"):
        resolve_whisper(str(tmp_path / "empty"), tmp_path)
    assert resolve_whisper("large-v3-turbo", tmp_path).origin.startswith("Hugging Face")


def test_tiny_en_transcribes_english_and_refuses_other_languages(
    clips: list[Clip], tmp_path: Path
) -> None:
    recognizer = WhisperRecognizer(resolve_whisper("tiny.en", tmp_path))
    clip = clip_named(clips, "en_commonvoice_platforms")
    audio = read_file(clip.path)
    edits, words = word_errors(
        clip.transcript, recognizer.transcribe(audio.samples, "en").text, "en"
    )
    assert edits / words <= 0.3
    with pytest.raises(UnsupportedLanguageError):
        recognizer.transcribe(audio.samples, "pt")


def test_a_batch_of_segments_reads_as_each_one_alone(models: Models, clips: list[Clip]) -> None:
    """Batched decoding (several segments per model call, for GPU workers) changes no words,
    keeps the order across languages, and still drops non-speech."""
    names = ["en_commonvoice_platforms", "es_commonvoice_arenas", "en_ljspeech_LJ001-0004"]
    chosen = [clip_named(clips, name) for name in names]
    items = [(read_file(c.path, 16000).samples, c.language) for c in chosen]
    items.insert(1, (white_noise(3.0), "en"))
    together = models.recognizer.transcribe_batch(items)
    alone = [models.recognizer.transcribe(samples, language) for samples, language in items]
    assert [t.text for t in together] == [t.text for t in alone]
    assert not together[1].is_speech
    assert all(t.is_speech for t in together[:1] + together[2:])
