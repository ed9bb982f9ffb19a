"""Who may enter a room: signed room tokens (JWT, HS256), or explicitly open rooms (development).

A token names one room, an identity, a role (listener, speaker, moderator) and an expiry. The
gateway checks it on join and on every signalling call. A participant removed by a moderator
cannot come back with the same token: its id stays banned until it expires.
"""

from __future__ import annotations

import time
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Literal

import jwt
from pydantic import BaseModel, ValidationError

from pipeline.errors import ConfigurationError
from pipeline.settings import Settings
from server.errors import Forbidden, Unauthorized

Role = Literal["listener", "speaker", "moderator"]
ROLES: tuple[Role, ...] = ("listener", "speaker", "moderator")
ALGORITHM = "HS256"
MIN_SECRET_CHARS = 32
# Secrets copied from examples and tutorials, which an attacker would try first.
KNOWN_SECRETS = {"secret", "changeme", "change-me", "dragoman", "password", "dev", "test"}


@dataclass(frozen=True)
class Grant:
    """What a request may do in a room: as whom, in which role."""

    identity: str | None  # None: an open room, anyone
    role: Role
    token_id: str | None = None
    expires_at: float = 0.0
    name: str | None = None

    @property
    def moderates(self) -> bool:
        return self.role == "moderator"

    @property
    def speaks(self) -> bool:
        return self.role != "listener"


class RoomClaims(BaseModel):
    room: str
    sub: str
    role: Role
    exp: int
    jti: str
    name: str | None = None


@dataclass
class BanList:
    """Token ids removed by moderators, kept until the token would have expired anyway."""

    until: dict[str, float] = field(default_factory=dict)

    def ban(self, token_id: str, expires_at: float) -> None:
        self.until[token_id] = expires_at
        now = time.time()
        for known, expiry in list(self.until.items()):
            if expiry < now:
                del self.until[known]

    def __contains__(self, token_id: str) -> bool:
        return self.until.get(token_id, 0.0) >= time.time()


class Access(ABC):
    """Decides, from a request's Authorization header, what it may do in a room."""

    @abstractmethod
    def admit(self, room_id: str, authorization: str | None) -> Grant:
        """The grant for this room, or Unauthorized (401) / Forbidden (403)."""

    def revoke(self, token_id: str, until: float) -> None:  # noqa: B027 - open rooms: no tokens
        """Refuse this token from now on (a moderator removed its holder)."""


class OpenRooms(Access):
    """Development mode: anyone may enter any room as a speaker; nobody moderates."""

    def admit(self, room_id: str, authorization: str | None) -> Grant:
        return Grant(identity=None, role="speaker")


class RoomTokens(Access):
    def __init__(self, secret: str, banned: BanList | None = None) -> None:
        self._secret = secret
        self.banned = banned or BanList()

    def revoke(self, token_id: str, until: float) -> None:
        self.banned.ban(token_id, until)

    def admit(self, room_id: str, authorization: str | None) -> Grant:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized(
                "this room needs an access token: send 'Authorization: Bearer <token>' "
                "(an invitation link carries one)"
            )
        claims = self._verified(token)
        if claims.room != room_id:
            raise Forbidden("this access token is for another room")
        if claims.jti in self.banned:
            raise Forbidden("a moderator removed you from this room")
        return Grant(claims.sub, claims.role, claims.jti, float(claims.exp), claims.name)

    def _verified(self, token: str) -> RoomClaims:
        try:
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                options={"require": ["exp", "sub", "room", "role", "jti"]},
            )
            return RoomClaims.model_validate(payload)
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the access token expired; ask for a new invitation") from None
        except (jwt.InvalidTokenError, ValidationError):
            raise Unauthorized("the access token is not valid here") from None


def mint(
    secret: str,
    room: str,
    identity: str,
    role: Role,
    ttl_s: int,
    name: str | None = None,
    now: float | None = None,
) -> str:
    issued = int(now if now is not None else time.time())
    claims = {
        "room": room,
        "sub": identity,
        "role": role,
        "iat": issued,
        "exp": issued + ttl_s,
        "jti": uuid.uuid4().hex,
        **({"name": name} if name else {}),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def jwt_secret(settings: Settings) -> str:
    """The signing secret, or a clear error when it is missing or weak."""
    if settings.jwt_secret is None:
        raise ConfigurationError(
            "DRAGOMAN_JWT_SECRET is not set: set it to a random secret (openssl rand -hex 32), "
            "or start with --open-rooms (DRAGOMAN_OPEN_ROOMS=true) for development"
        )
    secret = settings.jwt_secret.get_secret_value()
    if len(secret) < MIN_SECRET_CHARS or secret.lower() in KNOWN_SECRETS:
        raise ConfigurationError(
            f"DRAGOMAN_JWT_SECRET is too weak: use at least {MIN_SECRET_CHARS} random "
            "characters (openssl rand -hex 32)"
        )
    return secret


def access_for(settings: Settings) -> Access:
    """Open rooms only when asked for explicitly; otherwise tokens with a strong secret."""
    return OpenRooms() if settings.open_rooms else RoomTokens(jwt_secret(settings))
