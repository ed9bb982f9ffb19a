"""Running the gateway, and minting the room tokens it checks.

Heavy modules (models, aiortc, FastAPI) are imported inside the commands, so that `--help` and
`dragoman token` start in a tenth of a second.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.output import err, fail, load_settings, out, user_errors
from pipeline.settings import Settings


def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on [DRAGOMAN_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="port [DRAGOMAN_PORT]")] = None,
    loopback_only: Annotated[
        bool | None, typer.Option("--loopback-only", help="only 127.0.0.1 ICE candidates (tests)")
    ] = None,
    redis_url: Annotated[
        str | None,
        typer.Option(
            help="use workers over Redis Streams instead of in-process [DRAGOMAN_REDIS_URL]"
        ),
    ] = None,
    open_rooms: Annotated[
        bool | None,
        typer.Option(
            "--open-rooms",
            help="development: anyone joins any room, no tokens [DRAGOMAN_OPEN_ROOMS]",
        ),
    ] = None,
) -> None:
    """Run the gateway: in-process pipeline workers, or remote workers with --redis-url.
    SIGTERM drains (no new joins, pending translations finish); a second signal exits."""
    from server.app import create_app
    from server.shutdown import run

    overrides: dict[str, Any] = {
        "host": host,
        "port": port,
        "loopback_only": loopback_only,
        "redis_url": redis_url,
        "open_rooms": open_rooms,
    }
    with user_errors():
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
        application = create_app(settings)  # a missing or weak token secret stops here
    if settings.open_rooms:
        err.print("[yellow]open rooms:[/] anyone can join any room (development mode)")
    err.print(
        f"Dragoman on http://{settings.host}:{settings.port} (loading models…)", highlight=False
    )
    run(application, settings)


def token(
    room: Annotated[str, typer.Option(help="the room this token opens")],
    identity: Annotated[str, typer.Option(help="who holds it (one participant)")],
    role: Annotated[str, typer.Option(help="listener, speaker or moderator")] = "speaker",
    ttl: Annotated[int, typer.Option(min=60, max=30 * 86400, help="seconds it is valid")] = 3600,
    name: Annotated[str | None, typer.Option(help="display name carried in the token")] = None,
) -> None:
    """Mint a room access token (signed with DRAGOMAN_JWT_SECRET); prints it on stdout."""
    from server.access import ROLES, jwt_secret, mint
    from server.rooms import ROOM_ID

    if role not in ROLES:
        raise fail(f"unknown role {role!r}; choose from {', '.join(ROLES)}")
    if not ROOM_ID.match(room):
        raise fail("room ids are 1-64 letters, digits, '-' or '_'")
    settings = load_settings()
    with user_errors():
        secret = jwt_secret(settings)
    out.print(mint(secret, room, identity, role, ttl, name), soft_wrap=True)
