"""Limits on what clients send: requests per address, DataChannel messages."""

from __future__ import annotations

import pytest

from server.errors import TooMany
from server.limits import AddressRate, MessageGuard


def test_join_rate_forgets_after_a_minute_and_bounds_its_memory() -> None:
    now = [0.0]
    rate = AddressRate(per_minute=2, max_addresses=3, clock=lambda: now[0])
    rate.check("a")
    rate.check("a")
    with pytest.raises(TooMany):
        rate.check("a")
    now[0] = 60.0
    rate.check("a")
    for address in "bcdef":
        rate.check(address)
    assert len(rate._seen) == 3


def test_datachannel_floods_are_dropped_then_disconnected() -> None:
    now = [0.0]
    closed: list[bool] = []
    guard = MessageGuard(on_abuse=lambda: closed.append(True), abuse_after=5, clock=lambda: now[0])
    for _ in range(20):
        guard("hello")
    assert guard.violations == 0
    guard("x" * 5000)
    assert guard.violations == 1
    for _ in range(10):
        guard("flood")
    assert closed == [True]
    now[0] = 2.0
    guard("fine again")
    assert guard.violations == 1 + 10
