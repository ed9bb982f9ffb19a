"""Errors of the gateway that map to 4xx responses with a clear message."""

from __future__ import annotations


class GatewayError(Exception):
    status_code = 400

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers


class BadRequest(GatewayError):
    status_code = 400


class Unauthorized(GatewayError):
    status_code = 401


class PayloadTooLarge(GatewayError):
    status_code = 413


class Forbidden(GatewayError):
    status_code = 403


class NotFound(GatewayError):
    status_code = 404


class Conflict(GatewayError):
    status_code = 409


class TooMany(GatewayError):
    status_code = 429


class Unavailable(GatewayError):
    status_code = 503


class RoomElsewhere(GatewayError):
    """The room lives on another gateway: 307 keeps the method and body of the join."""

    status_code = 307

    def __init__(self, location: str) -> None:
        super().__init__(f"this room is served at {location}", {"Location": location})
