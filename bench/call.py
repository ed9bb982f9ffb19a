"""`dragoman bench call`: latency, lost finals and per-room work of real calls on 127.0.0.1."""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
from prometheus_client import REGISTRY

from bench.steps import Step
from pipeline.audio import read_file
from pipeline.errors import DragomanError
from pipeline.events import CaptionFinal
from pipeline.models import Models
from pipeline.segmenter import SegmenterConfig
from pipeline.settings import Settings
from server.ice import use_loopback_candidates
from testkit.fixtures import Clip
from testkit.harness import local_gateway
from testkit.live_stats import RevisionCount, first_words_at, revisions, source_word_lags
from testkit.peer import Participant
from testkit.stats import dub_heard_at, quantile

TURN_PAUSE_S = 4.0  # quiet between clips, so each clip's first audio is measured on its own
SAY_MARGIN_S = 20.0  # a clip is said within its length and this (else its connection is gone)
# A segment's pads, before and after its voiced speech.
SEGMENT_PADS_S = 2 * SegmenterConfig().speech_pad_ms / 1000
ONSET_LEVEL = 0.02  # a clip's speech starts at its first sample this loud


def _sum(name: str, **labels: str) -> float:
    """Sum of a metric's samples whose labels include `labels` (counts of histograms included)."""
    return sum(
        sample.value
        for metric in REGISTRY.collect()
        if metric.name == name
        for sample in metric.samples
        if sample.name.endswith(("_count", "_total")) and labels.items() <= sample.labels.items()
    )


def _work() -> dict[str, float]:
    """Counters of work done so far: stage calls and encoded frames."""
    return {
        "asr_calls": _sum("dragoman_stage_seconds", stage="asr"),
        "asr_partial_calls": _sum("dragoman_stage_seconds", stage="asr_partial"),
        "mt_calls": _sum("dragoman_stage_seconds", stage="mt"),
        "tts_calls": _sum("dragoman_stage_seconds", stage="tts"),
        "audio_frames_encoded": _sum("dragoman_encoded_frames", kind="audio"),
        "stalls": _sum("dragoman_playout_stalls"),
    }


def _playout_delay(mode: str) -> float | None:
    """The initial delay D the playouts ended with, averaged over languages."""
    values = [
        sample.value
        for metric in REGISTRY.collect()
        if metric.name == "dragoman_playout_delay_seconds"
        for sample in metric.samples
        if sample.labels.get("mode") == mode
    ]
    return round(statistics.mean(values), 3) if values else None


def _delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {key: round(after[key] - before[key], 3) for key in after}


@dataclass
class CallResult:
    caption_latencies: list[float]
    audio_latencies: list[float]  # each turn's first dub, from the end of its speech
    lost_finals: int
    packet_rates: list[float]
    work: dict[str, float]
    duration_s: float
    dub_latencies: list[float] = field(default_factory=list)  # every segment's dub
    turn_s: float = 0.0  # seconds of speech said
    first_words: list[float] = field(default_factory=list)  # each turn's, after its onset
    revised: RevisionCount = field(default_factory=RevisionCount)
    word_lags: list[float] = field(default_factory=list)

    @property
    def stalls_per_turn_minute(self) -> float:
        return round(self.work["stalls"] / max(self.turn_s / 60.0, 1e-9), 2)


