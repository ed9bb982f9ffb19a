"""The turn-taking floor of one room: one holder, a visible queue, release after silence.

Pure logic with an injected clock, so it is tested under virtual time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class FloorState:
    holder: str | None
    queue: tuple[str, ...]


@dataclass
class Floor:
    """Who may speak. Speech from anyone else waits in order until the floor passes to them."""

    release_after_s: float
    clock: Callable[[], float]
    holder: str | None = None
    queue: list[str] = field(default_factory=list)
    _last_voice: dict[str, float] = field(default_factory=dict)
    _explicit: set[str] = field(default_factory=set)

    @property
    def state(self) -> FloorState:
        return FloorState(self.holder, tuple(self.queue))

    def voice(self, participant: str) -> bool:
        """The participant is speaking now. Returns True when the floor state changed."""
        self._last_voice[participant] = self.clock()
        return self._claim(participant)

    def request(self, participant: str) -> bool:
        """An explicit request: hold the floor until released (or silent), or wait in the queue."""
        self._explicit.add(participant)
        self._last_voice[participant] = self.clock()
        return self._claim(participant)

    def release(self, participant: str) -> bool:
        """Give up the floor, or leave the queue."""
        self._explicit.discard(participant)
        if participant == self.holder:
            self._pass_on()
            return True
        if participant in self.queue:
            self.queue.remove(participant)
            return True
        return False

    def remove(self, participant: str) -> bool:
        """The participant left the room."""
        self._last_voice.pop(participant, None)
        return self.release(participant)

    def move_to_back(self, participant: str) -> bool:
        """Behind everyone waiting; a holder gives the floor to the next in line first."""
        if participant == self.holder and self.queue:
            self._explicit.discard(participant)
            self._pass_on()
        elif participant in self.queue:
            self.queue.remove(participant)
        else:
            return False
        self.queue.append(participant)
        return True

    def tick(self) -> bool:
        """Pass the floor on when its holder has been silent long enough (explicit holds stay)."""
        if self.holder is None or self.holder in self._explicit:
            return False
        if self.clock() - self._last_voice.get(self.holder, 0.0) < self.release_after_s:
            return False
        self._pass_on()
        return True

    def _claim(self, participant: str) -> bool:
        if self.holder is None:
            self.holder = participant
            return True
        if participant != self.holder and participant not in self.queue:
            self.queue.append(participant)
            return True
        return False

    def _pass_on(self) -> None:
        self.holder = self.queue.pop(0) if self.queue else None
        if self.holder is not None:
            # The new holder's wait does not count as silence.
            self._last_voice[self.holder] = self.clock()
