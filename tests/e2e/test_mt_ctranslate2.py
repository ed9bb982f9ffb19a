"""CTranslate2 backend on tiny models built here (SentencePiece + a 1-layer Transformer, numpy).

No real OPUS-MT or NLLB model is available offline, so the fixture trains small SentencePiece
models and writes a CTranslate2 Transformer with random weights, except for the embeddings and
output projection: those are set so that the decoder predicts a chosen token from the previous
one (e.g. '</s>' → 'Hallo' → '</s>', or 'por_Latn' → 'olá' → '</s>'). Outputs are then known,
which lets the tests check the plumbing: tokens, target prefixes, batching and detokenization.
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ctranslate2
import numpy as np
import pytest
import sentencepiece as spm
from ctranslate2.specs import model_spec, transformer_spec

from pipeline.errors import ModelUnavailableError, StageError, UnsupportedPairError
from pipeline.mt import ctranslate2_backend
from pipeline.mt.ctranslate2_backend import CTranslate2Translator, split_sentences

D_MODEL, FFN_DIM, MAX_POSITIONS = 16, 32, 256
SPECIALS = ["<unk>", "<s>", "</s>"]

EN = [
    "Hello world.",
    "How are you today?",
    "The house is big.",
    "I like green apples.",
    "We meet at noon.",
    "Thank you very much.",
    "The weather is nice.",
    "Where is the station?",
]
DE = [
    "Hallo Welt.",
    "Wie geht es dir heute?",
    "Das Haus ist groß.",
    "Ich mag grüne Äpfel.",
    "Wir treffen uns mittags.",
    "Vielen Dank.",
    "Das Wetter ist schön.",
    "Wo ist der Bahnhof?",
]
PT = ["Olá mundo.", "Como estás hoje?", "A casa é grande.", "Gosto de maçãs verdes."]
ES = ["Hola mundo.", "¿Cómo estás hoy?", "La casa es grande.", "Me gustan las manzanas."]


@dataclass(frozen=True)
class Models:
    """Folders of the tiny models: OPUS-MT style en→de, NLLB-style and M2M100-style."""

    bilingual: Path
    nllb: Path
    m2m100: Path


def _train_spm(sentences: list[str], path: Path, symbols: list[str]) -> list[str]:
    """Train a tiny SentencePiece model into `path`; return its pieces."""
    proto = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences * 4),
        model_writer=proto,
        vocab_size=80,
        hard_vocab_limit=False,
        user_defined_symbols=symbols,
        minloglevel=2,
    )
    path.write_bytes(proto.getvalue())
    processor = spm.SentencePieceProcessor(model_file=str(path))
    return [processor.id_to_piece(i) for i in range(processor.get_piece_size())]


def _vocabulary(*piece_lists: list[str], extra: tuple[str, ...] = ()) -> list[str]:
    tokens = list(SPECIALS)
    for pieces in piece_lists:
        tokens += [piece for piece in pieces if piece not in tokens]
    return tokens + list(extra)


def _random_weight(scope: str, vocab_size: int, rng: np.random.Generator) -> np.ndarray:
    """A small random array shaped as CTranslate2 expects the variable at `scope`."""
    parts = scope.split("/")
    attr, parent = parts[-1], parts[-2]
    if attr == "gamma":
        return np.ones(D_MODEL, np.float32)
    if attr == "beta":
        return np.zeros(D_MODEL, np.float32)
    if parts[-3] == "ffn":
        shape = (FFN_DIM, D_MODEL) if parent == "linear_0" else (D_MODEL, FFN_DIM)
    elif parent == "linear_0":  # fused QKV (self-attention) or Q (encoder attention)
        shape = (3 * D_MODEL if "self_attention" in parts else D_MODEL, D_MODEL)
    elif parent == "linear_1" and "self_attention" not in parts:  # fused KV
        shape = (2 * D_MODEL, D_MODEL)
    else:
        shape = (D_MODEL, D_MODEL)
    return (rng.standard_normal(shape) * 0.02).astype(np.float32)


def _next_token_weights(
    vocabulary: list[str], next_token: dict[str, str], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings and output projection under which the decoder predicts next_token[previous].

    Each key of `next_token` gets its own embedding dimension; every other token shares
    dimension 0, which predicts '</s>'.
    """
    index = {token: i for i, token in enumerate(vocabulary)}
    dimension = {token: i + 1 for i, token in enumerate(next_token)}
    embeddings = rng.standard_normal((len(vocabulary), D_MODEL)).astype(np.float32) * 0.01
    projection = rng.standard_normal((len(vocabulary), D_MODEL)).astype(np.float32) * 0.01
    for token, i in index.items():
        embeddings[i, dimension.get(token, 0)] += 1.0
    projection[index["</s>"], 0] = 8.0
    for previous, following in next_token.items():
        projection[index[following], dimension[previous]] = 8.0
    return embeddings, projection