async def run_call(
    url: str, room: str, clips: list[Clip], listeners: list[str], video: bool, step: Step
) -> CallResult:
    """One English speaker says each clip in turn; listeners of the given languages listen."""
    before = _work()
    async with httpx.AsyncClient(timeout=60) as http:
        speaker = Participant(url, room, "speaker", "en")
        audience = [
            Participant(url, room, f"listener-{i}", lang) for i, lang in enumerate(listeners)
        ]
        await speaker.join(http, speak=True, video=video)
        for listener in audience:
            await listener.join(http, speak=False, video=video)
        await asyncio.sleep(1.0)
        started = time.time()
        turns: list[tuple[float, float]] = []
        onsets: list[float] = []
        assert speaker.microphone is not None
        for clip in clips:
            step(f"{room}: {clip.path.name}")
            speech = read_file(clip.path, 48000).samples
            lead_s = int(np.argmax(np.abs(speech) >= ONSET_LEVEL)) / 48000
            speaker.microphone.say(speech)
            deadline = time.time() + len(speech) / 48000 + SAY_MARGIN_S
            while speaker.microphone.speaking:
                if time.time() > deadline:
                    raise DragomanError(
                        f"bench call: {room}: the speaker's audio stopped flowing during "
                        f"{clip.path.name} (its connection to the gateway is gone)"
                    )
                await asyncio.sleep(0.05)
            turns.append(speaker.microphone.spoken[-1])
            onsets.append(turns[-1][0] + lead_s)
            await asyncio.sleep(TURN_PAUSE_S)
        duration = time.time() - started
        result = _measure(speaker, audience, turns, started, duration)
        _measure_live(result, speaker, audience, turns, onsets)
        result.turn_s = sum(end - start for start, end in turns)
        for person in [speaker, *audience]:
            await person.leave(http)
    result.work = _delta(_work(), before)
    return result


def _measure(
    speaker: Participant,
    audience: list[Participant],
    turns: list[tuple[float, float]],
    started: float,
    duration: float,
) -> CallResult:
    utterances = {c.utterance_id for _, c in speaker.finals("en")}
    result = CallResult([], [], 0, [], {}, duration)
    for listener in audience:
        arrivals = {c.utterance_id: (at, c) for at, c in listener.finals()}
        failed = {f.utterance_id for f in listener.failures()}
        result.lost_finals += len(utterances - set(arrivals) - failed)
        result.caption_latencies += [at - c.speech_end_at for at, c in arrivals.values()]
        heard = _dubs_heard(listener)
        captions = [c for _, c in arrivals.values()]
        result.dub_latencies += [
            heard[c.utterance_id] - c.speech_end_at for c in captions if c.utterance_id in heard
        ]
        for turn in turns:
            first = _first_of_turn(captions, turn)
            if first is not None and first.utterance_id in heard:
                result.audio_latencies.append(heard[first.utterance_id] - first.speech_end_at)
        received = [at for at, _ in listener.heard.frames if at >= started]
        result.packet_rates.append(
            len(received) / max(received[-1] - received[0], 1e-3) if len(received) > 1 else 0.0
        )
    return result


def _first_of_turn(captions: list[CaptionFinal], turn: tuple[float, float]) -> CaptionFinal | None:
    """The caption of a turn's first segment (its speech ended in the turn, or just after)."""
    start, end = turn
    in_turn = [c for c in captions if start <= c.speech_end_at <= end + 1.0]
    return min(in_turn, key=lambda c: c.speech_end_at, default=None)


def _measure_live(
    result: CallResult,
    speaker: Participant,
    audience: list[Participant],
    turns: list[tuple[float, float]],
    onsets: list[float],
) -> None:
    """Live captions: each turn's first translated words after its onset, the share of words
    shown in partials that changed, and each source word's lag on the speaker's own screen."""
    finals = [c for _, c in speaker.finals("en")]
    for turn, onset in zip(turns, onsets, strict=True):
        first = _first_of_turn(finals, turn)
        if first is None:
            continue
        for listener in audience:
            shown_at = first_words_at(listener.received, first.utterance_id)
            if shown_at is not None:
                result.first_words.append(round(shown_at - onset, 3))
    for listener in audience:
        counted = revisions(listener.received)
        result.revised.shown += counted.shown
        result.revised.changed += counted.changed
    voiced = {
        c.utterance_id: max(0.1, c.speech_end_s - c.speech_start_s - SEGMENT_PADS_S) for c in finals
    }
    result.word_lags = source_word_lags(speaker.received, voiced)


