"""The load tester's arithmetic: schedules, SLOs, lost finals counted from typed events, the
split of caption latency into floor wait and pipeline latency, and several processes' metrics."""

from __future__ import annotations

import itertools

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from loadtest.analysis import analyse, floor_wait
from loadtest.metrics import combined, parse, total
from loadtest.report import summary
from loadtest.runner import LoadTestError, check_slo, parse_slo
from loadtest.schedule import conversation, room_languages
from loadtest.speech import EncodedClip
from loadtest.worker import awaits_more
from pipeline.events import CaptionFinal, CaptionPartial, DubStarted, FloorChanged, UtteranceFailed
from testkit.fakes import fake_caption


def clips() -> dict[str, list[EncodedClip]]:
    return {
        "en": [EncodedClip("a", "en", 3.0, ()), EncodedClip("b", "en", 5.0, ())],
        "pt": [EncodedClip("c", "pt", 4.0, ())],
    }


def test_schedule_is_deterministic_bounded_and_sometimes_contested() -> None:
    languages = room_languages(5, ["en", "pt", "es"])
    assert languages == ["en", "pt", "es", "en", "pt"]
    turns = conversation(languages, clips(), duration_s=120, seed=3)
    assert turns == conversation(languages, clips(), duration_s=120, seed=3)
    assert all(t.at_s + t.clip.duration_s <= 125 for t in turns)
    assert all(languages[t.speaker] == t.clip.language for t in turns)
    assert 2 not in {t.speaker for t in turns}  # no Spanish clips: that participant only listens
    starts = sorted(t.at_s for t in turns)
    assert any(b - a < 0.5 for a, b in itertools.pairwise(starts))  # contested floors happen
    assert {t.speaker for t in conversation(languages, clips(), 120, 3, speakers=2)} <= {0, 1}


def test_slo_parsing_and_checking() -> None:
    assert parse_slo("caption_p95=2.0, lost=0") == {"caption_p95": 2.0, "lost": 0.0}
    with pytest.raises(LoadTestError, match="needs a number"):
        parse_slo("lost=none")
    figures = analyse("turn_taking", 1, 2, [], {}, {}, [], 10.0)
    verdict = check_slo([figures], {"lost": 0, "caption_p95": 2.0})
    assert not verdict["passed"] and "caption_p95=None" in verdict["failures"][0]


def test_lost_finals_are_counted_by_utterance_and_listener() -> None:
    def event(kind: str, utterance: str, at: float = 10.0) -> dict[str, object]:
        typed: CaptionFinal | UtteranceFailed | DubStarted
        if kind == "caption.final":
            typed = fake_caption(utterance, "pt", speech_end_at=9.0)
        elif kind == "dub.started":
            typed = DubStarted(utterance_id=utterance, target_language="pt", speech_end_at=9.0)
        else:
            typed = UtteranceFailed(
                utterance_id=utterance, target_language="pt", stage="mt", reason="broken"
            )
        return {"arrival": at, "event": typed.model_dump(mode="json")}

    speaker = {
        "room": "r",
        "id": "s",
        "language": "en",
        "spoken": [(0.0, 3.0, "a")],
        "onsets": [],
        "packets": 100,
        "listened_s": 2.0,
        "events": [event("caption.final", "r/s/0"), event("caption.final", "r/s/1")],
    }
    listener = {
        **speaker,
        "id": "l",
        "language": "pt",
        "spoken": [],
        "onsets": [9.8],
        "events": [
            event("caption.final", "r/s/0", 10.2),
            event("dub.started", "r/s/0", 9.75),  # heard at the onset just after
            event("utterance.failed", "r/s/1"),
        ],
    }
    late = {  # the onset at 9.8 is someone else's dub: this one started at 12.0, back to back
        **listener,
        "id": "m",
        "events": [event("caption.final", "r/s/1", 11.0), event("dub.started", "r/s/1", 12.0)],
    }
    figures = analyse("turn_taking", 1, 3, [speaker, listener, late], {}, {}, [], 10.0)
    assert (figures.finals_expected, figures.finals_received, figures.lost, figures.failed) == (
        6,
        5,
        1,
        1,
    )
    assert figures.caption_latency_p50_s == 1.2 and figures.audio_latency_p50_s == 0.8
    assert figures.audio_latency_p95_s == 3.0


def test_floor_wait_is_zero_for_the_holder_and_until_the_grant_for_the_queued() -> None:
    whole_time = [(0.0, "ana"), (4.0, "ana")]  # someone joined the queue, ana kept the floor
    assert floor_wait("ana", 5.0, whole_time) == 0.0
    queued_then_granted = [(0.0, "bob"), (2.0, "bob"), (7.5, "ana"), (9.0, None)]
    assert floor_wait("ana", 5.0, queued_then_granted) == 2.5
    granted_before_speech_end = [(0.0, "bob"), (4.0, "ana")]
    assert floor_wait("ana", 5.0, granted_before_speech_end) == 0.0
    lost_then_won_back = [(0.0, "ana"), (3.0, "bob"), (6.0, "ana")]
    assert floor_wait("ana", 4.0, lost_then_won_back) == 2.0
    assert floor_wait("ana", 5.0, list(reversed(queued_then_granted))) == 2.5  # by time, not order
    assert floor_wait("ana", 5.0, [(0.0, "bob")]) is None  # its grant never seen: no split
    assert floor_wait("ana", 5.0, []) is None