def _build_model(folder: Path, vocabulary: list[str], next_token: dict[str, str]) -> None:
    """Save a 1-layer CTranslate2 Transformer with a shared vocabulary into `folder`."""
    rng = np.random.default_rng(7)
    spec = transformer_spec.TransformerSpec.from_config(num_layers=1, num_heads=2)
    embeddings, projection = _next_token_weights(vocabulary, next_token, rng)
    spec.encoder.embeddings[0].weight = embeddings
    spec.decoder.embeddings.weight = embeddings.copy()
    spec.decoder.projection.weight = projection
    for coder in (spec.encoder, spec.decoder):
        coder.position_encodings.encodings = np.zeros((MAX_POSITIONS, D_MODEL), np.float32)

    def fill(layer: Any, scope: str, value: Any) -> None:
        if value is None:
            setattr(layer, scope.split("/")[-1], _random_weight(scope, len(vocabulary), rng))

    model_spec.visit_spec(spec, fill)
    spec.register_source_vocabulary(vocabulary)
    spec.register_target_vocabulary(vocabulary)
    spec.config.decoder_start_token = "</s>"
    spec.validate()
    spec.save(str(folder))


def _build_bilingual(folder: Path) -> None:
    folder.mkdir(parents=True)
    source = _train_spm(EN, folder / "source.spm", [])
    target = _train_spm(DE, folder / "target.spm", ["Hallo"])
    _build_model(folder, _vocabulary(source, target), {"</s>": "Hallo"})


def _build_multilingual(folder: Path, tokens: dict[str, str]) -> None:
    """tokens: ISO code → language token; the word each target language decodes to is fixed."""
    words = {"en": "hello", "pt": "olá", "es": "hola"}
    folder.mkdir(parents=True)
    pieces = _train_spm(EN + PT + ES, folder / "sentencepiece.bpe.model", list(words.values()))
    vocabulary = _vocabulary(pieces, extra=tuple(tokens.values()))
    _build_model(folder, vocabulary, {tokens[code]: words[code] for code in tokens})


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    root = tmp_path_factory.mktemp("ct2")
    built = Models(root / "opus-mt-en-de", root / "nllb", root / "m2m100")
    _build_bilingual(built.bilingual)
    _build_multilingual(built.nllb, {"en": "eng_Latn", "pt": "por_Latn", "es": "spa_Latn"})
    _build_multilingual(built.m2m100, {"en": "__en__", "pt": "__pt__"})
    return built


class SpyTranslator:
    """Wraps a real ctranslate2.Translator and records how the backend calls it."""

    real = ctranslate2.Translator

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.calls: list[dict[str, Any]] = []
        self.unloaded = False
        self._inner = self.real(*args, **kwargs)

    def translate_batch(self, source: list[list[str]], **kwargs: Any) -> Any:
        self.calls.append({"source": source, **kwargs})
        return self._inner.translate_batch(source, **kwargs)

    def unload_model(self) -> None:
        self.unloaded = True
        self._inner.unload_model()


