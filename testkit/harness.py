"""Run a gateway inside the current event loop on 127.0.0.1 (tests, benchmarks, load tests)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import uvicorn

from pipeline.models import Models
from pipeline.settings import Settings
from server.app import create_app
from server.http_server import server_config
from server.ice import use_loopback_candidates


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.asynccontextmanager
async def local_gateway(settings: Settings, models: Models | None = None) -> AsyncIterator[str]:
    """Serve the app on a free loopback port; yields its base URL; shuts down gracefully."""
    port = free_port()
    local = settings.model_copy(update={"host": "127.0.0.1", "port": port, "loopback_only": True})
    config = server_config(create_app(local, models), local, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(), name="gateway")
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def serving(settings: Settings, models: Models | None = None) -> AsyncIterator[str]:
    """A real gateway on a free 127.0.0.1 port, this process offering only loopback ICE
    candidates too (its peers stay on 127.0.0.1)."""
    use_loopback_candidates(True)
    try:
        async with local_gateway(settings, models) as url:
            yield url
    finally:
        use_loopback_candidates(False)
