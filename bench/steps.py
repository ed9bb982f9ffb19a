"""How a long benchmark reports what it is doing now (the CLI shows it as a live line)."""

from __future__ import annotations

from collections.abc import Callable

Step = Callable[[str], None]