@pytest.fixture
def spies(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[SpyTranslator]]:
    """Every ctranslate2.Translator the backend opens during the test, spied on."""
    made: list[SpyTranslator] = []

    def factory(*args: Any, **kwargs: Any) -> SpyTranslator:
        made.append(SpyTranslator(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(ctranslate2, "Translator", factory)
    yield made


def _copy(folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(folder, tmp_path / folder.name))


# Bilingual (OPUS-MT layout)


def test_bilingual_folder_serves_its_pair(models: Models) -> None:
    translator = CTranslate2Translator({"en-de": models.bilingual})
    assert translator.name == "ctranslate2"
    assert translator.pairs == {("en", "de")}
    assert translator.quality("en", "de") == pytest.approx(0.85)
    assert translator.translate("Hello world.", "en", "de") == "Hallo"
    translator.close()


def test_bilingual_tokens_and_options(models: Models, spies: list[SpyTranslator]) -> None:
    translator = CTranslate2Translator({"en-de": str(models.bilingual)}, threads=3, beam_size=4)
    translator.translate("Hello world.", "en", "de")
    (spy,) = spies
    assert spy.kwargs["inter_threads"] == 1
    assert spy.kwargs["intra_threads"] == 3
    assert spy.kwargs["device"] == "cpu"
    (call,) = spy.calls
    source_sp = spm.SentencePieceProcessor(model_file=str(models.bilingual / "source.spm"))
    assert call["source"] == [[*source_sp.encode("Hello world.", out_type=str), "</s>"]]
    assert call["target_prefix"] is None
    assert call["beam_size"] == 4
    assert 0 < call["max_decoding_length"] <= 256


def test_sentences_are_translated_as_one_batch(models: Models, spies: list[SpyTranslator]) -> None:
    translator = CTranslate2Translator({"en-de": models.bilingual})
    text = "Hello world. How are you today? Thank you very much!"
    assert translator.translate(text, "en", "de") == "Hallo Hallo Hallo"
    (call,) = spies[0].calls
    assert len(call["source"]) == 3


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
def test_blank_text_gives_empty_string(
    models: Models, spies: list[SpyTranslator], text: str
) -> None:
    translator = CTranslate2Translator({"en-de": models.bilingual})
    assert translator.translate(text, "en", "de") == ""
    assert spies[0].calls == []


def test_unsupported_pair(models: Models) -> None:
    translator = CTranslate2Translator({"en-de": models.bilingual})
    with pytest.raises(UnsupportedPairError, match="de→en"):
        translator.translate("Hallo Welt.", "de", "en")


def test_model_config_adding_eos_is_respected(
    models: Models, spies: list[SpyTranslator], tmp_path: Path
) -> None:
    folder = _copy(models.bilingual, tmp_path)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "add_source_eos": True}))
    CTranslate2Translator({"en-de": folder}).translate("Hello world.", "en", "de")
    assert spies[0].calls[0]["source"][0][-1] != "</s>"


def test_single_sentencepiece_model_fallback(models: Models, tmp_path: Path) -> None:
    folder = _copy(models.bilingual, tmp_path)
    (folder / "source.spm").unlink()
    (folder / "target.spm").rename(folder / "sentencepiece.bpe.model")
    translator = CTranslate2Translator({"en-de": folder})
    assert translator.translate("Hello world.", "en", "de") == "Hallo"


def test_concurrent_calls(models: Models) -> None:
    translator = CTranslate2Translator({"en-de": models.bilingual})
    texts = [f"Hello world. The house is big.{' Thank you!' * (i % 3)}" for i in range(12)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda text: translator.translate(text, "en", "de"), texts))
    assert results == [" ".join(["Hallo"] * (2 + i % 3)) for i in range(12)]


def test_close_unloads_models(models: Models, spies: list[SpyTranslator]) -> None:
    translator = CTranslate2Translator({"en-de": models.bilingual, "multi": models.nllb})
    translator.close()
    assert [spy.unloaded for spy in spies] == [True, True]
    with pytest.raises(StageError, match="closed"):
        translator.translate("Hello world.", "en", "de")


# Missing or invalid folders


def test_missing_folder(tmp_path: Path) -> None:
    missing = tmp_path / "opus-mt-en-de-ct2"
    with pytest.raises(ModelUnavailableError, match="ct2-transformers-converter") as caught:
        CTranslate2Translator({"en-de": missing})
    message = str(caught.value)
    assert str(missing) in message and "\n" not in message


