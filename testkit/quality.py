"""Accuracy measures used by tests and benchmarks: word error rate on normalised text."""

from __future__ import annotations

import re
import unicodedata

_EN_NUMBERS = {
    "0": "zero",
    "1": "one",
    "2": "two",
    "3": "three",
    "4": "four",
    "5": "five",
    "6": "six",
    "7": "seven",
    "8": "eight",
    "9": "nine",
    "10": "ten",
    "mr": "mister",
    "mrs": "missus",
}
_WORD = re.compile(r"[\w']+")


def normalize_text(text: str, language: str = "") -> list[str]:
    """Lower case, no punctuation, NFC; English digits and titles spelled out."""
    words = _WORD.findall(unicodedata.normalize("NFC", text.lower().replace("-", " ")))
    if language == "en":
        words = [_EN_NUMBERS.get(word, word) for word in words]
    return words


def _edit_distance(reference: list[str], hypothesis: list[str]) -> int:
    previous = list(range(len(hypothesis) + 1))
    for i, ref_word in enumerate(reference, start=1):
        current = [i]
        for j, hyp_word in enumerate(hypothesis, start=1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word))
            )
        previous = current
    return previous[-1]


def word_errors(reference: str, hypothesis: str, language: str = "") -> tuple[int, int]:
    """(edits, reference words) after normalisation, for corpus-level WER."""
    ref, hyp = normalize_text(reference, language), normalize_text(hypothesis, language)
    return _edit_distance(ref, hyp), len(ref)


def wer(reference: str, hypothesis: str, language: str = "") -> float:
    edits, words = word_errors(reference, hypothesis, language)
    return edits / max(words, 1)
