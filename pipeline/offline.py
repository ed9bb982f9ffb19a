"""Translate a recorded file: segments → cascade → per-language WAV, WebVTT and report.json."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np

from pipeline.audio import Audio, stream_file, write_wav
from pipeline.captions import to_webvtt
from pipeline.cascade import Cascade, CascadeResult, Utterance
from pipeline.errors import AudioInputError
from pipeline.events import CaptionFinal
from pipeline.lipsync.base import LipSyncer
from pipeline.models import Models, segmenter_config
from pipeline.offline_video import has_video, pieces, write_dubbed_video
from pipeline.segmenter import segment_stream

ProgressCallback = Callable[[float], None]


@dataclass
class DubTrack:
    """Translated speech laid on a timeline: each segment at its source start, never overlapping."""

    sample_rate: int
    pieces: list[tuple[int, Audio]] = field(default_factory=list)
    cursor: int = 0

    def place(self, start_s: float, speech: Audio) -> float:
        start = max(round(start_s * self.sample_rate), self.cursor)
        self.pieces.append((start, speech))
        self.cursor = start + len(speech.samples)
        return start / self.sample_rate

    def render(self, min_duration_s: float) -> Audio:
        length = max(self.cursor, round(min_duration_s * self.sample_rate))
        track = np.zeros(length, dtype=np.float32)
        for start, speech in self.pieces:
            track[start : start + len(speech.samples)] = speech.samples
        return Audio(track, self.sample_rate)


def input_duration_s(path: Path) -> float:
    """Duration from the container's metadata (0 when unknown); only for progress."""
    try:
        with av.open(str(path)) as container:
            return float(container.duration or 0) / av.time_base
    except (av.FFmpegError, ValueError):
        return 0.0


def _segment_entry(result: CascadeResult) -> dict[str, Any]:
    segment = result.utterance.segment
    entry: dict[str, Any] = {
        "id": result.utterance.utterance_id,
        "start": round(segment.start_s, 3),
        "end": round(segment.end_s, 3),
        "source_lang": result.utterance.language,
        "source_text": result.transcript.text if result.transcript else "",
        "translations": {},
        "failures": {},
        "timings": {"asr": round(result.asr_s, 4), "mt": {}, "tts": {}},
    }
    for language, translation in result.translations.items():
        event = translation.event
        if isinstance(event, CaptionFinal):
            entry["translations"][language] = event.target_text
            entry["route"] = {**entry.get("route", {}), language: event.route}
        else:
            entry["failures"][language] = {"stage": event.stage, "reason": event.reason}
        entry["timings"]["mt"][language] = round(translation.mt_s, 4)
        entry["timings"]["tts"][language] = round(translation.tts_s, 4)
    return entry


@dataclass
class FileTranslation:
    """The outcome of translating one file, ready to be written out."""

    source: Path
    source_language: str
    targets: list[str]
    results: list[CascadeResult] = field(default_factory=list)
    dropped: int = 0
    wall_s: float = 0.0
    duration_s: float = 0.0

    @property
    def speech_s(self) -> float:
        return sum(r.utterance.segment.duration_s for r in self.results)

    @property
    def tau(self) -> float:
        processing = sum(r.processing_s for r in self.results)
        return processing / self.speech_s if self.speech_s else 0.0

    def captions(self, language: str) -> list[CaptionFinal]:
        events = [
            r.translations[language].event for r in self.results if language in r.translations
        ]
        return [e for e in events if isinstance(e, CaptionFinal)]

    def report(self) -> dict[str, Any]:
        return {
            "input": str(self.source),
            "source_lang": self.source_language,
            "targets": self.targets,
            "duration_s": round(self.duration_s, 3),
            "speech_s": round(self.speech_s, 3),
            "wall_s": round(self.wall_s, 3),
            "tau": round(self.tau, 4),
            "dropped_segments": self.dropped,
            "segments": [_segment_entry(r) for r in self.results if r.dropped is None],
        }


def translate_file(
    path: Path,
    source_language: str,
    targets: list[str],
    models: Models,
    on_progress: ProgressCallback | None = None,
) -> FileTranslation:
    """Stream the file through VAD and the cascade, one segment at a time (bounded memory)."""
    for target in targets:
        models.translator.planner.route(source_language, target)  # unsupported pair: fail first
    cascade = Cascade(
        models.recognizer, models.translator, models.voices, models.settings.asr_min_speech_ratio
    )
    outcome = FileTranslation(path, source_language, targets)
    started = time.perf_counter()
    chunks = stream_file(path)
    for segment in segment_stream(chunks, models.new_vad(), segmenter_config(models.settings)):
        utterance = Utterance(
            f"{path.stem}-{segment.index}", path.stem, segment.index, source_language, segment
        )
        result = cascade.process(utterance, targets)
        if result.dropped is None:
            outcome.results.append(result)
        else:
            outcome.dropped += 1
        if on_progress:
            on_progress(segment.end_s)
    outcome.wall_s = time.perf_counter() - started
    outcome.duration_s = max(
        input_duration_s(path),
        max((r.utterance.segment.end_s for r in outcome.results), default=0.0),
    )
    return outcome


def write_outputs(
    outcome: FileTranslation,
    out_dir: Path,
    sample_rate: int,
    syncer: LipSyncer | None = None,
    on_language: Callable[[str], None] | None = None,
) -> list[Path]:
    """Per target: <stem>.<lang>.wav and <stem>.<lang>.vtt, and for a video input with a
    lip-syncer <stem>.<lang>.mp4 (lip-synced picture, dubbed sound); report.json for all."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AudioInputError(f"cannot create output folder {out_dir}: {exc.strerror}") from exc
    written: list[Path] = []
    stem = outcome.source.stem
    video = syncer is not None and has_video(outcome.source)
    for language in outcome.targets:
        if on_language is not None:
            on_language(language)
        track = DubTrack(sample_rate)
        placed: list[tuple[float, float, float, Audio]] = []
        for result in outcome.results:
            translation = result.translations.get(language)
            if translation is not None and translation.speech is not None:
                segment = result.utterance.segment
                start = track.place(segment.start_s, translation.speech)
                placed.append((segment.start_s, segment.end_s, start, translation.speech))
        wav, vtt = out_dir / f"{stem}.{language}.wav", out_dir / f"{stem}.{language}.vtt"
        dub = track.render(outcome.duration_s)
        write_wav(wav, dub)
        vtt.write_text(to_webvtt(outcome.captions(language)), encoding="utf-8")
        written += [wav, vtt]
        if video:
            assert syncer is not None
            mp4 = out_dir / f"{stem}.{language}.mp4"
            timeline = pieces(placed, outcome.duration_s)
            written.append(write_dubbed_video(outcome.source, mp4, timeline, dub, syncer))
    report = out_dir / "report.json"
    report.write_text(json.dumps(outcome.report(), indent=2, ensure_ascii=False), encoding="utf-8")
    return [*written, report]
