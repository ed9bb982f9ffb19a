"""Rule-based Apertium pairs from Debian, each a persistent null-flush pipeline process."""

from __future__ import annotations

import contextlib
import os
import re
import select
import shutil
import subprocess
import threading
import time
from pathlib import Path

from pipeline.errors import (
    ModelUnavailableError,
    StageError,
    UnsupportedLanguageError,
    UnsupportedPairError,
)
from pipeline.languages import normalize_language
from pipeline.mt.base import Pair, Translator

# Estimated chrF (0..1) per pair; closely related languages translate far better by rules.
_QUALITY: dict[frozenset[str], float] = {
    frozenset({"es", "pt"}): 0.85,
    frozenset({"es", "ca"}): 0.85,
    frozenset({"pt", "ca"}): 0.75,
    frozenset({"es", "fr"}): 0.65,
    frozenset({"fr", "ca"}): 0.60,
    frozenset({"es", "gl"}): 0.85,
    frozenset({"pt", "gl"}): 0.85,
}
_DEFAULT_QUALITY = 0.49  # measured for eng-spa (DESIGN.md)
_STREAM_SPECIAL = re.compile(r"([\\\[\]^$/@<>{}*#])")
# One left-to-right pass: an escaped character, or a superblank (all input brackets were escaped).
_ESCAPE_OR_SUPERBLANK = re.compile(r"\\(.)|\[(?:\\.|[^\]\\])*\]")
_END_OF_REQUEST = b" [][\n]\0"
# lrx-proc mishandles an escaped caret before the final blank and never flushes; a look-alike
# modifier letter travels instead and is swapped back on the way out.
_CARET, _CARET_STAND_IN = "^", "\u02c6"


def discover_modes(modes_dir: Path) -> dict[Pair, str]:
    """Installed Apertium modes as {(src, tgt): mode}, skipping variants like 'eng-cat_valencia'."""
    found: dict[Pair, str] = {}
    if not modes_dir.is_dir():
        return found
    for mode_file in sorted(modes_dir.glob("*.mode")):
        codes = mode_file.stem.split("-")
        if len(codes) != 2 or "_" in mode_file.stem:
            continue
        try:
            pair = (normalize_language(codes[0]), normalize_language(codes[1]))
        except UnsupportedLanguageError:  # codes we do not serve (e.g. 'eco') are skipped
            continue
        found.setdefault(pair, mode_file.stem)
    return found


def escape_stream(text: str) -> str:
    """Text → Apertium stream format: escape reserved characters, one line, no NUL."""
    flat = " ".join(text.replace("\0", " ").split()).replace(_CARET, _CARET_STAND_IN)
    return _STREAM_SPECIAL.sub(r"\\\1", flat)


def unescape_stream(text: str) -> str:
    """Apertium stream → text: drop superblanks (all input brackets were escaped), unescape."""
    plain = _ESCAPE_OR_SUPERBLANK.sub(lambda m: m.group(1) if m.group(1) is not None else " ", text)
    return " ".join(plain.split()).replace(_CARET_STAND_IN, _CARET)


class ApertiumPipe:
    """One `apertium -z` process kept alive; each request ends with NUL, each reply too."""

    def __init__(self, mode: str, modes_dir: Path) -> None:
        self.mode = mode
        self._modes_dir = modes_dir
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None

    def _pipeline_script(self) -> str:
        """The mode's own shell pipeline with every program in null-flush (-z) mode."""
        if shutil.which("apertium-wblank-mode") is None:
            raise ModelUnavailableError("apertium is not installed (apt-get install apertium)")
        mode_file = self._modes_dir / f"{self.mode}.mode"
        return subprocess.run(
            ["apertium-wblank-mode", "-z", str(mode_file)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    def _start(self) -> subprocess.Popen[bytes]:
        # $1 = -n: no '*' marks on unknown words; $2: no extra tagger option.
        return subprocess.Popen(
            ["bash", "-c", self._pipeline_script(), "apertium", "-n", ""],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def _running(self) -> subprocess.Popen[bytes]:
        if self._process is None or self._process.poll() is not None:
            self._process = self._start()
            assert self._process.stdin is not None
            os.set_blocking(self._process.stdin.fileno(), False)
        return self._process

    def translate(self, text: str, timeout_s: float) -> str:
        request = escape_stream(text).encode("utf-8") + _END_OF_REQUEST
        with self._lock:
            attempts = 2 if self._process is not None and self._process.poll() is None else 1
            for attempt in range(1, attempts + 1):
                try:
                    return self._round_trip(self._running(), request, timeout_s)
                except OSError as exc:  # a reused process may have died since the last request
                    self._kill()
                    if attempt == attempts:
                        raise StageError("mt", f"apertium {self.mode}: {exc}") from exc
                except TimeoutError as exc:
                    self._kill()
                    raise StageError("mt", f"apertium {self.mode}: {exc}") from exc
        raise AssertionError("unreachable")

    def _round_trip(
        self, process: subprocess.Popen[bytes], request: bytes, timeout_s: float
    ) -> str:
        """Write the request and read the reply together, both bounded by one deadline."""
        assert process.stdin is not None and process.stdout is not None
        in_fd, out_fd = process.stdin.fileno(), process.stdout.fileno()
        pending, reply = memoryview(request), bytearray()
        deadline = time.monotonic() + timeout_s
        while not reply.endswith(b"\0"):
            remaining = deadline - time.monotonic()
            writers = [in_fd] if pending else []
            readable, writable, _ = select.select([out_fd], writers, [], max(remaining, 0))
            if remaining <= 0 or not (readable or writable):
                raise TimeoutError(f"no reply within {timeout_s:.1f} s")
            if writable:
                pending = pending[self._write_some(in_fd, pending) :]
            if readable:
                chunk = os.read(out_fd, 65536)
                if not chunk:
                    raise OSError("pipeline exited")
                reply += chunk
        return unescape_stream(reply.rstrip(b"\0").decode("utf-8", errors="replace"))

    @staticmethod
    def _write_some(fd: int, data: memoryview) -> int:
        try:
            return os.write(fd, data)
        except BlockingIOError:
            return 0

    def _kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, 9)
            self._process.wait()
        self._process = None

    def close(self) -> None:
        with self._lock:
            if self._process is not None and self._process.stdin is not None:
                self._process.stdin.close()
            self._kill()


class ApertiumTranslator(Translator):
    """Every installed Apertium pair; a pipeline process starts on a pair's first use."""

    name = "apertium"
    origin = "Debian apertium-* packages"

    def __init__(self, modes_dir: Path, timeout_s: float = 10.0) -> None:
        modes = discover_modes(modes_dir)
        self._pipes = {pair: ApertiumPipe(mode, modes_dir) for pair, mode in modes.items()}
        self._timeout_s = timeout_s
        super().__init__({pair: _QUALITY.get(frozenset(pair), _DEFAULT_QUALITY) for pair in modes})

    def pipe(self, source: str, target: str) -> ApertiumPipe:
        pipe = self._pipes.get((source, target))
        if pipe is None:
            raise UnsupportedPairError(f"apertium has no {source}→{target} pair installed")
        return pipe

    def translate(self, text: str, source: str, target: str) -> str:
        pipe = self.pipe(source, target)
        return pipe.translate(text, self._timeout_s) if text.strip() else ""

    def close(self) -> None:
        for pipe in self._pipes.values():
            pipe.close()
