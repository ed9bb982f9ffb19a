"""What both tiers share: the speech fixtures, settings, an HTTP client, the task-leak check on
every async test, and CTranslate2's kernels pinned. Nothing here loads a model or a server."""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from pipeline.settings import Settings
from testkit.fixtures import Clip, default_fixtures_dir, load_manifest

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


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    # Open rooms: most tests are about calls, not access (tests/test_access.py uses tokens).
    return Settings(cache_dir=tmp_path_factory.mktemp("model-cache"), open_rooms=True)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=60) as client:
        yield client


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
