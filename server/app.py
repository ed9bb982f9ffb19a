"""The gateway application: FastAPI signalling, rooms, the bus, metrics and the client."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from pipeline.audio import Audio
from pipeline.bus import Bus, InProcessBus, Job, JobResult
from pipeline.cascade import Cascade
from pipeline.errors import DragomanError
from pipeline.events import CaptionFinal, TranslationStatus
from pipeline.languages import LANGUAGE_NAMES
from pipeline.lipsync.factory import build_lipsyncer
from pipeline.models import Models, segmenter_config
from pipeline.redis_bus import RedisBus
from pipeline.settings import Settings
from pipeline.speakers import SpeakerEmbedder, speaker_embedder
from server.access import access_for
from server.access_log import AccessLog
from server.api import router
from server.api_docs import mount_docs
from server.directory import RoomDirectory
from server.errors import GatewayError
from server.ice import use_loopback_candidates
from server.limits import AddressRate, BodyLimit
from server.room import RoomContext
from server.rooms import RoomRegistry
from server.security_headers import SecurityHeaders

LOG = logging.getLogger(__name__)
CLIENT_DIR = Path(__file__).resolve().parents[1] / "client"


def served_languages(models: Models) -> list[str]:
    """Languages with a voice and a translation route to at least one other language."""
    planner = models.translator.planner
    pairs = set(planner.available_pairs())
    voices = set(models.voices.languages)
    return [code for code in LANGUAGE_NAMES if code in voices and any(s == code for s, _ in pairs)]


def warm_up(models: Models) -> None:
    """Load every default model and run it once, so the first utterance is not the slow one."""
    models.recognizer.transcribe(np.zeros(16000, dtype=np.float32), "en")
    for language in models.voices.languages:  # each language's default voice, built once
        models.voices.voice(language)
    models.voices.synthesize("ready", "en")
    models.voices.synthesize("pronto", "pt")  # Kokoro's session
    models.translator.translate("ready", "en", "pt")


def fast_voices(models: Models) -> dict[str, str]:
    """Each language's fast voice, where it has one besides its default (a late dub of a
    language that speaks espeak-ng anyway keeps its voice, and is not counted as a fallback)."""
    voices = models.voices
    return {
        language: voices.fallback(language)
        for language in voices.languages
        if voices.fallback(language) != voices.default(language)
    }


def _in_process_bus(settings: Settings, models: Models, sink: ResultSink) -> Bus:
    cascade = Cascade(
        models.recognizer, models.translator, models.voices, settings.asr_min_speech_ratio
    )
    return InProcessBus(
        cascade,
        sink.deliver,
        settings.pipeline_workers,
        settings.bus_queue_size,
        settings.inference_threads,
        on_caption=sink.deliver_caption,
        on_clause=sink.deliver_clause,
        job_timeout_s=settings.bus_job_timeout_s,
        fallback_voices=fast_voices(models),
        fallback_lag_s=settings.tts_fallback_lag_s,
    )


def _redis_bus(settings: Settings, sink: ResultSink) -> Bus:
    assert settings.redis_url is not None
    return RedisBus(
        settings.redis_url,
        settings.gateway_id,
        sink.deliver,
        on_caption=sink.deliver_caption,
        on_status=sink.announce,
        queue_size=settings.bus_queue_size,
        job_timeout_s=settings.bus_job_timeout_s,
        heartbeat_s=settings.bus_heartbeat_s,
        stream_maxlen=settings.bus_stream_maxlen,
    )


class ResultSink:
    """Where the bus hands results: the registry, which exists only once the bus does."""

    registry: RoomRegistry | None = None

    async def deliver(self, done: JobResult) -> None:
        assert self.registry is not None
        await self.registry.deliver(done)

    def deliver_caption(self, job: Job, caption: CaptionFinal) -> None:
        assert self.registry is not None
        self.registry.deliver_caption(job, caption)

    def deliver_clause(self, job: Job, language: str, clause: Audio) -> None:
        assert self.registry is not None
        self.registry.deliver_clause(job, language, clause)

    def announce(self, status: TranslationStatus) -> None:
        if self.registry is not None:
            self.registry.announce(status)


def _embedder(settings: Settings) -> SpeakerEmbedder | None:
    """Speakers' voiceprints, to give each a voice near their own (else the default voices)."""
    try:
        return speaker_embedder(settings.assets_dir)
    except DragomanError as exc:
        LOG.warning("voices are not matched to speakers: %s", exc)
        return None


