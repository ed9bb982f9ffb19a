"""`dragoman bench pipeline`: per-stage medians and τ on the real speech fixtures."""

from __future__ import annotations

import resource
import statistics
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench.steps import Step
from pipeline.audio import read_file
from pipeline.cascade import Cascade, Utterance
from pipeline.models import Models, segmenter_config
from pipeline.segmenter import segment_stream
from testkit.fixtures import Clip
from testkit.quality import word_errors


@contextmanager
def _stopwatch() -> Iterator[list[float]]:
    elapsed: list[float] = []
    start = time.perf_counter()
    yield elapsed
    elapsed.append(time.perf_counter() - start)


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 4) if values else 0.0


def bench_asr(models: Models, clips: list[Clip], step: Step) -> dict[str, Any]:
    taus: list[float] = []
    errors: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    models.recognizer.transcribe(read_file(clips[0].path).samples, clips[0].language)  # warm-up
    for clip in clips:
        step(f"asr {clip.path.name}")
        audio = read_file(clip.path)
        with _stopwatch() as elapsed:
            text = models.recognizer.transcribe(audio.samples, clip.language).text
        taus.append(elapsed[0] / audio.duration_s)
        edits, words = word_errors(clip.transcript, text, clip.language)
        errors[clip.language][0] += edits
        errors[clip.language][1] += words
    wer = {lang: round(e / max(w, 1), 4) for lang, (e, w) in sorted(errors.items())}
    return {"asr_tau_median": _median(taus), "asr_wer": wer}


def _mt_times(models: Models, sentences: list[tuple[str, str, str]], step: Step) -> list[float]:
    times: list[float] = []
    for text, source, target in sentences:
        step(f"mt {source}→{target}")
        models.translator.translate(text, source, target)  # warm-up and first-use start-up
        with _stopwatch() as elapsed:
            models.translator.translate(text, source, target)
        times.append(elapsed[0] * 1000)
    return times


def bench_mt(models: Models, clips: list[Clip], step: Step) -> dict[str, Any]:
    """Bergamot en→pt on English transcripts; Apertium es↔pt and fr→es on the others."""
    bergamot = [(c.transcript, "en", "pt") for c in clips if c.language == "en"]
    apertium_pairs = {"es": "pt", "pt": "es", "fr": "es", "ca": "es"}
    apertium = [
        (c.transcript, c.language, apertium_pairs[c.language])
        for c in clips
        if c.language in apertium_pairs
    ]
    planner = models.translator.planner
    bergamot = [s for s in bergamot if planner.route(s[1], s[2]).hops[0].backend.name == "bergamot"]
    apertium = [s for s in apertium if planner.has_route(s[1], s[2])]
    bergamot_ms, apertium_ms = _mt_times(models, bergamot, step), _mt_times(models, apertium, step)
    return {
        "mt_ms_median": _median(bergamot_ms + apertium_ms),
        "mt_ms_median_bergamot": _median(bergamot_ms),
        "mt_ms_median_apertium": _median(apertium_ms),
    }


def bench_tts(models: Models, clips: list[Clip], step: Step) -> dict[str, Any]:
    by_engine: dict[str, list[float]] = defaultdict(list)
    for clip in clips:
        step(f"tts {clip.language}")
        voice = models.voices.voice(clip.language)
        voice.synthesize(clip.transcript, clip.language)  # warm-up
        with _stopwatch() as elapsed:
            speech = models.voices.synthesize(clip.transcript, clip.language)
        by_engine[voice.name].append(elapsed[0] / max(speech.duration_s, 1e-3))
    every = [tau for taus in by_engine.values() for tau in taus]
    medians = {
        f"tts_tau_median_{name.replace('-', '_')}": _median(t) for name, t in by_engine.items()
    }
    return {"tts_tau_median": _median(every), **medians}


def bench_cascade(models: Models, clips: list[Clip], target: str, step: Step) -> dict[str, Any]:
    """Decode, VAD, ASR, MT and TTS of English clips to one target: wall time / speech time."""
    cascade = Cascade(
        models.recognizer, models.translator, models.voices, models.settings.asr_min_speech_ratio
    )
    wall = speech = 0.0
    for clip in clips:
        step(f"cascade {clip.path.name}")
        with _stopwatch() as elapsed:
            audio = read_file(clip.path)
            for segment in segment_stream(
                [audio.samples], models.new_vad(), segmenter_config(models.settings)
            ):
                utterance = Utterance(
                    f"bench-{segment.index}", "bench", segment.index, clip.language, segment
                )
                cascade.process(utterance, [target])
                speech += segment.duration_s
        wall += elapsed[0]
    return {"cascade_tau": round(wall / speech, 4) if speech else 0.0, "cascade_target": target}


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def bench_pipeline(models: Models, clips: list[Clip], step: Step) -> dict[str, Any]:
    """Every stage on every clip; load times included for reference."""
    with _stopwatch() as load:
        step("loading models")
        _ = models.recognizer, models.translator, models.voices.voice("en")
    english = [c for c in clips if c.language == "en"]
    return {
        **bench_asr(models, clips, step),
        **bench_mt(models, clips, step),
        **bench_tts(models, clips, step),
        **bench_cascade(models, english, "pt", step),
        "model_load_s": round(load[0], 3),
        "clips": len(clips),
        "peak_rss_mb": peak_rss_mb(),
    }