def floor(holder: str | None, at: float) -> dict[str, object]:
    changed = FloorChanged(holder=holder, queue=[], emitted_at=at)
    return {"arrival": at, "event": changed.model_dump(mode="json")}


def caption(utterance: str, speech_end_at: float, arrival: float) -> dict[str, object]:
    final = fake_caption(utterance, "pt", speech_end_at=speech_end_at)
    return {"arrival": arrival, "event": final.model_dump(mode="json")}


def listener_report(events: list[dict[str, object]]) -> dict[str, object]:
    return {
        "room": "r",
        "id": "l",
        "language": "pt",
        "spoken": [],
        "onsets": [],
        "packets": 100,
        "listened_s": 2.0,
        "events": events,
    }


def test_caption_latency_splits_into_floor_wait_and_pipeline_latency() -> None:
    events = [  # in arrival order
        floor("a", 0.0),
        caption("r/a/0", speech_end_at=3.0, arrival=4.0),  # a held the floor: 1 s of pipeline
        floor("b", 8.5),  # a grant is sent before the held speech it releases
        caption("r/b/0", speech_end_at=3.5, arrival=10.0),  # b queued until 8.5 s: 5 s of wait
        caption("r/a/1", speech_end_at=9.0, arrival=12.0),  # no grant to a seen yet: no split
        floor("a", 13.0),
    ]
    figures = analyse("turn_taking", 1, 3, [listener_report(events)], {}, {}, [], 10.0)
    assert (figures.caption_latency_p50_s, figures.caption_latency_p95_s) == (3.0, 6.5)
    assert (figures.floor_wait_p50_s, figures.floor_wait_p95_s) == (0.0, 5.0)
    assert (figures.pipeline_caption_latency_p50_s, figures.pipeline_caption_latency_p95_s) == (
        1.0,
        1.5,
    )
    headline = summary([figures], {}, {"passed": True})
    assert (headline["floor_wait_p95_s"], headline["pipeline_caption_latency_p95_s"]) == (5.0, 1.5)
    all_pairs = analyse("all_pairs", 1, 3, [listener_report(events)], {}, {}, [], 10.0)
    assert all_pairs.floor_wait_p95_s == 0.0  # nothing is held for the floor there
    assert all_pairs.pipeline_caption_latency_p95_s == all_pairs.caption_latency_p95_s == 6.5


def exposition(cpu_s: float, stage_s: dict[str, list[float]]) -> str:
    """One process's /metrics: its CPU and the stage calls it ran."""
    registry = CollectorRegistry()
    Counter("process_cpu_seconds", "CPU", registry=registry).inc(cpu_s)
    stages = Histogram("dragoman_stage_seconds", "stage", ["stage", "backend"], registry=registry)
    for stage, calls in stage_s.items():
        for seconds in calls:
            stages.labels(stage, "x").observe(seconds)
    return generate_latest(registry).decode()


def test_gateway_and_worker_scrapes_add_up_to_the_servers_figures() -> None:
    before = [parse(exposition(10.0, {})), parse(exposition(5.0, {})), parse(exposition(5.0, {}))]
    after = [
        parse(exposition(14.0, {})),  # the gateway (Redis bus): media only, no stages
        parse(exposition(9.0, {"asr": [1.0, 2.0]})),
        parse(exposition(8.0, {"asr": [1.0], "mt": [0.5], "tts": [1.5]})),
    ]
    start, end = combined(before), combined(after)
    assert total(end, "dragoman_stage_seconds_count", stage="asr") == 3
    assert total(end, "process_cpu_seconds_total") == 31.0
    speaker = {**listener_report([]), "id": "s", "spoken": [(0.0, 10.0, "a")]}
    figures = analyse("turn_taking", 1, 2, [speaker], start, end, [], 10.0)
    assert figures.cpu_s == 11.0 and figures.cost_per_speech_s == 1.1
    assert figures.stage_tau == {"asr": 0.4, "mt": 0.05, "tts": 0.15}
    assert figures.asr_calls_per_speech_s == 0.3 and figures.pipeline_calls_per_speech_s == 0.5
    gateway_only = analyse("turn_taking", 1, 2, [speaker], before[0], after[0], [], 10.0)
    assert gateway_only.stage_tau == {"asr": 0.0, "mt": 0.0, "tts": 0.0}  # what was reported


def test_the_drain_awaits_heard_of_utterances_and_held_speech() -> None:
    partial = CaptionPartial(
        utterance_id="r/ana/0",
        revision=1,
        speaker="ana",
        source_language="en",
        committed_text="Hello",
        unstable_text="there",
        target_language="pt",
        target_text="Olá",
    )
    holding = FloorChanged(holder="ana", queue=["bruno"], emitted_at=1.0)
    released = FloorChanged(holder="bruno", queue=[], emitted_at=2.0)
    assert not awaits_more([])
    assert awaits_more([partial])
    final = fake_caption("r/ana/0")
    dub = DubStarted(utterance_id="r/ana/0", target_language="pt", speech_end_at=1.0)
    assert not awaits_more([partial, final, dub])  # a dub after its caption is no new work
    assert awaits_more([partial, final, holding])  # bruno's speech waits for the floor
    assert not awaits_more([partial, final, holding, released])
    failed = UtteranceFailed(
        utterance_id="r/bruno/0", target_language="pt", stage="mt", reason="boom"
    )
    assert not awaits_more([released, failed])
