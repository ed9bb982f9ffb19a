"""Language codes: normalisation to ISO 639-1 and the names people see."""

from __future__ import annotations

from pipeline.errors import UnsupportedLanguageError

LANGUAGE_NAMES: dict[str, str] = {
    "en": "English",
    "es": "Spanish",
    "pt": "Portuguese",
    "fr": "French",
    "de": "German",
    "ca": "Catalan",
    "it": "Italian",
    "gl": "Galician",
    "nl": "Dutch",
    "ro": "Romanian",
}

# Three-letter codes as Apertium and other tools name them.
_ALPHA3 = {
    "eng": "en",
    "spa": "es",
    "por": "pt",
    "fra": "fr",
    "fre": "fr",
    "deu": "de",
    "ger": "de",
    "cat": "ca",
    "ita": "it",
    "glg": "gl",
    "nld": "nl",
    "dut": "nl",
    "ron": "ro",
}


def normalize_language(code: str) -> str:
    """'en-US', 'EN', 'pt_BR', 'eng' → 'en', 'pt'; unknown codes raise, listing supported ones."""
    base = code.strip().replace("_", "-").split("-")[0].lower()
    base = _ALPHA3.get(base, base)
    if base not in LANGUAGE_NAMES:
        supported = ", ".join(sorted(LANGUAGE_NAMES))
        raise UnsupportedLanguageError(f"unknown language code {code!r}; supported: {supported}")
    return base


def parse_language_list(codes: str) -> list[str]:
    """'pt, es,PT-br' → ['pt', 'es'] (normalised, order kept, duplicates dropped)."""
    seen: list[str] = []
    for part in codes.split(","):
        if not part.strip():
            continue
        code = normalize_language(part)
        if code not in seen:
            seen.append(code)
    if not seen:
        raise UnsupportedLanguageError("no target language given")
    return seen
