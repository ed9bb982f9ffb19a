"""Limits on what clients may send: request bodies, requests per address, DataChannel messages."""

from __future__ import annotations

import json
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import Counter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.errors import TooMany

REJECTED = Counter("dragoman_requests_limited_total", "Requests refused by a limit", ["limit"])
DATACHANNEL_DROPPED = Counter(
    "dragoman_datachannel_dropped_total", "Client DataChannel messages dropped", ["reason"]
)


class BodyLimit:
    """ASGI middleware: a request body over `max_bytes` gets 413 before the app reads it.

    The body is read here (bounded) and replayed, so chunked bodies without a Content-Length
    are bounded as well.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        REJECTED.labels("body_size").inc()
        detail = json.dumps({"detail": f"request body over {self.max_bytes} bytes"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": detail})


@dataclass
class AddressRate:
    """At most `per_minute` requests of one kind (`what`) per client address in any sliding
    minute, with bounded memory: the least recently seen addresses are forgotten first."""

    per_minute: int
    what: str = "joins"
    max_addresses: int = 10_000
    clock: Callable[[], float] = time.monotonic
    _seen: OrderedDict[str, deque[float]] = field(default_factory=OrderedDict)

    def check(self, address: str) -> None:
        now = self.clock()
        times = self._seen.pop(address, None) or deque()
        while times and now - times[0] >= 60.0:
            times.popleft()
        self._seen[address] = times  # most recent last, so the oldest address goes first
        if len(times) >= self.per_minute:
            REJECTED.labels(f"{self.what}_per_ip").inc()
            raise TooMany(
                f"too many {self.what} from your address ({self.per_minute} a minute); "
                "try again shortly"
            )
        times.append(now)
        while len(self._seen) > self.max_addresses:
            self._seen.popitem(last=False)


@dataclass(eq=False)  # the event emitter keeps handlers in a set: identity hashing
class MessageGuard:
    """Client DataChannel messages: each at most `max_bytes`, at most `per_second` a second.

    The gateway needs nothing from clients on the channel, so excess is dropped and counted;
    a client that keeps flooding is disconnected (`on_abuse`).
    """

    on_abuse: Callable[[], None]
    max_bytes: int = 4096
    per_second: int = 20
    abuse_after: int = 200
    clock: Callable[[], float] = time.monotonic
    _window_start: float = 0.0
    _in_window: int = 0
    violations: int = 0

    def __call__(self, message: str | bytes) -> None:
        now = self.clock()
        if now - self._window_start >= 1.0:
            self._window_start, self._in_window = now, 0
        self._in_window += 1
        size = len(message.encode() if isinstance(message, str) else message)
        reason = (
            "too_large"
            if size > self.max_bytes
            else "too_many"
            if self._in_window > self.per_second
            else None
        )
        if reason is None:
            return
        DATACHANNEL_DROPPED.labels(reason).inc()
        self.violations += 1
        if self.violations == self.abuse_after:
            self.on_abuse()