def test_folder_without_model_bin(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError, match="converted CTranslate2 model"):
        CTranslate2Translator({"multi": tmp_path})


def test_folder_without_sentencepiece(models: Models, tmp_path: Path) -> None:
    folder = _copy(models.nllb, tmp_path)
    (folder / "sentencepiece.bpe.model").unlink()
    with pytest.raises(ModelUnavailableError, match="SentencePiece"):
        CTranslate2Translator({"multi": folder})


def test_multilingual_folder_without_language_tokens(models: Models) -> None:
    with pytest.raises(ModelUnavailableError, match="language tokens"):
        CTranslate2Translator({"multi": models.bilingual})


@pytest.mark.parametrize("key", ["english", "en-de-fr", ""])
def test_bad_model_key(models: Models, key: str) -> None:
    with pytest.raises(ModelUnavailableError, match="'src-tgt'"):
        CTranslate2Translator({key: models.bilingual})


# Multilingual (NLLB-200, M2M100)


def test_nllb_serves_every_ordered_pair_of_its_languages(models: Models) -> None:
    translator = CTranslate2Translator({"multi": models.nllb})
    languages = ("en", "pt", "es")
    assert translator.pairs == {(s, t) for s in languages for t in languages if s != t}
    assert len(translator.pairs) == 6
    assert all(translator.quality(*pair) == pytest.approx(0.9) for pair in translator.pairs)
    with pytest.raises(UnsupportedPairError):
        translator.translate("Hello world.", "en", "fr")


@pytest.mark.parametrize(
    ("source", "target", "text", "expected"),
    [
        ("en", "pt", "Hello world. How are you today?", "olá olá"),
        ("en", "es", "Hello world.", "hola"),
        ("pt", "en", "Olá mundo.", "hello"),
        ("es", "pt", "Hola mundo.", "olá"),
    ],
)
def test_nllb_language_tokens_and_target_prefix(
    models: Models,
    spies: list[SpyTranslator],
    source: str,
    target: str,
    text: str,
    expected: str,
) -> None:
    tokens = ctranslate2_backend.NLLB_TOKENS
    translator = CTranslate2Translator({"multi": models.nllb})
    assert translator.translate(text, source, target) == expected
    (call,) = spies[0].calls
    assert all(tokens[source] == s[0] and s[-1] == "</s>" for s in call["source"])
    assert call["target_prefix"] == [[tokens[target]]] * len(call["source"])


def test_m2m100_tokens_are_detected(models: Models, spies: list[SpyTranslator]) -> None:
    translator = CTranslate2Translator({"multi": models.m2m100})
    assert translator.pairs == {("en", "pt"), ("pt", "en")}
    assert translator.translate("Hello world.", "en", "pt") == "olá"
    (call,) = spies[0].calls
    assert call["source"][0][0] == "__en__"
    assert call["target_prefix"] == [["__pt__"]]


def test_text_vocabulary_file(models: Models, tmp_path: Path) -> None:
    folder = _copy(models.nllb, tmp_path)
    tokens = json.loads((folder / "shared_vocabulary.json").read_text(encoding="utf-8"))
    (folder / "shared_vocabulary.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")
    (folder / "shared_vocabulary.json").unlink()
    assert len(CTranslate2Translator({"multi": folder}).pairs) == 6


def test_bilingual_model_takes_over_its_pair_from_multi(models: Models) -> None:
    translator = CTranslate2Translator({"en-pt": models.bilingual, "multi": models.nllb})
    assert len(translator.pairs) == 6
    assert translator.quality("en", "pt") == pytest.approx(0.85)
    assert translator.translate("Hello world.", "en", "pt") == "Hallo"
    assert translator.translate("Hello world.", "en", "es") == "hola"


# Sentence splitting


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("", []),
        ("  ", []),
        ("One.", ["One."]),
        ("One. Two! Three? Four", ["One.", "Two!", "Three?", "Four"]),
        ("3.14 is pi.  Yes.\nNo", ["3.14 is pi.", "Yes.", "No"]),
    ],
)
def test_split_sentences(text: str, sentences: list[str]) -> None:
    assert split_sentences(text) == sentences
