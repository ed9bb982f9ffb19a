"""Prometheus metrics for every stage."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Gauge, Histogram

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)

STAGE_SECONDS = Histogram(
    "dragoman_stage_seconds",
    "Processing time per stage call",
    ["stage", "backend"],
    buckets=_BUCKETS,
)
STAGE_FAILURES = Counter("dragoman_stage_failures_total", "Stage calls that failed", ["stage"])
ABANDONED_THREADS = Counter(
    "dragoman_abandoned_threads_total", "Inference threads left behind in a stuck stage"
)
TTS_FALLBACKS = Counter(
    "dragoman_tts_fallbacks_total",
    "Dubs spoken by the language's fast voice because they were running late",
    ["language"],
)
SPEECH_SECONDS = Counter("dragoman_speech_seconds_total", "Seconds of speech segments processed")
SEGMENTS = Counter("dragoman_segments_total", "Speech segments cut by the VAD segmenter", ["cut"])
BUS_JOBS = Counter(
    "dragoman_bus_jobs_total",
    "Redis bus jobs by outcome (done, duplicate, reclaimed, poison, malformed, expired)",
    ["outcome"],
)
BUS_PENDING = Gauge("dragoman_bus_pending_jobs", "Jobs a gateway submitted without all results")
BUS_CONNECTED = Gauge("dragoman_bus_connected", "1 while this process reaches Redis")
BUS_HOP_SECONDS = Histogram(
    "dragoman_bus_result_seconds",
    "Submit to terminal result through the Redis bus, per target",
    buckets=_BUCKETS,
)
UTTERANCES = Counter("dragoman_utterances_total", "Utterances by outcome", ["outcome"])
LIPSYNC_FRAMES = Counter(
    "dragoman_lipsync_frames_total",
    "Lip-sync output frames: synced (one face) or passthrough (no face, several, turned away)",
    ["backend", "outcome"],
)


@contextmanager
def timed_stage(stage: str, backend: str) -> Iterator[list[float]]:
    """Observe the block's duration; the yielded list receives it (seconds) for reports."""
    elapsed: list[float] = []
    start = time.perf_counter()
    try:
        yield elapsed
    except Exception:
        STAGE_FAILURES.labels(stage).inc()
        raise
    finally:
        seconds = time.perf_counter() - start
        STAGE_SECONDS.labels(stage, backend).observe(seconds)
        elapsed.append(seconds)
