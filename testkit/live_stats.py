"""Live-caption figures from what a participant received: when words first showed, how often
shown words changed, and how long each spoken word took to appear."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pipeline.agreement import plain_word
from pipeline.events import CaptionFinal, CaptionPartial, RoomEvent

Arrival = tuple[float, RoomEvent]  # (when it arrived, the event)


def _shown_words(event: CaptionPartial | CaptionFinal, source_view: bool) -> list[str]:
    """What a caption puts on screen: translated text, or (in the speaker's own language) the
    source text, committed and unstable."""
    if isinstance(event, CaptionFinal):
        return (event.source_text if source_view else event.target_text).split()
    if source_view:
        return f"{event.committed_text} {event.unstable_text}".split()
    return event.target_text.split()


def first_words_at(arrivals: Iterable[Arrival], utterance_id: str) -> float | None:
    """When the utterance's first translated words reached the screen: a partial's or the
    final's, whichever came first."""
    for at, event in sorted(arrivals, key=lambda pair: pair[0]):
        if not isinstance(event, CaptionPartial | CaptionFinal):
            continue
        if event.utterance_id == utterance_id and event.target_text.strip():
            return at
    return None


@dataclass
class RevisionCount:
    shown: int = 0
    changed: int = 0

    @property
    def rate(self) -> float | None:
        return round(self.changed / self.shown, 3) if self.shown else None


def revisions(arrivals: Iterable[Arrival], source_view: bool = False) -> RevisionCount:
    """Words shown in partials that the final then changed: each (utterance, position, word)
    counts once; a word is changed when the final has another word at its place."""
    events = [event for _, event in arrivals]
    finals = {e.utterance_id: e for e in events if isinstance(e, CaptionFinal)}
    count = RevisionCount()
    seen: set[tuple[str, int, str]] = set()
    for event in events:
        final = finals.get(event.utterance_id) if isinstance(event, CaptionPartial) else None
        if final is None or not isinstance(event, CaptionPartial):
            continue
        settled = [plain_word(w) for w in _shown_words(final, source_view)]
        for position, word in enumerate(plain_word(w) for w in _shown_words(event, source_view)):
            if (event.utterance_id, position, word) in seen:
                continue
            seen.add((event.utterance_id, position, word))
            count.shown += 1
            count.changed += position >= len(settled) or settled[position] != word
    return count


def source_word_lags(arrivals: Iterable[Arrival], voiced_s: dict[str, float]) -> list[float]:
    """For each word of each final (the speaker's own language), the time from its end until a
    caption first showed it at its place. Word ends are spread evenly over the utterance's
    voiced speech (`voiced_s`, by utterance), which ended at the final's speech_end_at."""
    ordered = sorted(arrivals, key=lambda pair: pair[0])
    lags: list[float] = []
    for _, final in ordered:
        if not isinstance(final, CaptionFinal) or final.utterance_id not in voiced_s:
            continue
        words = [plain_word(w) for w in final.source_text.split()]
        spoken_s = voiced_s[final.utterance_id]
        for index, word in enumerate(words):
            ends_at = final.speech_end_at - spoken_s * (1 - (index + 1) / len(words))
            shown = _first_showing(ordered, final.utterance_id, index, word)
            if shown is not None:
                lags.append(round(shown - ends_at, 3))
    return lags


def _first_showing(
    ordered: list[Arrival], utterance_id: str, index: int, word: str
) -> float | None:
    for at, event in ordered:
        if isinstance(event, CaptionPartial | CaptionFinal) and event.utterance_id == utterance_id:
            shown = [plain_word(w) for w in _shown_words(event, source_view=True)]
            if index < len(shown) and shown[index] == word:
                return at
    return None
