"""Figures over measured samples, one definition for the load tester and every benchmark."""

from __future__ import annotations

from collections.abc import Sequence


def quantile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank `q`-quantile (0 ≤ q ≤ 1) of `values`, rounded to 1 ms; None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 3)
