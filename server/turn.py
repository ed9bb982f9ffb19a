"""TURN REST credentials (draft-uberti-behave-turn-rest), as coturn's use-auth-secret expects.

username = "<expiry epoch s>:<user>", credential = base64(HMAC-SHA1(secret, username)).
coturn recomputes the HMAC with its static-auth-secret and refuses the name once expired.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from pipeline.settings import IceServer, Settings


def turn_credentials(secret: str, user: str, ttl_s: int, now: float | None = None) -> IceServer:
    expiry = int(now if now is not None else time.time()) + ttl_s
    username = f"{expiry}:{user}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return IceServer(urls=[], username=username, credential=base64.b64encode(digest).decode())


def ice_servers_for(settings: Settings, user: str) -> list[IceServer]:
    """The configured servers, plus TURN with fresh time-limited credentials when configured."""
    servers = list(settings.ice_servers)
    if settings.turn_urls and settings.turn_secret is not None:
        secret = settings.turn_secret.get_secret_value()
        credentials = turn_credentials(secret, user, settings.turn_ttl_s)
        servers.append(credentials.model_copy(update={"urls": list(settings.turn_urls)}))
    return servers
