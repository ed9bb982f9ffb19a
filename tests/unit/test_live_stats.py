"""Live-caption figures of bench call, on hand-made arrivals."""

from __future__ import annotations

from pipeline.asr.base import Transcript
from pipeline.asr.whisper import continuing, without_echo
from pipeline.events import CaptionPartial, RoomEvent
from testkit.fakes import fake_caption
from testkit.live_stats import first_words_at, revisions, source_word_lags

UID = "room/ana/0"


def partial(revision: int, committed: str, unstable: str, translated: str) -> CaptionPartial:
    return CaptionPartial(
        utterance_id=UID,
        revision=revision,
        speaker="ana",
        source_language="en",
        committed_text=committed,
        unstable_text=unstable,
        target_language="pt",
        target_text=translated,
    )


def final(source: str, target: str, speech_end_at: float) -> RoomEvent:
    caption = fake_caption(UID, "pt", target, speech_end_at=speech_end_at)
    return caption.model_copy(update={"source_text": source})


def test_first_words_are_the_first_translated_ones() -> None:
    arrivals = [
        (1.0, partial(0, "", "ask", "")),  # nothing translated yet
        (1.5, partial(1, "ask not", "what", "não pergunte")),
        (3.0, final("ask not what", "não pergunte o que", 2.5)),
    ]
    assert first_words_at(arrivals, UID) == 1.5
    assert first_words_at(arrivals[2:], UID) == 3.0
    assert first_words_at(arrivals, "room/ana/9") is None


def test_a_word_counts_as_revised_when_the_final_has_another_word_at_its_place() -> None:
    arrivals = [
        (1.0, partial(0, "ask", "now", "pergunte")),
        (1.5, partial(1, "ask not", "what", "pergunte não")),
        (3.0, final("ask not what", "não pergunte o que", 2.5)),
    ]
    translated = revisions(arrivals)
    assert (translated.shown, translated.changed) == (2, 2)  # "pergunte", "não" moved
    source = revisions(arrivals, source_view=True)
    # shown: ask, now, not, what (ask once); "now" was changed
    assert (source.shown, source.changed) == (4, 1)
    assert source.rate == 0.25


def test_a_source_words_lag_runs_from_its_end_to_its_first_showing() -> None:
    arrivals = [
        (10.6, partial(0, "", "ask not", "")),
        (11.2, final("ask not what", "não pergunte o que", 11.0)),
    ]
    # 1.5 s of speech ending at 11.0: the words end at 10.0, 10.5 and 11.0.
    assert source_word_lags(arrivals, {UID: 1.5}) == [0.6, 0.1, 0.2]


def test_a_short_windows_echo_past_its_speech_is_cut() -> None:
    assert without_echo("And so my fellow Americans. And so my Fellow Americans.") == (
        "And so my fellow Americans."
    )
    assert without_echo("we ask not what your country") == "we ask not what your country"
    assert without_echo("the long road the long road ahead") == "the long road"


def test_a_transcript_continues_the_words_it_was_given() -> None:
    said = Transcript("Ask not what your country", "en")
    assert continuing("ask not", said) is said
    assert continuing("Ask not what your", Transcript("Ask not what your, country", "en")).text == (
        "Ask not what your, country"
    )  # Whisper's punctuation after the prefix is not a new start
    empty = continuing("ask not", Transcript("", "en", "no_speech"))
    assert (empty.text, empty.dropped_reason) == ("ask not", None)
