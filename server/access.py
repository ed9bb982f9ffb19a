"""Who may enter a room: signed room tokens (JWT, HS256), or explicitly open rooms (development).

A token names one room, an identity, a role (listener, speaker, moderator) and an expiry. The
gateway checks it on join and on every signalling call. A participant removed by a moderator
cannot come back: its identity is barred from that room for every token issued up to the
removal (a new invitation, issued later, lets it back in).
"""

from __future__ import annotations

import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import jwt
from pydantic import BaseModel, Field, ValidationError

from pipeline.errors import ConfigurationError
from pipeline.settings import Settings
from server.errors import Forbidden, Unauthorized

Role = Literal["listener", "speaker", "moderator"]
ROLES: tuple[Role, ...] = ("listener", "speaker", "moderator")
ALGORITHM = "HS256"
MIN_SECRET_CHARS = 32
# Secrets copied from examples and tutorials, which an attacker would try first.
KNOWN_SECRETS = {"secret", "changeme", "change-me", "dragoman", "password", "dev", "test"}
CLOCK_SKEW_S = 30  # the minting machine's clock may run a little ahead or behind ours
MAX_TTL_S = 30 * 86400  # the longest token `dragoman token` mints; a bar lasts this long


@dataclass(frozen=True)
class Grant:
    """What a request may do in a room: as whom, in which role."""

    identity: str | None  # None: an open room, anyone
    role: Role
    token_id: str | None = None
    expires_at: float = 0.0
    name: str | None = None
    issued_at: float = 0.0

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
    iat: int = 0  # a token without one counts as issued before any removal
    name: str | None = Field(None, min_length=1, max_length=64)


@dataclass
class BanList:
    """Identities removed from a room by a moderator: every token issued for that identity up
    to the removal is refused, for as long as any such token can live (MAX_TTL_S)."""

    removed_at: dict[tuple[str, str], float] = field(default_factory=dict)
    clock: Callable[[], float] = time.time

    def ban(self, room_id: str, identity: str) -> None:
        now = self.clock()
        self.removed_at[(room_id, identity)] = now
        for key, when in list(self.removed_at.items()):
            if now - when > MAX_TTL_S:
                del self.removed_at[key]

    def refuses(self, room_id: str, identity: str, issued_at: float) -> bool:
        removed = self.removed_at.get((room_id, identity))
        if removed is None or self.clock() - removed > MAX_TTL_S:
            return False
        return issued_at <= removed


class Access(ABC):
    """Decides, from a request's Authorization header, what it may do in a room."""

    @abstractmethod
    def admit(self, room_id: str, authorization: str | None) -> Grant:
        """The grant for this room, or Unauthorized (401) / Forbidden (403)."""

    def revoke(self, room_id: str, grant: Grant) -> None:  # noqa: B027 - open rooms: no tokens
        """A moderator removed this grant's holder: refuse its identity's tokens from now on."""


class OpenRooms(Access):
    """Development mode: anyone may enter any room as a speaker; nobody moderates."""

    def admit(self, room_id: str, authorization: str | None) -> Grant:
        return Grant(identity=None, role="speaker")


class RoomTokens(Access):
    def __init__(self, secret: str, banned: BanList | None = None) -> None:
        self._secret = secret
        self.banned = banned or BanList()

    def revoke(self, room_id: str, grant: Grant) -> None:
        if grant.identity is not None:
            self.banned.ban(room_id, grant.identity)

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
        if self.banned.refuses(room_id, claims.sub, claims.iat):
            raise Forbidden("a moderator removed you from this room")
        return Grant(
            claims.sub, claims.role, claims.jti, float(claims.exp), claims.name, float(claims.iat)
        )

    def _verified(self, token: str) -> RoomClaims:
        try:
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                options={"require": ["exp", "sub", "room", "role", "jti"]},
                leeway=CLOCK_SKEW_S,
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