def _directory(settings: Settings) -> RoomDirectory | None:
    if settings.redis_url is None:
        return None
    public_url = settings.public_url or f"http://{settings.host}:{settings.port}"
    return RoomDirectory(
        settings.redis_url, settings.gateway_id, public_url, settings.bus_heartbeat_s
    )


async def _serve(app: FastAPI, settings: Settings, models: Models) -> AsyncIterator[None]:
    use_loopback_candidates(settings.loopback_only)
    sink = ResultSink()
    if settings.redis_url is None:
        await asyncio.get_running_loop().run_in_executor(None, warm_up, models)
        bus = _in_process_bus(settings, models, sink)
    else:  # the models live on the workers; the gateway runs only VAD
        bus = _redis_bus(settings, sink)
    app.state.languages = served_languages(models)
    media_executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="media")
    lipsync_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lipsync")
    audio_executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="audio")
    syncer = (
        await asyncio.get_running_loop().run_in_executor(None, build_lipsyncer, settings)
        if settings.lipsync
        else None
    )
    embedder = await asyncio.get_running_loop().run_in_executor(None, _embedder, settings)
    context = RoomContext(
        settings,
        bus,
        media_executor,
        segmenter_config(settings),
        syncer,
        lipsync_executor,
        audio_executor,
        voiceprint=embedder.voiceprint if embedder is not None else None,
    )
    registry = RoomRegistry(context, _directory(settings))
    sink.registry = registry
    app.state.registry = registry
    app.state.bus = bus
    await registry.start()
    await bus.start()
    try:
        yield
    finally:
        # Shutdown: stop joins and tell everyone, finish or fail every pending final, close.
        registry.begin_drain(settings.drain_timeout_s)
        await registry.flush_all()
        await bus.stop(settings.drain_timeout_s)
        await registry.close_all()
        media_executor.shutdown(wait=True)
        lipsync_executor.shutdown(wait=True)
        audio_executor.shutdown(wait=True)


def create_app(settings: Settings, models: Models | None = None) -> FastAPI:
    """The app; `models` may be shared (tests), else loaded for these settings."""
    loaded = models or Models(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async for _ in _serve(app, settings, loaded):
            yield

    app = FastAPI(
        title="Dragoman", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None
    )
    app.state.settings = settings
    app.state.access = access_for(settings)  # a missing or weak secret stops start-up here
    app.state.join_rate = AddressRate(settings.joins_per_ip_per_minute, "joins")
    app.state.entry_rate = AddressRate(settings.entries_per_ip_per_minute, "entry lookups")
    # Starlette runs the last added outermost: proxy headers, then the log, headers, limits.
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(AccessLog)
    if settings.trusted_proxies:
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    app.include_router(router)
    mount_docs(app)
    app.add_exception_handler(GatewayError, _gateway_error)
    app.add_exception_handler(DragomanError, _dragoman_error)
    app.add_exception_handler(RequestValidationError, _validation_error)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    if (CLIENT_DIR / "index.html").exists():
        app.mount("/", StaticFiles(directory=CLIENT_DIR, html=True), name="client")
    return app


async def _gateway_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GatewayError)
    return JSONResponse({"detail": exc.message}, status_code=exc.status_code, headers=exc.headers)


async def _dragoman_error(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=400)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"] if part != "body") or "body"
        problems.append(f"{where}: {error['msg']}")
    too_large = any(error["type"] == "too_large" for error in exc.errors())
    return JSONResponse(
        {"detail": "; ".join(problems)[:500]}, status_code=413 if too_large else 422
    )
