"""The load tester's arithmetic: schedules, SLOs, and lost finals counted from typed events."""

from __future__ import annotations

import itertools

import pytest

from loadtest.analysis import analyse
from loadtest.runner import LoadTestError, check_slo, parse_slo
from loadtest.schedule import conversation, room_languages
from loadtest.speech import EncodedClip
from pipeline.events import CaptionFinal, DubStarted, UtteranceFailed
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
