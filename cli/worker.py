"""A pipeline worker on the Redis Streams bus.

Heavy modules (models, aiortc, FastAPI) are imported inside the commands, so that `--help` and
`dragoman token` start in a tenth of a second.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from typing import Annotated, Any

import typer

from cli.output import err, fail, user_errors
from pipeline.errors import DragomanError
from pipeline.languages import parse_language_list
from pipeline.settings import Settings


def worker(
    redis_url: Annotated[
        str | None,
        typer.Option(help="the bus, e.g. redis://:password@redis:6379/0 [DRAGOMAN_REDIS_URL]"),
    ] = None,
    stages: Annotated[str, typer.Option(help="stages to serve: asr, translate or both")] = (
        "asr,translate"
    ),
    device: Annotated[
        str | None, typer.Option(help="cpu or cuda: ASR, CTranslate2 MT and Kokoro TTS")
    ] = None,
    languages: Annotated[
        str | None, typer.Option(help="serve only these languages, e.g. en,pt (default: all)")
    ] = None,
    worker_id: Annotated[str | None, typer.Option(help="name on the bus (default: random)")] = None,
    metrics_port: Annotated[
        int, typer.Option(min=0, max=65535, help="serve Prometheus /metrics here (0: off)")
    ] = 0,
    metrics_host: Annotated[str, typer.Option(help="address for /metrics")] = "127.0.0.1",
) -> None:
    """A pipeline worker: takes the jobs it can serve from Redis Streams. SIGTERM finishes the
    jobs in hand and leaves; a second signal leaves at once."""

    from pipeline.capabilities import STAGES
    from pipeline.models import shared_models
    from pipeline.worker import Worker

    chosen = tuple(dict.fromkeys(part.strip() for part in stages.split(",") if part.strip()))
    unknown = [stage for stage in chosen if stage not in STAGES]
    if not chosen or unknown:
        raise fail(f"unknown stage(s) {unknown or stages!r}; choose from {', '.join(STAGES)}")
    if device not in (None, "cpu", "cuda"):
        raise fail(f"unknown device {device!r}; choose cpu or cuda")
    overrides: dict[str, Any] = {"redis_url": redis_url, "asr_device": device, "tts_device": device}
    with user_errors():
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
        if settings.redis_url is None:
            raise DragomanError("a worker needs --redis-url or DRAGOMAN_REDIS_URL")
        served = frozenset(parse_language_list(languages)) if languages else None
        err.print("loading models…")
        process = Worker.for_models(
            settings, shared_models(settings), chosen, served, settings.asr_device, worker_id
        )
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr=metrics_host)
    info = process.info
    err.print(
        f"{info.worker_id}: {', '.join(info.stages)} on {info.device}; "
        f"ASR {','.join(info.asr_languages) or '-'}; {len(info.pairs)} translation pairs",
        highlight=False,
    )
    asyncio.run(_run_until_signalled(process.run))


async def _run_until_signalled(run: Callable[[Any], Any]) -> None:
    """Run until SIGTERM/SIGINT; a second signal exits at once."""

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():
            os._exit(1)
        err.print("stopping: finishing the jobs in hand (signal again to quit now)")
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal)
    await run(stop)
