"""Visemes: how far the mouth opens for each phoneme (IPA, as espeak-ng and Piper write them).

Openness is 0 (lips closed) … 1 (jaw wide open). Values are coarse, set by phonetic class
(bilabials closed, open vowels wide, rounded vowels narrower); coarticulation is left to the
smoothing in `pipeline.lipsync.drive`.
"""

from __future__ import annotations

from pipeline.lipsync.base import PhonemeTiming

PAUSE = 0.0

_CLASSES: dict[float, str] = {
    0.0: "pbmɱʙ",  # bilabials: lips shut
    0.15: "fvʋ",  # labiodentals: lower lip on the teeth
    0.2: "wʍɥ",  # rounded glides
    0.25: "tdnszɾʦʣʃʒçʝθðɹrlɬɮʂʐɕʑcɟɲʎ",  # tongue against teeth or ridge, jaw near closed
    0.35: "kgŋxɣqɢχʁhɦʔjɰʀʟɴ",  # back consonants: jaw a little open
    0.4: "iyɨʉɯuʊʏɪ",  # close vowels
    0.6: "eøɘɵɤoəɚɜɞʌɝ",  # mid vowels
    0.8: "ɛœɔɒ",  # open-mid vowels
    1.0: "aɶɑæɐ",  # open vowels
}
VISEMES: dict[str, float] = {
    symbol: openness for openness, symbols in _CLASSES.items() for symbol in symbols
}
# Pauses and punctuation as the engines write them; an empty name is espeak-ng's pause.
PAUSES = frozenset({"", "_", ",", ".", ";", ":", "!", "?", "^", "$", "…", "—", "-"})
# Marks that carry no mouth shape of their own (stress, length, tie, word gap).
_MARKS = "ˈˌːˑ̃͡‿ʰʲʷ'\" "


def openness(phoneme: str) -> float | None:
    """Mouth openness for one phoneme, or None for a mark without a shape (stress, a space).

    Multi-letter names (diphthongs, affricates, espeak-ng's 'aɪ', 'tʃ') take their first letter
    that the table knows; unknown letters fall back to a half-open 0.4.
    """
    if phoneme in PAUSES:
        return PAUSE
    letters = [c for c in phoneme if c not in _MARKS]
    if not letters:
        return None
    for letter in letters:
        if letter.lower() in VISEMES:
            return VISEMES[letter.lower()]
    return 0.4


def viseme_keys(phonemes: tuple[PhonemeTiming, ...]) -> list[tuple[float, float, float]]:
    """(start, end, openness) for every phoneme with a shape. A mark (Piper times stress marks
    and word gaps as symbols of their own) joins the phoneme after it; trailing marks the last."""
    keys: list[tuple[float, float, float]] = []
    pending: float | None = None
    for timing in phonemes:
        value = openness(timing.phoneme)
        if value is None:
            pending = timing.start_s if pending is None else pending
            continue
        keys.append((timing.start_s if pending is None else pending, timing.end_s, value))
        pending = None
    if pending is not None and keys:
        start, _, value = keys[-1]
        keys[-1] = (start, phonemes[-1].end_s, value)
    return keys
