"""The access log: method, path, status and time of every request, never its query string.

An invitation link is `/?room=R&token=<JWT>`: uvicorn's own access log would write the token.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOG = logging.getLogger("dragoman.access")


class AccessLog:
    """ASGI middleware: one INFO line per HTTP request, without the query string."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            client = scope.get("client")
            LOG.info(
                '%s "%s %s" %d %.1f ms',
                client[0] if client else "-",
                scope["method"],
                scope["path"],  # the path alone: a query string may carry a token
                status,
                (time.perf_counter() - started) * 1000,
            )