def _dubs_heard(listener: Participant) -> dict[str, float]:
    """When each utterance's dub was first heard, by utterance id."""
    loud = listener.heard.loud()
    return {u: dub_heard_at(at, loud) for u, at in listener.dub_starts().items()}


async def bench_call(
    settings: Settings, models: Models, clips: list[Clip], step: Step, crowd: int = 20
) -> dict[str, Any]:
    """Latency in a 3-person room; then the same speech to 1+2 and 1+`crowd` listeners."""
    use_loopback_candidates(True)
    english = [c for c in clips if c.language == "en"]
    if not english:
        raise DragomanError("bench call: the manifest lists no English clip to say")
    # A benchmark's private loopback gateway: open rooms (no tokens to mint).
    smooth_settings = settings.model_copy(update={"open_rooms": True, "playout_mode": "smooth"})
    async with local_gateway(smooth_settings, models) as url:
        smooth = await run_call(url, "smooth", english, ["pt", "es"], video=False, step=step)
    smooth_delay = _playout_delay("smooth")
    async with local_gateway(settings.model_copy(update={"open_rooms": True}), models) as url:
        main = await run_call(url, "latency", english, ["pt", "es"], video=True, step=step)
        small = await run_call(url, "small", english[:2], ["pt", "es"], video=False, step=step)
        large = await run_call(
            url,
            "large",
            english[:2],
            [("pt", "es")[i % 2] for i in range(crowd)],
            video=False,
            step=step,
        )
    use_loopback_candidates(False)
    return {
        "caption_latency_p50_s": quantile(main.caption_latencies, 0.5),
        "caption_latency_p95_s": quantile(main.caption_latencies, 0.95),
        "audio_latency_p50_s": quantile(main.audio_latencies, 0.5),
        "audio_latency_p95_s": quantile(main.audio_latencies, 0.95),
        "dub_latency_p50_s": quantile(main.dub_latencies, 0.5),
        "dub_latency_p95_s": quantile(main.dub_latencies, 0.95),
        "first_partial_after_onset_p50_s": quantile(main.first_words, 0.5),
        "first_partial_after_onset_p95_s": quantile(main.first_words, 0.95),
        "source_word_lag_p50_s": quantile(main.word_lags, 0.5),
        "source_word_lag_p95_s": quantile(main.word_lags, 0.95),
        "partial_revision_rate": main.revised.rate,
        "partial_words_shown": main.revised.shown,
        "asr_partial_calls_per_speech_s": round(
            main.work["asr_partial_calls"] / max(main.turn_s, 1e-9), 3
        ),
        "lost_finals": main.lost_finals + small.lost_finals + large.lost_finals,
        "captions_measured": len(main.caption_latencies),
        "stalls": main.work["stalls"],
        "stalls_per_turn_minute_live": main.stalls_per_turn_minute,
        "stalls_per_turn_minute_smooth": smooth.stalls_per_turn_minute,
        "playout_delay_s_live": _playout_delay("live"),
        "playout_delay_s_smooth": smooth_delay,
        "audio_latency_p50_s_smooth": quantile(smooth.audio_latencies, 0.5),
        "audio_latency_p95_s_smooth": quantile(smooth.audio_latencies, 0.95),
        "dub_latency_p50_s_smooth": quantile(smooth.dub_latencies, 0.5),
        "dub_latency_p95_s_smooth": quantile(smooth.dub_latencies, 0.95),
        "work_1_plus_2": small.work,
        "work_1_plus_crowd": large.work,
        "crowd": crowd,
        "audio_frames_per_s_1_plus_2": round(
            small.work["audio_frames_encoded"] / small.duration_s, 1
        ),
        "audio_frames_per_s_1_plus_crowd": round(
            large.work["audio_frames_encoded"] / large.duration_s, 1
        ),
        "listener_packet_rate_min": round(min(large.packet_rates + small.packet_rates), 1),
        "listener_packet_rate_median": round(statistics.median(large.packet_rates), 1),
    }
