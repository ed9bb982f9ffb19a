"""What voices are asked to say: clauses, unsayable characters, Festival strings, providers."""

from __future__ import annotations

import pytest

from pipeline.errors import ModelUnavailableError
from pipeline.tts.festival import scheme_string
from pipeline.tts.kokoro import providers_for
from pipeline.tts.text import clauses, sayable


def test_clauses_keep_their_closing_punctuation() -> None:
    assert clauses("¿Qué tal? Bien, gracias… 23 años") == [
        ("Qué tal", "?"),
        ("Bien", ","),
        ("gracias", "…"),
        ("23 años", ""),
    ]
    assert clauses("") == [] and clauses("?!.") == []


def test_a_long_first_clause_is_cut_before_a_phrase_so_speech_starts_sooner() -> None:
    text = "o acidente ocorreu em grande altitude no terreno montanhoso da serra, logo após"
    assert clauses(text, "pt") == [
        ("o acidente ocorreu em grande altitude", ""),
        ("no terreno montanhoso da serra", ","),
        ("logo após", ""),  # only the first clause: later ones are not waited for
    ]
    assert len(clauses(text)) == 2  # no language, no phrase openers: no cut
    nouns = "Sous le consulat il devient conservateur des eaux et forêts et conseiller général"
    assert clauses(nouns, "fr") == [(nouns, "")]  # "et" joins nouns as often as clauses
    short = "Today only platforms one and three are used"  # nine words: short enough already
    assert clauses(short, "en") == [(short, "")]
    unbroken = "one two three four five six seven eight nine ten eleven twelve"
    assert clauses(unbroken, "en") == [(unbroken, "")]  # never mid-phrase


def test_emoji_and_controls_are_left_out_but_words_digits_and_money_stay() -> None:
    assert sayable("Hello 😀 world!\x00 10€ \u200b ok") == "Hello world! 10€ ok"
    assert sayable("🎉🎉") == ""


def test_festival_strings_are_latin1_and_escaped() -> None:
    assert scheme_string('say "hi" \\ now') == '"say \\"hi\\" \\\\ now"'
    assert scheme_string("Bon dia 😀 ça") == '"Bon dia   ça"'


def test_kokoro_on_cuda_needs_the_cuda_provider() -> None:
    assert providers_for("cpu", ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    cuda = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert providers_for("cuda", cuda) == cuda
    with pytest.raises(ModelUnavailableError, match="CUDA provider"):
        providers_for("cuda", ["CPUExecutionProvider"])
