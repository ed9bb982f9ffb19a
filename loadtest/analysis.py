"""From what participants saw and what the server counted, to the figures of one run."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from loadtest.metrics import Snapshot, delta
from pipeline.events import (
    PIPELINE_EVENT,
    CaptionFinal,
    DubStarted,
    FloorChanged,
    RoomEvent,
    UtteranceFailed,
)
from testkit.stats import dub_heard_at, quantile

TERMINAL = (CaptionFinal, UtteranceFailed)


@dataclass
class RunFigures:
    mode: str
    rooms: int
    participants: int
    spoken_s: float
    utterances: int
    finals_expected: int
    finals_received: int
    lost: int
    failed: int
    caption_latency_p50_s: float | None
    caption_latency_p95_s: float | None
    # A caption's latency is its speech's wait for the floor plus the pipeline's latency after.
    pipeline_caption_latency_p50_s: float | None
    pipeline_caption_latency_p95_s: float | None
    floor_wait_p50_s: float | None
    floor_wait_p95_s: float | None
    audio_latency_p50_s: float | None
    audio_latency_p95_s: float | None
    stalls: float
    cpu_s: float
    cost_per_speech_s: float
    asr_calls_per_speech_s: float
    pipeline_calls_per_speech_s: float
    stage_tau: dict[str, float]
    rss_mb_max: float
    packets_per_listener_s_min: float
    audio_packets_dropped: float  # by the gateway, for a listener whose sender fell behind
    audio_frames_skipped: float  # by a gateway clock that woke over a second late
    rss_per_participant_mb: float | None = None
    caption_latencies: list[float] = field(default_factory=list)
    rss_series: list[tuple[float, float]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


Arrival = tuple[float, RoomEvent]
FloorChange = tuple[float, str | None]  # (emitted_at, holder), both on the server's clock


@dataclass(frozen=True)
class CaptionLatency:
    total_s: float
    floor_wait_s: float | None  # None: the speaker's grant was not seen, so no split

    @property
    def pipeline_s(self) -> float | None:
        return None if self.floor_wait_s is None else self.total_s - self.floor_wait_s


def arrivals(report: dict[str, Any]) -> list[Arrival]:
    """A participant's terminal and drop events, typed, with their arrival times."""
    return [(e["arrival"], PIPELINE_EVENT.validate_python(e["event"])) for e in report["events"]]


