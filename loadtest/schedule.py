"""A conversational schedule: talk spurts and pauses, sometimes several people at once."""

from __future__ import annotations

import random
from dataclasses import dataclass

from loadtest.speech import EncodedClip


@dataclass(frozen=True)
class Turn:
    at_s: float  # seconds after the room's conversation starts
    speaker: int  # index of the participant in the room
    clip: EncodedClip


def room_languages(participants: int, languages: list[str]) -> list[str]:
    """Languages assigned round-robin, so every language is present once there are enough people."""
    return [languages[i % len(languages)] for i in range(participants)]


def conversation(
    languages: list[str],
    clips: dict[str, list[EncodedClip]],
    duration_s: float,
    seed: int,
    overlap: float = 0.25,
    pause_s: tuple[float, float] = (1.0, 3.0),
    speakers: int | None = None,
) -> list[Turn]:
    """Turns for one room: one speaker at a time, with a pause after each, and with
    probability `overlap` a second speaker starting within half a second (a contested floor).
    `speakers` limits who talks to the first few participants (the rest only listen)."""
    chooser = random.Random(seed)
    talkers = languages[:speakers] if speakers else languages
    speakers_ = [i for i, language in enumerate(talkers) if clips.get(language)]
    turns: list[Turn] = []
    now = chooser.uniform(0.0, 1.0)
    while speakers_ and now < duration_s:
        speaker = chooser.choice(speakers_)
        clip = chooser.choice(clips[languages[speaker]])
        turns.append(Turn(now, speaker, clip))
        others = [s for s in speakers_ if s != speaker]
        if others and chooser.random() < overlap:
            rival = chooser.choice(others)
            turns.append(
                Turn(
                    now + chooser.uniform(0.0, 0.5), rival, chooser.choice(clips[languages[rival]])
                )
            )
        now += clip.duration_s + chooser.uniform(*pause_s)
    return [t for t in turns if t.at_s + t.clip.duration_s <= duration_s + 5.0]
