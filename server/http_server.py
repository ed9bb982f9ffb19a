"""How the gateway's HTTP server runs: uvicorn, with a deadline for request headers, no proxy
headers of its own (the app trusts only DRAGOMAN_TRUSTED_PROXIES) and our own access log."""

from __future__ import annotations

import asyncio
from typing import Any

import h11
import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from pipeline.settings import Settings


class HeaderDeadlineProtocol(H11Protocol):
    """HTTP/1.1 whose request headers must be complete `header_read_timeout_s` after the
    connection opens or the previous response ends; a slow client (slowloris) is cut off
    instead of holding a socket."""

    header_read_timeout_s = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._arm_header_deadline()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the headers are in
            self._disarm_header_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        self._header_deadline = self.loop.call_later(
            self.header_read_timeout_s, self._headers_too_slow
        )

    def _disarm_header_deadline(self) -> None:
        deadline, self._header_deadline = getattr(self, "_header_deadline", None), None
        if deadline is not None:
            deadline.cancel()

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def protocol_for(settings: Settings) -> type[HeaderDeadlineProtocol]:
    return type(
        "GatewayHTTP",
        (HeaderDeadlineProtocol,),
        {"header_read_timeout_s": settings.header_read_timeout_s},
    )


def server_config(app: FastAPI, settings: Settings, **options: Any) -> uvicorn.Config:
    """uvicorn's config for this gateway (`options` add to it, e.g. the log level)."""
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=protocol_for(settings),
        proxy_headers=False,
        access_log=False,
        **options,
    )
