"""Language codes: normalisation to ISO 639-1 and parsing of target lists."""

from __future__ import annotations

import pytest

from pipeline.errors import DragomanError, UnsupportedLanguageError
from pipeline.languages import LANGUAGE_NAMES, normalize_language, parse_language_list


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("en-US", "en"),
        ("EN", "en"),
        ("en", "en"),
        ("pt-BR", "pt"),
        ("pt_BR", "pt"),
        ("PT-br", "pt"),
        ("eng", "en"),
        ("spa", "es"),
        (" es ", "es"),
        ("fra", "fr"),
        ("fre", "fr"),
        ("ger", "de"),
        ("DEU", "de"),
        ("cat", "ca"),
        ("ca-ES-valencia", "ca"),
        ("gl-ES", "gl"),
        ("dut", "nl"),
        ("ron", "ro"),
    ],
)
def test_normalize_language(code: str, expected: str) -> None:
    assert normalize_language(code) == expected


def test_every_listed_language_normalises_to_itself() -> None:
    assert len(LANGUAGE_NAMES) >= 5
    for code, name in LANGUAGE_NAMES.items():
        assert normalize_language(code) == code
        assert normalize_language(code.upper() + "-XX") == code
        assert name and name[0].isupper()


@pytest.mark.parametrize("code", ["xx", "", "   ", "klingon", "english", "en2", "-", "zz-EN"])
def test_unknown_codes_raise_with_supported_list(code: str) -> None:
    with pytest.raises(UnsupportedLanguageError) as info:
        normalize_language(code)
    message = str(info.value)
    assert isinstance(info.value, DragomanError)
    assert repr(code) in message
    assert "\n" not in message
    for supported in ("en", "es", "pt", "fr", "de", "ca"):
        assert supported in message
    assert ", ".join(sorted(LANGUAGE_NAMES)) in message


def test_parse_language_list_normalises_and_deduplicates() -> None:
    assert parse_language_list("pt, es,PT-br") == ["pt", "es"]
    assert parse_language_list("es") == ["es"]
    assert parse_language_list("fra,eng,fr-CA, en_GB ,de") == ["fr", "en", "de"]
    assert parse_language_list("pt,,es,") == ["pt", "es"]


@pytest.mark.parametrize("codes", ["", " ", ",", " , ,"])
def test_parse_language_list_empty_raises(codes: str) -> None:
    with pytest.raises(UnsupportedLanguageError, match="no target language"):
        parse_language_list(codes)


def test_parse_language_list_unknown_member_raises() -> None:
    with pytest.raises(UnsupportedLanguageError, match="xx"):
        parse_language_list("pt, xx, es")
