"""Owning tasks: cancel_and_wait swallows only the task's own cancellation, a TaskSet stops its
tasks (but not the one stopping it), KeyedLocks serialise per key and forget idle keys."""

from __future__ import annotations

import asyncio

import pytest

from pipeline.tasks import KeyedLocks, TaskSet, cancel_and_wait


async def test_cancel_and_wait_ends_the_task_and_swallows_its_cancellation() -> None:
    task = asyncio.create_task(asyncio.sleep(3600))
    await cancel_and_wait(task)
    assert task.cancelled()
    await cancel_and_wait(None)


async def test_cancel_and_wait_reraises_a_cancellation_aimed_at_the_caller() -> None:
    stubborn_started = asyncio.Event()

    async def stubborn() -> None:
        stubborn_started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await asyncio.sleep(10)  # takes its time to clean up

    inner = asyncio.create_task(stubborn())
    await stubborn_started.wait()
    caller = asyncio.create_task(cancel_and_wait(inner))
    await asyncio.sleep(1)
    caller.cancel()  # the caller itself is cancelled while it waits
    with pytest.raises(asyncio.CancelledError):
        await caller
    await cancel_and_wait(inner)


async def test_cancel_and_wait_passes_on_the_tasks_own_error() -> None:
    async def broken() -> None:
        raise RuntimeError("boom")

    task = asyncio.create_task(broken())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="boom"):
        await cancel_and_wait(task)


async def test_a_task_set_forgets_finished_tasks_and_stops_the_rest() -> None:
    tasks = TaskSet()
    tasks.spawn(asyncio.sleep(1), "short")
    long = tasks.spawn(asyncio.sleep(3600), "long")
    await asyncio.sleep(2)
    assert list(tasks) == [long]
    await tasks.cancel_all()
    assert long.cancelled() and len(tasks) == 0


async def test_a_task_may_stop_the_set_that_owns_it() -> None:
    tasks = TaskSet()
    other = tasks.spawn(asyncio.sleep(3600), "other")

    async def stop_all() -> None:
        await tasks.cancel_all()

    own = tasks.spawn(stop_all(), "stopper")
    await own
    assert other.cancelled() and not own.cancelled()


async def test_finish_lets_tasks_end_then_cancels_stragglers() -> None:
    tasks = TaskSet()
    quick = tasks.spawn(asyncio.sleep(1), "quick")
    slow = tasks.spawn(asyncio.sleep(3600), "slow")
    await tasks.finish(timeout_s=5)
    assert quick.done() and not quick.cancelled() and slow.cancelled()


async def test_keyed_locks_serialise_one_key_and_forget_it_when_idle() -> None:
    locks = KeyedLocks()
    order: list[str] = []

    async def hold(key: str, name: str, seconds: float) -> None:
        async with locks.hold(key):
            order.append(f"{name}+")
            await asyncio.sleep(seconds)
            order.append(f"{name}-")

    await asyncio.gather(hold("ana", "a1", 2), hold("ana", "a2", 1), hold("ben", "b", 1))
    assert order.index("a1-") < order.index("a2+")  # one at a time for ana
    assert order.index("b+") < order.index("a1-")  # ben does not wait for ana
    assert len(locks) == 0
