"""Errors of the gateway that map to 4xx responses with a clear message."""

from __future__ import annotations


class GatewayError(Exception):
    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(GatewayError):
    status_code = 400


class Forbidden(GatewayError):
    status_code = 403


class NotFound(GatewayError):
    status_code = 404


class Conflict(GatewayError):
    status_code = 409


class TooMany(GatewayError):
    status_code = 429