def _utterances(reports: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Per room: every utterance anyone got a terminal event for → its speaker."""
    found: dict[str, dict[str, str]] = defaultdict(dict)
    for report in reports:
        for _, event in arrivals(report):
            if isinstance(event, TERMINAL):
                found[report["room"]][event.utterance_id] = event.utterance_id.split("/")[1]
    return found


def _expected(report: dict[str, Any], utterances: dict[str, str], mode: str) -> set[str]:
    """Utterances this participant must get a terminal event for (its own too, in turn-taking)."""
    return {
        u for u, speaker in utterances.items() if mode == "turn_taking" or speaker != report["id"]
    }


def floor_wait(speaker: str, speech_end_at: float, changes: Sequence[FloorChange]) -> float | None:
    """How long speech that ended at `speech_end_at` waited for its speaker to hold the floor:
    0 if they held it then, else until the first later change that gave it to them. `changes`
    are the floor changes seen before the speech's caption (the grant that released held speech
    is sent before that speech's caption); None when none of them gave the speaker the floor."""
    ordered = sorted(changes, key=lambda change: change[0])
    holder_then = next((h for at, h in reversed(ordered) if at <= speech_end_at), None)
    if holder_then == speaker:
        return 0.0
    granted_at = next((at for at, h in ordered if at > speech_end_at and h == speaker), None)
    return None if granted_at is None else granted_at - speech_end_at


def _caption_latencies(
    report: dict[str, Any], mode: str
) -> list[tuple[CaptionFinal, CaptionLatency]]:
    """Each caption of someone else's speech, with its latency. Only turn-taking holds speech
    for the floor; all-pairs translates it at once, whoever holds the floor."""
    found = []
    changes: list[FloorChange] = []
    for at, e in arrivals(report):
        if isinstance(e, FloorChanged):
            changes.append((e.emitted_at, e.holder))
        elif (
            isinstance(e, CaptionFinal)
            and e.speech_end_at
            and e.utterance_id.split("/")[1] != report["id"]
        ):
            waited = (
                floor_wait(e.speaker, e.speech_end_at, changes) if mode == "turn_taking" else 0.0
            )
            found.append((e, CaptionLatency(at - e.speech_end_at, waited)))
    return found


def _latencies(report: dict[str, Any], mode: str) -> tuple[list[CaptionLatency], list[float]]:
    captions = _caption_latencies(report, mode)
    # Translated speech only (same-language listeners hear it live), from each dub's own start.
    started = {
        e.utterance_id: at
        for at, e in arrivals(report)
        if isinstance(e, DubStarted) and e.target_language == report["language"]
    }
    audio = [
        dub_heard_at(started[e.utterance_id], report["onsets"]) - e.speech_end_at
        for e, _ in captions
        if e.utterance_id in started
    ]
    return [latency for _, latency in captions], audio


def analyse(
    mode: str,
    rooms: int,
    participants: int,
    reports: list[dict[str, Any]],
    before: Snapshot,
    after: Snapshot,
    series: list[tuple[float, float, float]],
    duration_s: float,
) -> RunFigures:
    utterances = _utterances(reports)
    expected = received = failed = 0
    caption_latencies: list[CaptionLatency] = []
    audio_latencies: list[float] = []
    for report in reports:
        wanted = _expected(report, utterances[report["room"]], mode)
        events = [event for _, event in arrivals(report)]
        got = {e.utterance_id for e in events if isinstance(e, TERMINAL)}
        expected += len(wanted)
        received += len(wanted & got)
        failed += sum(isinstance(e, UtteranceFailed) for e in events)
        caption, audio = _latencies(report, mode)
        caption_latencies += caption
        audio_latencies += audio
    spoken = sum(end - start for r in reports for start, end, _ in r["spoken"] if end)
    stage = {
        s: delta(after, before, "dragoman_stage_seconds_sum", stage=s) for s in ("asr", "mt", "tts")
    }
    calls = {
        s: delta(after, before, "dragoman_stage_seconds_count", stage=s)
        for s in ("asr", "mt", "tts")
    }
    cpu = delta(after, before, "process_cpu_seconds_total")
    per_speech = max(spoken, 1e-9)
    totals = [c.total_s for c in caption_latencies]
    waits = [c.floor_wait_s for c in caption_latencies if c.floor_wait_s is not None]
    pipelines = [c.pipeline_s for c in caption_latencies if c.pipeline_s is not None]
    return RunFigures(
        mode=mode,
        rooms=rooms,
        participants=participants,
        spoken_s=round(spoken, 2),
        utterances=sum(len(u) for u in utterances.values()),
        finals_expected=expected,
        finals_received=received,
        lost=expected - received,
        failed=failed,
        caption_latency_p50_s=quantile(totals, 0.5),
        caption_latency_p95_s=quantile(totals, 0.95),
        pipeline_caption_latency_p50_s=quantile(pipelines, 0.5),
        pipeline_caption_latency_p95_s=quantile(pipelines, 0.95),
        floor_wait_p50_s=quantile(waits, 0.5),
        floor_wait_p95_s=quantile(waits, 0.95),
        audio_latency_p50_s=quantile(audio_latencies, 0.5),
        audio_latency_p95_s=quantile(audio_latencies, 0.95),
        stalls=delta(after, before, "dragoman_playout_stalls_total"),
        cpu_s=round(cpu, 2),
        cost_per_speech_s=round(cpu / per_speech, 3),
        asr_calls_per_speech_s=round(calls["asr"] / per_speech, 3),
        pipeline_calls_per_speech_s=round(sum(calls.values()) / per_speech, 3),
        stage_tau={s: round(v / per_speech, 3) for s, v in stage.items()},
        rss_mb_max=round(max((rss for _, rss, _ in series), default=0.0), 1),
        packets_per_listener_s_min=round(
            min((r["packets"] / max(r["listened_s"], 1e-9) for r in reports), default=0.0), 1
        ),
        audio_packets_dropped=delta(
            after, before, "dragoman_listener_packets_dropped_total", kind="audio"
        ),
        audio_frames_skipped=delta(after, before, "dragoman_audio_frames_skipped_total"),
        caption_latencies=[round(v, 3) for v in totals],
        rss_series=[(round(t, 1), round(rss, 1)) for t, rss, _ in series],
    )
