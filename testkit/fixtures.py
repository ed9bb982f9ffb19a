"""The speech fixtures' manifest: clips with their language and transcript."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from pipeline.audio import Samples, read_file
from pipeline.errors import DragomanError


@dataclass(frozen=True)
class Clip:
    path: Path
    language: str
    duration_s: float
    transcript: str
    speakers: int


def first_per_language(clips: list[Clip], count: int) -> list[Clip]:
    """The first `count` clips of each language, in manifest order."""
    taken: dict[str, int] = {}
    chosen = []
    for clip in clips:
        if taken.get(clip.language, 0) < count:
            taken[clip.language] = taken.get(clip.language, 0) + 1
            chosen.append(clip)
    return chosen


def default_fixtures_dir() -> Path:
    """../shared/fixtures next to the checkout (or the working directory)."""
    here = Path(__file__).resolve().parents[1]
    for candidate in (
        here.parent / "shared" / "fixtures",
        Path.cwd().parent / "shared" / "fixtures",
    ):
        if (candidate / "manifest.csv").exists():
            return candidate
    return here.parent / "shared" / "fixtures"


def load_manifest(folder: Path, kind: str = "speech/") -> list[Clip]:
    """Clips listed in folder/manifest.csv whose file path starts with `kind`."""
    manifest = folder / "manifest.csv"
    if not manifest.exists():
        raise DragomanError(f"no manifest.csv in {folder}")
    with manifest.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [
        Clip(
            folder / row["file"],
            row["language"],
            float(row["duration_s"]),
            row["transcript"],
            int(row["speakers"]),
        )
        for row in rows
        if row["file"].startswith(kind) and row["duration_s"]  # still images have no duration
    ]


def clip_named(clips: list[Clip], name: str) -> Clip:
    return next(c for c in clips if c.path.stem == name)


def speech_48k(clips: list[Clip], name: str) -> Samples:
    """A fixture clip at 48 kHz, as a microphone would send it."""
    return read_file(clip_named(clips, name).path, 48000).samples
