"""CTranslate2 backend: bilingual OPUS-MT (Marian) folders and multilingual NLLB-200 / M2M100.

Every model is a local folder converted beforehand (e.g. with `ct2-transformers-converter
--copy_files source.spm target.spm`); nothing is ever downloaded.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ctranslate2
import sentencepiece as spm

from pipeline.errors import ModelUnavailableError, StageError, UnsupportedPairError
from pipeline.languages import LANGUAGE_NAMES, normalize_language
from pipeline.mt.base import Pair, Translator

BILINGUAL_QUALITY = 0.85
MULTILINGUAL_QUALITY = 0.9
MULTI_KEY = "multi"

# Our ISO 639-1 codes as NLLB-200 (FLORES-200) and M2M100 language tokens.
NLLB_TOKENS: dict[str, str] = {
    "en": "eng_Latn",
    "es": "spa_Latn",
    "pt": "por_Latn",
    "fr": "fra_Latn",
    "de": "deu_Latn",
    "ca": "cat_Latn",
    "it": "ita_Latn",
    "gl": "glg_Latn",
    "nl": "nld_Latn",
    "ro": "ron_Latn",
}
M2M100_TOKENS: dict[str, str] = {code: f"__{code}__" for code in LANGUAGE_NAMES}

BILINGUAL_SOURCE_SPM = ("source.spm", "sentencepiece.bpe.model", "spm.model")
BILINGUAL_TARGET_SPM = ("target.spm", "sentencepiece.bpe.model", "spm.model")
MULTILINGUAL_SPM = ("sentencepiece.bpe.model", "spm.model")

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_NOT_A_MODEL = (
    "must be a converted CTranslate2 model folder (e.g. made with ct2-transformers-converter); "
    "models are never downloaded"
)


def split_sentences(text: str) -> list[str]:
    """Split on '.', '!' or '?' followed by whitespace; blank text gives []."""
    return [part for part in _SENTENCE_END.split(text.strip()) if part.strip()]


@dataclass(frozen=True)
class _Model:
    """One loaded folder: the CTranslate2 translator, its tokenizers and language tokens."""

    translator: Any
    source_sp: Any
    target_sp: Any
    eos: list[str]
    language_tokens: dict[str, str]  # empty for a bilingual model
    quality: float

    def encode(self, sentence: str, source: str) -> list[str]:
        """Source tokens: [language token] + pieces + [</s>] (unless the model adds </s>)."""
        pieces: list[str] = self.source_sp.encode(sentence, out_type=str)
        lead = [self.language_tokens[source]] if self.language_tokens else []
        return lead + pieces + self.eos

    def prefix(self, target: str) -> list[str] | None:
        """The forced first target token of a multilingual model, else None."""
        return [self.language_tokens[target]] if self.language_tokens else None

    def decode(self, tokens: list[str], target: str) -> str:
        """Detokenize one hypothesis, without its target language token."""
        if self.language_tokens and tokens[:1] == [self.language_tokens[target]]:
            tokens = tokens[1:]
        return str(self.target_sp.decode_pieces(tokens)).strip()


def _model_folder(key: str, location: str | Path) -> Path:
    folder = Path(location).expanduser()
    if not folder.is_dir() or not (folder / "model.bin").is_file():
        raise ModelUnavailableError(f"ctranslate2 model {key!r}: {folder} {_NOT_A_MODEL}")
    return folder


def _is_multi(key: str) -> bool:
    return key.strip().lower() == MULTI_KEY


def _parse_pair(key: str) -> Pair:
    parts = key.strip().split("-")
    if len(parts) != 2:
        raise ModelUnavailableError(
            f"ctranslate2 model key {key!r} must be 'src-tgt' (e.g. 'en-de') or {MULTI_KEY!r}"
        )
    return normalize_language(parts[0]), normalize_language(parts[1])


def _read_config(folder: Path) -> dict[str, Any]:
    path = folder / "config.json"
    if not path.is_file():
        return {}
    config: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return config


def _source_eos(config: dict[str, Any]) -> list[str]:
    """The end token to append, unless the model config says CTranslate2 adds it itself."""
    return [] if config.get("add_source_eos") else [str(config.get("eos_token") or "</s>")]


def _read_vocabulary(folder: Path, side: str) -> set[str]:
    """Tokens of the shared or `side` ('source'/'target') vocabulary, .json (4.x) or .txt."""
    for stem in ("shared_vocabulary", f"{side}_vocabulary"):
        json_path, txt_path = folder / f"{stem}.json", folder / f"{stem}.txt"
        if json_path.is_file():
            return set(json.loads(json_path.read_text(encoding="utf-8")))
        if txt_path.is_file():
            return set(txt_path.read_text(encoding="utf-8").splitlines())
    raise ModelUnavailableError(f"{folder} has no {side} vocabulary; it {_NOT_A_MODEL}")


def _load_spm(folder: Path, names: Iterable[str]) -> Any:
    names = list(names)
    for name in names:
        if (folder / name).is_file():
            return spm.SentencePieceProcessor(model_file=str(folder / name))
    raise ModelUnavailableError(
        f"{folder} has no SentencePiece model ({' or '.join(names)}); copy it in, "
        "e.g. with ct2-transformers-converter --copy_files"
    )


def _detect_language_tokens(folder: Path, vocabulary: set[str]) -> dict[str, str]:
    """NLLB's or M2M100's tokens for our languages, whichever the vocabulary holds."""
    for table in (NLLB_TOKENS, M2M100_TOKENS):
        found = {code: token for code, token in table.items() if token in vocabulary}
        if found:
            return found
    raise ModelUnavailableError(
        f"{folder} has no NLLB (eng_Latn…) or M2M100 (__en__…) language tokens"
    )


class CTranslate2Translator(Translator):
    """Local CTranslate2 models keyed 'src-tgt' (OPUS-MT style) or 'multi' (NLLB-200/M2M100).

    A direction served by both a bilingual model and the multilingual one uses the bilingual one.
    """

    name = "ctranslate2"
    origin = "local CTranslate2 folders (ct2-transformers-converter)"

    def __init__(
        self,
        models: Mapping[str, str | Path],
        device: str = "cpu",
        threads: int = 2,
        beam_size: int = 2,
        max_decoding_length: int = 256,
        compute_type: str = "default",
    ) -> None:
        self._options = {"device": device, "intra_threads": threads, "compute_type": compute_type}
        self._beam_size = beam_size
        self._max_decoding_length = max_decoding_length
        self._loaded: list[_Model] = []
        self._routes: dict[Pair, _Model] = {}
        self._closed = threading.Event()
        # The multilingual model first, so that bilingual models take over their own pairs.
        for key, location in sorted(models.items(), key=lambda item: not _is_multi(item[0])):
            self._add(key, location)
        super().__init__({pair: model.quality for pair, model in self._routes.items()})

    def _add(self, key: str, location: str | Path) -> None:
        folder = _model_folder(key, location)
        if _is_multi(key):
            self._add_multilingual(folder)
        else:
            self._add_bilingual(folder, _parse_pair(key))

    def _open(self, folder: Path) -> Any:
        try:
            return ctranslate2.Translator(str(folder), inter_threads=1, **self._options)
        except (RuntimeError, ValueError) as exc:
            message = f"{folder} could not be loaded ({exc}); it {_NOT_A_MODEL}"
            raise ModelUnavailableError(message) from exc

    def _add_bilingual(self, folder: Path, pair: Pair) -> None:
        model = _Model(
            translator=self._open(folder),
            source_sp=_load_spm(folder, BILINGUAL_SOURCE_SPM),
            target_sp=_load_spm(folder, BILINGUAL_TARGET_SPM),
            eos=_source_eos(_read_config(folder)),
            language_tokens={},
            quality=BILINGUAL_QUALITY,
        )
        self._loaded.append(model)
        self._routes[pair] = model

    def _add_multilingual(self, folder: Path) -> None:
        source_vocab = _read_vocabulary(folder, "source")
        target_vocab = _read_vocabulary(folder, "target")
        tokens = _detect_language_tokens(folder, source_vocab | target_vocab)
        sp = _load_spm(folder, MULTILINGUAL_SPM)
        model = _Model(
            translator=self._open(folder),
            source_sp=sp,
            target_sp=sp,
            eos=_source_eos(_read_config(folder)),
            language_tokens=tokens,
            quality=MULTILINGUAL_QUALITY,
        )
        self._loaded.append(model)
        sources = [code for code, token in tokens.items() if token in source_vocab]
        targets = [code for code, token in tokens.items() if token in target_vocab]
        for pair in ((s, t) for s in sources for t in targets if s != t):
            self._routes[pair] = model

    def translate(self, text: str, source: str, target: str) -> str:
        if self._closed.is_set():
            raise StageError("mt", "ctranslate2 translator is closed", recoverable=False)
        model = self._routes.get((source, target))
        if model is None:
            raise UnsupportedPairError(f"ctranslate2 has no {source}→{target} model")
        sentences = split_sentences(text)
        if not sentences:
            return ""
        return " ".join(self._translate_sentences(model, sentences, source, target))

    def _translate_sentences(
        self, model: _Model, sentences: list[str], source: str, target: str
    ) -> list[str]:
        """All sentences as one batch; the decoding length is bounded by the input length."""
        batch = [model.encode(sentence, source) for sentence in sentences]
        prefix = model.prefix(target)
        longest = max(len(tokens) for tokens in batch)
        try:
            results = model.translator.translate_batch(
                batch,
                target_prefix=None if prefix is None else [prefix] * len(batch),
                beam_size=self._beam_size,
                max_decoding_length=min(self._max_decoding_length, 2 * longest + 16),
            )
        except RuntimeError as exc:
            raise StageError("mt", f"ctranslate2 {source}→{target}: {exc}") from exc
        return [model.decode(list(result.hypotheses[0]), target) for result in results]

    def close(self) -> None:
        """Unload every model; later calls to translate raise StageError."""
        self._closed.set()
        for model in self._loaded:
            model.translator.unload_model()
        self._loaded.clear()
        self._routes.clear()
