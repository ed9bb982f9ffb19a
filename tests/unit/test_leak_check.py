"""The task-leak check itself must catch a leak (so it cannot pass vacuously)."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import no_leaked_tasks


async def test_leak_check_fails_on_a_running_task() -> None:
    checker = no_leaked_tasks.__wrapped__()  # type: ignore[attr-defined]
    await checker.__anext__()
    stray = asyncio.create_task(asyncio.sleep(60))
    with pytest.raises(AssertionError, match="leaked asyncio tasks"):
        await checker.__anext__()
    assert stray.cancelled() or stray.cancelling()
    await asyncio.gather(stray, return_exceptions=True)


async def test_async_tests_get_the_leak_check(request: pytest.FixtureRequest) -> None:
    assert "no_leaked_tasks" in request.fixturenames
