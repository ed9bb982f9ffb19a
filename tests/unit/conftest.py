"""The unit tier: scripted fakes, virtual time (looptime: every sleep is instant and exact),
no model, no network. `make check` runs it."""

from __future__ import annotations

from pathlib import Path

import pytest

UNIT = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(UNIT):
            item.add_marker(pytest.mark.looptime)
