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
