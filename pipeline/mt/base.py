"""The MT interface: translate(text, src, tgt), with the pairs a backend serves declared."""

from __future__ import annotations

from abc import ABC, abstractmethod

Pair = tuple[str, str]


class Translator(ABC):
    """A backend that translates text between the ISO 639-1 pairs it declares.

    `pairs` and `quality` are capabilities (what it can do, and how well: an estimated chrF
    in 0..1 per pair), so the route planner can choose between backends and pivots.
    """

    name: str = "translator"
    origin: str = ""

    def __init__(self, pairs: dict[Pair, float]) -> None:
        self._pairs = dict(pairs)

    @property
    def pairs(self) -> frozenset[Pair]:
        return frozenset(self._pairs)

    def quality(self, source: str, target: str) -> float:
        return self._pairs.get((source, target), 0.0)

    @abstractmethod
    def translate(self, text: str, source: str, target: str) -> str:
        """Translate `text` (one or more sentences) from `source` to `target`."""

    def close(self) -> None:  # noqa: B027 - backends without resources need nothing
        """Release processes and threads."""
