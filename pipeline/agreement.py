"""LocalAgreement-2: which words of a growing segment's transcript are settled.

A segment still being spoken is transcribed again and again as it grows. A word is committed
once two consecutive hypotheses agree on it and on every word before it; committed words never
change (the next decode starts from them as its prefix), the rest is the unstable tail. Words
are compared without case and punctuation, so "country," and "country" agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_EDGE_PUNCTUATION = re.compile(r"^\W+|\W+$")


def words(text: str) -> list[str]:
    return text.split()


def plain_word(word: str) -> str:
    """A word as readings compare it: lower case, no punctuation at its edges."""
    return _EDGE_PUNCTUATION.sub("", word).lower()


def _same(first: str, second: str) -> bool:
    return plain_word(first) == plain_word(second)


def _common_prefix(first: list[str], second: list[str]) -> int:
    count = 0
    for one, other in zip(first, second, strict=False):
        if not _same(one, other):
            break
        count += 1
    return count


@dataclass(frozen=True)
class Agreement:
    """The committed words, and the unstable ones after them in the latest hypothesis."""

    committed: str
    unstable: str


def agree(committed: str, previous: str, hypothesis: str) -> Agreement:
    """Commit what `previous` and `hypothesis` (the last two hypotheses) agree on after
    `committed`. A hypothesis that contradicts the committed words commits nothing new."""
    settled, before, latest = words(committed), words(previous), words(hypothesis)
    known = len(settled)
    if _common_prefix(settled, latest) < known:
        return Agreement(committed, " ".join(latest[known:]))
    agreed = known + _common_prefix(before[known:], latest[known:])
    if _common_prefix(settled, before) < known:  # `previous` was made before the last commit
        agreed = known
    return Agreement(" ".join([*settled, *latest[known:agreed]]), " ".join(latest[agreed:]))
