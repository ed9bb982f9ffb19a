"""Route planning: the best chain of backends for a pair, direct or through pivot languages."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from pipeline.errors import UnsupportedPairError
from pipeline.mt.base import Pair, Translator

MAX_HOPS = 3


@dataclass(frozen=True)
class Hop:
    source: str
    target: str
    backend: Translator

    def describe(self) -> str:
        return f"{self.source}→{self.target} ({self.backend.name})"


@dataclass(frozen=True)
class Route:
    """A chain of hops; its score is the product of the hops' estimated quality."""

    hops: tuple[Hop, ...]

    @property
    def score(self) -> float:
        return math.prod(hop.backend.quality(hop.source, hop.target) for hop in self.hops)

    @property
    def pivots(self) -> list[str]:
        return [hop.target for hop in self.hops[:-1]]

    def describe(self) -> str:
        return ", ".join(hop.describe() for hop in self.hops)


class RoutePlanner:
    """Finds, per pair, the route with the highest estimated quality over all backends."""

    def __init__(self, backends: list[Translator], max_hops: int = MAX_HOPS) -> None:
        self._backends = backends
        self._max_hops = max_hops
        self._edges = self._best_edges(backends)
        self._cache: dict[Pair, Route | None] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _best_edges(backends: list[Translator]) -> dict[Pair, Hop]:
        edges: dict[Pair, Hop] = {}
        for backend in backends:
            for source, target in backend.pairs:
                known = edges.get((source, target))
                if known is None or backend.quality(source, target) > known.backend.quality(
                    source, target
                ):
                    edges[(source, target)] = Hop(source, target, backend)
        return edges

    @property
    def backends(self) -> list[Translator]:
        return list(self._backends)

    def languages(self) -> list[str]:
        return sorted({code for pair in self._edges for code in pair})

    def route(self, source: str, target: str) -> Route:
        """The best route, or UnsupportedPairError listing every pair that has one."""
        with self._lock:
            if (source, target) not in self._cache:
                self._cache[(source, target)] = self._search(source, target)
            found = self._cache[(source, target)]
        if found is None:
            pairs = ", ".join(f"{s}→{t}" for s, t in self.available_pairs())
            raise UnsupportedPairError(
                f"no translation route {source}→{target}; available: {pairs}"
            )
        return found

    def has_route(self, source: str, target: str) -> bool:
        try:
            self.route(source, target)
        except UnsupportedPairError:
            return False
        return True

    def available_pairs(self) -> list[Pair]:
        languages = self.languages()
        return [
            (s, t)
            for s in languages
            for t in languages
            if s != t and self._search(s, t) is not None
        ]

    def _search(self, source: str, target: str) -> Route | None:
        best: Route | None = None
        stack: list[tuple[str, tuple[Hop, ...]]] = [(source, ())]
        while stack:
            here, hops = stack.pop()
            for (edge_source, edge_target), hop in self._edges.items():
                if edge_source != here or any(h.source == edge_target for h in hops):
                    continue
                route = Route((*hops, hop))
                if edge_target == target:
                    if best is None or route.score > best.score:
                        best = route
                elif len(route.hops) < self._max_hops and edge_target != source:
                    stack.append((edge_target, route.hops))
        return best


class RoutedTranslator(Translator):
    """Translates any reachable pair by following the planner's best route."""

    name = "routed"

    def __init__(self, planner: RoutePlanner) -> None:
        self.planner = planner
        languages = planner.languages()
        pairs = {
            (s, t): planner.route(s, t).score
            for s in languages
            for t in languages
            if s != t and planner.has_route(s, t)
        }
        super().__init__(pairs)

    def translate(self, text: str, source: str, target: str) -> str:
        for hop in self.planner.route(source, target).hops:
            text = hop.backend.translate(text, hop.source, hop.target)
        return text

    def close(self) -> None:
        for backend in self.planner.backends:
            backend.close()
