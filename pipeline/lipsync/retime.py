"""Retiming a segment's frames to its speech's length.

The output always starts on the first source frame and ends on the last, moving monotonically in
between, so consecutive segments join without a jump. A clip much shorter than its speech would
crawl in slow motion; it instead plays forward, backward, forward … (an odd number of legs, so it
still ends on the last frame), each leg at close to normal speed.
"""

from __future__ import annotations

import numpy as np

MAX_SLOWDOWN = 2.0  # slower than this: ping-pong instead


def legs(sources: int, outputs: int, max_slowdown: float = MAX_SLOWDOWN) -> int:
    """How many times the clip is traversed: 1, or an odd number for ping-pong."""
    if sources < 2 or outputs < 2:
        return 1
    slowdown = (outputs - 1) / (sources - 1)
    if slowdown <= max_slowdown:
        return 1
    odd = int(slowdown) if int(slowdown) % 2 else int(slowdown) - 1
    return max(1, odd)


def source_indices(sources: int, outputs: int, max_slowdown: float = MAX_SLOWDOWN) -> list[int]:
    """For each output frame, the source frame it shows."""
    if sources < 1 or outputs < 1:
        return []
    if sources == 1:
        return [0] * outputs
    if outputs == 1:
        return [sources - 1]
    last = sources - 1
    travelled = np.linspace(0.0, legs(sources, outputs, max_slowdown) * last, outputs)
    phase = np.mod(travelled, 2 * last)
    position = np.where(phase <= last, phase, 2 * last - phase)
    # Exact ends: the last output frame is the last source frame, whatever the rounding.
    indices = np.rint(position).astype(int).tolist()
    indices[-1] = last
    return [int(i) for i in indices]
