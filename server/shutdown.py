"""Graceful drain on SIGTERM/SIGINT: the first signal drains, a second one exits at once."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from types import FrameType

import uvicorn
from fastapi import FastAPI

from pipeline.settings import Settings
from server.http_server import server_config

LOG = logging.getLogger(__name__)
EXIT_AT_ONCE = 130


class DrainingServer(uvicorn.Server):
    """uvicorn, told about the rooms: on the first signal participants hear `server.closing`
    right away and joins are refused, while pending translations finish (the app's lifespan
    shutdown bounds that by `drain_timeout_s`). A second signal ends the process at once."""

    def __init__(self, config: uvicorn.Config, app: FastAPI, settings: Settings) -> None:
        super().__init__(config)
        self._app = app
        self._settings = settings
        self._loop: asyncio.AbstractEventLoop | None = None
        self._signals = 0

    async def serve(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)  # type: ignore[arg-type]

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals > 1:
            sys.stderr.write("second signal: exiting now, pending translations are lost\n")
            sys.stderr.flush()
            os._exit(EXIT_AT_ONCE)
        sys.stderr.write("draining: no new joins; finishing pending translations\n")
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._begin_drain)
        super().handle_exit(sig, frame)

    def _begin_drain(self) -> None:
        registry = getattr(self._app.state, "registry", None)
        if registry is not None:
            registry.begin_drain(self._settings.drain_timeout_s)

    @property
    def threads_stuck(self) -> int:
        """Inference threads abandoned in a stuck stage; they would keep the process alive."""
        bus = getattr(self._app.state, "bus", None)
        return int(getattr(bus, "abandoned_threads", 0))


def run(app: FastAPI, settings: Settings) -> None:
    """Serve until a signal, drain, exit (hard, when a stuck stage holds a thread)."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = server_config(
        app,
        settings,
        log_level="info",
        timeout_graceful_shutdown=max(1, round(settings.drain_timeout_s / 4)),
    )
    server = DrainingServer(config, app, settings)
    server.run()
    if server.threads_stuck:
        LOG.warning("%d inference threads are stuck; exiting without them", server.threads_stuck)
        sys.stderr.flush()
        os._exit(1)
