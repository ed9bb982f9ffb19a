"""Shared fixtures: the real speech fixtures, real models (loaded once), synthetic non-speech."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from pipeline.audio import ASR_SAMPLE_RATE, Audio, Samples, write_wav
from pipeline.models import Models
from pipeline.settings import Settings
from server.ice import use_loopback_candidates
from testkit.fixtures import Clip, default_fixtures_dir, load_manifest
from testkit.harness import local_gateway
from testkit.redis_server import LocalRedis

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


def _pin_ctranslate2_kernels() -> None:
    """Whisper's words near the noise floor differ between CTranslate2's AVX2 and AVX-512
    kernels, and CTranslate2 picks AVX2 on AMD CPUs that have AVX-512. The expectations were
    measured with AVX-512: where the CPU has it, every test process (and every server or
    worker a test starts) uses it."""
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    if all(flag in flags.split() for flag in ("avx512f", "avx512bw", "avx512vl", "avx512dq")):
        os.environ.setdefault("CT2_FORCE_CPU_ISA", "AVX512")


_pin_ctranslate2_kernels()


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    folder = default_fixtures_dir()
    if not (folder / "manifest.csv").exists():
        pytest.fail(f"speech fixtures not found at {folder} (expected ../shared/fixtures)")
    return folder


@pytest.fixture(scope="session")
def clips(fixtures_dir: Path) -> list[Clip]:
    return load_manifest(fixtures_dir)


def clip_named(clips: list[Clip], name: str) -> Clip:
    return next(c for c in clips if c.path.stem == name)


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    # Open rooms: most tests are about calls, not access (tests/test_access.py uses tokens).
    return Settings(cache_dir=tmp_path_factory.mktemp("model-cache"), open_rooms=True)


@pytest.fixture(scope="session")
def models(settings: Settings) -> Iterator[Models]:
    """The default offline models, loaded once for the whole session."""
    loaded = Models(settings)
    yield loaded
    loaded.close()


@contextlib.asynccontextmanager
async def serving(settings: Settings, models: Models) -> AsyncIterator[str]:
    """A real gateway on a free 127.0.0.1 port, offering only loopback ICE candidates."""
    use_loopback_candidates(True)
    try:
        async with local_gateway(settings, models) as url:
            yield url
    finally:
        use_loopback_candidates(False)


@pytest.fixture
async def gateway(settings: Settings, models: Models) -> AsyncIterator[str]:
    async with serving(settings, models) as url:
        yield url


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedis]:
    """A private redis-server (Debian's) on a free 127.0.0.1 port, for the whole session."""
    with LocalRedis(tmp_path_factory.mktemp("redis"), password="test-secret") as server:
        yield server


@pytest.fixture
def redis_url(redis_server: LocalRedis) -> Iterator[str]:
    """A fresh, empty Redis for each test."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    yield redis_server.url


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=60) as client:
        yield client


def white_noise(seconds: float, level: float = 0.1, seed: int = 0) -> Samples:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(int(seconds * ASR_SAMPLE_RATE)) * level).astype(np.float32)


def music(seconds: float) -> Samples:
    """Chords with a beat: harmonic, rhythmic, not speech."""
    t = np.arange(int(seconds * ASR_SAMPLE_RATE)) / ASR_SAMPLE_RATE
    chords = [
        (261.6, 329.6, 392.0),
        (220.0, 261.6, 329.6),
        (174.6, 220.0, 261.6),
        (196.0, 246.9, 293.7),
    ]
    out = np.zeros_like(t)
    for i, chord in enumerate(chords * int(seconds)):
        window = (t >= i * 0.5) & (t < (i + 1) * 0.5)
        envelope = np.exp(-3 * (t[window] - i * 0.5))
        out[window] = sum(np.sin(2 * np.pi * f * t[window]) for f in chord) * envelope
    return (0.2 * out / max(np.abs(out).max(), 1e-9)).astype(np.float32)


def silence(seconds: float) -> Samples:
    return np.zeros(int(seconds * ASR_SAMPLE_RATE), dtype=np.float32)


def write_16k(path: Path, samples: Samples) -> Path:
    write_wav(path, Audio(samples, ASR_SAMPLE_RATE))
    return path


def _closed_by_aioice(task: asyncio.Task[object]) -> bool:
    """aiortc/aioice tasks that the library itself cancelled can stay pending on a cancelled
    future after their connection closed (a library quirk, not a task of ours)."""
    code = getattr(task.get_coro(), "cr_code", None)
    library = code is not None and any(
        f"/{name}/" in code.co_filename for name in ("aioice", "aiortc")
    )
    waiting_on = getattr(task, "_fut_waiter", None)
    return library and waiting_on is not None and waiting_on.cancelled()


@pytest.fixture
async def no_leaked_tasks() -> AsyncIterator[None]:
    """Fails an async test that leaves an asyncio task running behind it."""
    before = asyncio.all_tasks()
    yield
    current = asyncio.current_task()
    # Closing transports (aiortc, uvicorn) finishes in tasks of their own: give them a moment.
    for _ in range(50):
        leaked = [
            t
            for t in asyncio.all_tasks() - before
            if t is not current and not t.done() and not _closed_by_aioice(t)
        ]
        if not leaked:
            break
        await asyncio.sleep(0.05)
    for task in leaked:
        task.cancel()
    assert not leaked, f"leaked asyncio tasks: {leaked}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if isinstance(item, pytest.Function) and inspect.iscoroutinefunction(item.function):
            item.fixturenames.insert(0, "no_leaked_tasks")
