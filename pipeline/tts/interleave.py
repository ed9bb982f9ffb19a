"""Several languages' dubs of one segment, made a clause each in turn.

One language after another would keep the last language's listeners waiting for every other
language's whole dub; in turns, each language's first clause is out after one clause per
language, and while a clause plays the next ones of every language are made.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from pipeline.audio import Audio
from pipeline.metrics import STAGE_FAILURES, STAGE_SECONDS

LOG = logging.getLogger(__name__)


@dataclass
class Dubbing:
    """One language's dub in progress: its clauses to come, what it has said so far."""

    language: str
    clauses: Iterator[Audio]
    on_clause: Callable[[str, Audio], None] | None = None
    label: str = ""  # what is dubbed, for the log
    started: float = field(default_factory=time.perf_counter)
    spoken: list[Audio] = field(default_factory=list)
    busy_s: float = 0.0  # time spent making this language's clauses
    first_audio_s: float = 0.0  # from `started` to its first clause
    done: bool = False

    def step(self) -> None:
        """Make the next clause (and hand it on); done after the last, or when the voice fails
        (what it said so far is kept; the failure is counted for the tts stage)."""
        began = time.perf_counter()
        try:
            clause = next(self.clauses)
        except StopIteration:
            self._finish(began)
            return
        except Exception as exc:
            STAGE_FAILURES.labels("tts").inc()
            LOG.warning("tts failed for %s in %s: %s", self.label, self.language, exc)
            self._finish(began)
            return
        self.busy_s += time.perf_counter() - began
        if not self.spoken:
            self.first_audio_s = time.perf_counter() - self.started
        self.spoken.append(clause)
        if self.on_clause is not None:
            self.on_clause(self.language, clause)

    def _finish(self, began: float) -> None:
        self.busy_s += time.perf_counter() - began
        self.done = True
        STAGE_SECONDS.labels("tts", self.language).observe(self.busy_s)

    @property
    def speech(self) -> Audio | None:
        if not self.spoken:
            return None
        samples = np.concatenate([clause.samples for clause in self.spoken])
        return Audio(samples, self.spoken[0].sample_rate)


def speak_in_turns(dubbings: list[Dubbing]) -> None:
    """Blocking: a clause of each unfinished dub in turn, until all are done."""
    while pending := [dubbing for dubbing in dubbings if not dubbing.done]:
        for dubbing in pending:
            dubbing.step()
