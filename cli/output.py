"""What every command shares: the consoles, settings from the environment, errors a user can
act on (one line, exit code 2, never a traceback) and figures printed as a table or JSON."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError
from rich.console import Console
from rich.table import Table

from pipeline.errors import DragomanError
from pipeline.settings import Settings

err = Console(stderr=True)
out = Console()


def fail(message: str) -> typer.Exit:
    """Print a one-line error and return the exit to raise (code 2)."""
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def _setting_problem(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        name = "_".join(str(part) for part in error["loc"])
        problems.append(f"DRAGOMAN_{name.upper()}: {error['msg']}" if name else error["msg"])
    return "invalid setting " + "; ".join(problems)


@contextmanager
def user_errors() -> Iterator[None]:
    """Errors a user can act on become one line on stderr and exit code 2, never a traceback."""
    try:
        yield
    except ValidationError as exc:
        raise fail(_setting_problem(exc)) from None
    except SettingsError as exc:  # e.g. a list setting that is not JSON
        raise fail(
            f"invalid setting: {exc}; lists and maps are JSON, e.g. '[\"bergamot\"]'"
        ) from None
    except DragomanError as exc:
        raise fail(str(exc)) from None


def load_settings() -> Settings:
    with user_errors():
        return Settings()


def print_figures(figures: dict[str, Any], as_json: bool, title: str) -> None:
    if as_json:
        sys.stdout.write(json.dumps(figures) + "\n")
        return
    table = Table("figure", "value", title=title)
    for key, value in figures.items():
        table.add_row(key, json.dumps(value))
    out.print(table)
