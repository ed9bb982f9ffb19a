"""What a voice is asked to say: text cut into clauses (speech starts with the first one), with
what no voice can say (emoji, control and private-use characters) left out."""

from __future__ import annotations

import re
import unicodedata

_CLAUSE = re.compile(r"([^,;:.!?…]+)([,;:.!?…]*)")
# Letters, digits, marks, punctuation and spaces are read; symbols other than these are not.
_SAYABLE_SYMBOLS = set("%&+=€$£@#°")


def sayable(text: str) -> str:
    """`text` without characters that no voice reads (emoji, pictographs, controls)."""
    kept = []
    for char in unicodedata.normalize("NFC", text):
        category = unicodedata.category(char)
        if category[0] in "LNMPZ" or char in _SAYABLE_SYMBOLS:
            kept.append(" " if category[0] == "Z" or char in "\t\n\r" else char)
        elif category == "Cc" and char in "\t\n\r":
            kept.append(" ")
    return re.sub(r"\s+", " ", "".join(kept)).strip()


MOST_WORDS = 24  # a run-on clause is cut at this many words (a cut mid-phrase costs clarity)


# A long first clause is cut before a word that opens a phrase (a subordinating conjunction, a
# relative, a preposition), between LEAD_IN_WORDS words, so that speech starts sooner; later
# clauses whole. Never before "and" (et, y, e, i, und) or "or": they join nouns as often as
# clauses ("eaux | et forêts" read back worse: French dubs 0.18 → 0.29 WER).
LEAD_IN_WORDS = (4, 9)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


PHRASE_OPENERS: dict[str, frozenset[str]] = {
    "en": _words(
        "but because which that who whom whose when where while if although with without"
        " for from in on at after before until since into"
    ),
    "es": _words(
        "pero porque que quien cuando donde mientras si aunque con sin para por desde en"
        " hasta entre sobre tras"
    ),
    "pt": _words(
        "mas porque que quem quando onde enquanto se embora com sem para por desde em no na"
        " nos nas até entre sobre após"
    ),
    "fr": _words(
        "mais parce que qui quand où lorsque pendant si avec sans pour par depuis dans en"
        " jusqu entre sur après avant"
    ),
    "it": _words(
        "ma perché che chi quando dove mentre se con senza per da in nel nella fino tra fra"
        " su dopo prima"
    ),
    "ca": _words(
        "però perquè que qui quan on mentre si amb sense per des en fins entre sobre després abans"
    ),
    "de": _words(
        "aber weil dass wenn wo während ob obwohl mit ohne für von in im bis zwischen auf nach vor"
    ),
}


def _lead_in(words: list[str], language: str | None) -> int:
    """Where the first clause is cut (0: not at all)."""
    openers = PHRASE_OPENERS.get(language or "", frozenset())
    shortest, longest = LEAD_IN_WORDS
    if len(words) <= longest:
        return 0
    return next((i for i in range(shortest, longest + 1) if words[i].lower() in openers), 0)


def clauses(text: str, language: str | None = None) -> list[tuple[str, str]]:
    """(words, the punctuation that ends them) for each clause of `text`. A clause of more than
    MOST_WORDS words is cut at word boundaries, and a long first one before a phrase of
    `language`; cutting every clause mid-phrase made the dubs harder to understand (French
    dubs read back at 0.23 WER instead of 0.18)."""
    pieces: list[tuple[str, str]] = []
    for words, marks in _CLAUSE.findall(sayable(text).replace("¿", " ").replace("¡", " ")):
        split = words.split()
        cut = 0 if pieces else _lead_in(split, language)
        if cut:
            pieces.append((" ".join(split[:cut]), ""))
            split = split[cut:]
        while split:
            head, split = split[:MOST_WORDS], split[MOST_WORDS:]
            pieces.append((" ".join(head), "" if split else marks.strip()))
    return pieces
