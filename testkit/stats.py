"""Figures over measured samples, one definition for the load tester and every benchmark."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

DUB_EVENT_LEAD_S = 0.1  # a dub's first packets may arrive just before its dub.started event
DUB_SOUND_WINDOW_S = 1.0  # its first sound is within this of the event (else: the event's time)


def quantile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank `q`-quantile (0 ≤ q ≤ 1) of `values`, rounded to 1 ms; None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 3)


def dub_heard_at(announced_at: float, sounds: Sequence[float]) -> float:
    """When a dub whose dub.started event arrived at `announced_at` was first heard: the first
    of the sorted `sounds` (times of loud frames or onsets) around then, else the event's time
    (sound and event leave the gateway together; a dub right after another has no onset)."""
    index = bisect_left(sounds, announced_at - DUB_EVENT_LEAD_S)
    if index < len(sounds) and sounds[index] - announced_at <= DUB_SOUND_WINDOW_S:
        return sounds[index]
    return announced_at
