"""The `dragoman` command line."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipeline.errors import DragomanError
from pipeline.languages import normalize_language, parse_language_list
from pipeline.settings import Settings

app = typer.Typer(help="Dragoman: self-hosted real-time speech translation.", no_args_is_help=True)
bench_app = typer.Typer(
    help="Benchmarks that print their figures (JSON with --json).", no_args_is_help=True
)
app.add_typer(bench_app, name="bench")
err = Console(stderr=True)
out = Console()


def fail(message: str) -> typer.Exit:
    """Print a one-line error and return the exit to raise (code 2)."""
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def _setting_problem(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        name = "_".join(str(part) for part in error["loc"])
        problems.append(f"DRAGOMAN_{name.upper()}: {error['msg']}" if name else error["msg"])
    return "invalid setting " + "; ".join(problems)


@contextmanager
def user_errors() -> Iterator[None]:
    """Errors a user can act on become one line on stderr and exit code 2, never a traceback."""
    try:
        yield
    except ValidationError as exc:
        raise fail(_setting_problem(exc)) from None
    except SettingsError as exc:  # e.g. a list setting that is not JSON
        raise fail(
            f"invalid setting: {exc}; lists and maps are JSON, e.g. '[\"bergamot\"]'"
        ) from None
    except DragomanError as exc:
        raise fail(str(exc)) from None


def load_settings() -> Settings:
    with user_errors():
        return Settings()


@app.command()
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


@app.command()
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


@app.command()
def worker(
    redis_url: Annotated[
        str | None,
        typer.Option(help="the bus, e.g. redis://:password@redis:6379/0 [DRAGOMAN_REDIS_URL]"),
    ] = None,
    stages: Annotated[str, typer.Option(help="stages to serve: asr, translate or both")] = (
        "asr,translate"
    ),
    device: Annotated[
        str | None, typer.Option(help="cpu or cuda (ASR, and CTranslate2 MT) [DRAGOMAN_ASR_DEVICE]")
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
    import asyncio
    import logging

    from pipeline.capabilities import STAGES
    from pipeline.models import shared_models
    from pipeline.worker import Worker

    chosen = tuple(dict.fromkeys(part.strip() for part in stages.split(",") if part.strip()))
    unknown = [stage for stage in chosen if stage not in STAGES]
    if not chosen or unknown:
        raise fail(f"unknown stage(s) {unknown or stages!r}; choose from {', '.join(STAGES)}")
    if device not in (None, "cpu", "cuda"):
        raise fail(f"unknown device {device!r}; choose cpu or cuda")
    overrides: dict[str, Any] = {"redis_url": redis_url, "asr_device": device}
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
    import asyncio
    import os
    import signal

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


@app.command()
def translate(
    input_file: Annotated[
        Path, typer.Argument(metavar="INPUT", help="any audio or video file PyAV reads")
    ],
    to: Annotated[str, typer.Option("--to", help="target languages, comma-separated (e.g. pt,es)")],
    source: Annotated[str, typer.Option("--from", help="the speaker's language")] = "en",
    out_dir: Annotated[Path, typer.Option("--out", help="output folder")] = Path("out"),
    lipsync: Annotated[
        bool, typer.Option(help="for a video input: an MP4 per language, lips following the dub")
    ] = True,
) -> None:
    """Translate recorded speech: per target language a WAV, WebVTT captions and, for a video,
    a lip-synced MP4; report.json for all."""
    from pipeline.lipsync.factory import build_lipsyncer
    from pipeline.models import shared_models
    from pipeline.offline import input_duration_s, translate_file, write_outputs
    from pipeline.offline_video import has_video

    settings = load_settings()
    with user_errors():
        source_language = normalize_language(source)
        targets = parse_language_list(to)
        if source_language in targets:
            raise DragomanError(
                f"target {source_language} is the source language; choose other targets"
            )
        models = shared_models(settings)
        total = input_duration_s(input_file) if input_file.is_file() else 0.0
        with _progress(total) as advance:
            outcome = translate_file(input_file, source_language, targets, models, advance)
        syncer = build_lipsyncer(settings) if lipsync and has_video(input_file) else None
        with _status("writing") as show:
            written = write_outputs(outcome, out_dir, settings.tts_sample_rate, syncer, show)
    if not outcome.results:
        err.print("no speech found: no captions written")
    err.print(
        f"{len(outcome.results)} segments, {outcome.speech_s:.1f} s of speech, "
        f"τ={outcome.tau:.2f}; "
        f"wrote {', '.join(p.name for p in written)} to {out_dir}",
        highlight=False,
    )


@contextmanager
def _status(action: str) -> Iterator[Callable[[str], None]]:
    """A spinner naming the language being written (lip-synced video takes a while)."""
    with err.status(action) as status:
        yield lambda language: status.update(f"{action} {language}")


@contextmanager
def _progress(total_s: float) -> Iterator[Any]:
    columns = (
        TextColumn("translating"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f} s"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=True, disable=total_s < 30) as progress:
        task = progress.add_task("translate", total=max(total_s, 1.0))
        yield lambda seconds: progress.update(task, completed=min(seconds, total_s))


@app.command()
def models(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """What is installed and usable: stages, backends, languages, MT routes, model origins."""
    from pipeline.inventory import inventory

    settings = load_settings()
    with user_errors():
        found = inventory(settings)
    if as_json:
        out.print_json(json.dumps(found))
        return
    _print_inventory(found)


def _print_inventory(found: dict[str, Any]) -> None:
    table = Table("stage", "backend", "languages", "origin", title="Models")
    for row in found["stages"]:
        table.add_row(row["stage"], row["backend"], ", ".join(row["languages"]), row["origin"])
    out.print(table)
    routes = Table("pair", "route", "estimated quality", title="MT routes")
    for route in found["routes"]:
        routes.add_row(route["pair"], route["route"], f"{route['quality']:.2f}")
    out.print(routes)


BenchRun = Callable[[Settings, Any, list[Any], Callable[[str], None]], dict[str, Any]]


def _run_bench(
    title: str, fixtures: Path | None, as_json: bool, run: BenchRun, per_language: int = 0
) -> None:
    """Load settings, models and fixture clips, run one benchmark with a live step line, print."""
    from pipeline.fixtures import default_fixtures_dir, first_per_language, load_manifest
    from pipeline.models import shared_models

    settings = load_settings()
    with user_errors():
        clips = load_manifest(fixtures or default_fixtures_dir())
        if per_language:
            clips = first_per_language(clips, per_language)
        with Progress(
            TextColumn("{task.description}"), BarColumn(), console=err, transient=True
        ) as progress:
            task = progress.add_task(title, total=None)
            figures = run(
                settings,
                shared_models(settings),
                clips,
                lambda s: progress.update(task, description=s),
            )
    _print_figures(figures, as_json, title)


@bench_app.command("pipeline")
def bench_pipeline_command(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    fixtures: Annotated[Path | None, typer.Option(help="folder with manifest.csv")] = None,
    per_language: Annotated[int, typer.Option(help="clips per language (0 = all)")] = 0,
) -> None:
    """Per-stage medians and τ on the speech fixtures."""
    from pipeline.bench import bench_pipeline

    _run_bench(
        "bench pipeline",
        fixtures,
        as_json,
        lambda _, models, clips, step: bench_pipeline(models, clips, step),
        per_language,
    )


@bench_app.command("call")
def bench_call_command(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    fixtures: Annotated[Path | None, typer.Option(help="folder with manifest.csv")] = None,
    crowd: Annotated[int, typer.Option(help="listeners in the large room")] = 20,
) -> None:
    """Real calls on 127.0.0.1: caption and audio latency, lost finals, work per room size."""
    import asyncio

    from loadtest.bench_call import bench_call

    _run_bench(
        "bench call",
        fixtures,
        as_json,
        lambda settings, models, clips, step: asyncio.run(
            bench_call(settings, models, clips, step, crowd)
        ),
    )


@bench_app.command("lipsync")
def bench_lipsync_command(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    fixtures: Annotated[
        Path | None, typer.Option(help="folder with manifest.csv and face/")
    ] = None,
    target: Annotated[str, typer.Option(help="language the GRID clips are dubbed into")] = "pt",
) -> None:
    """Lip-sync: ms per 640x480 frame on one thread, and τ of ASR+MT+TTS+lip-sync on GRID."""
    from pipeline.fixtures import default_fixtures_dir
    from pipeline.lipsync.bench import bench_lipsync

    face_dir = (fixtures or default_fixtures_dir()) / "face"
    _run_bench(
        "bench lipsync",
        fixtures,
        as_json,
        lambda _, models, clips, step: bench_lipsync(models, face_dir, step, target),
    )


@bench_app.command("bus")
def bench_bus_command(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    redis_url: Annotated[
        str | None, typer.Option(help="an existing Redis (default: start a private redis-server)")
    ] = None,
    jobs: Annotated[int, typer.Option(min=10, max=100_000, help="jobs timed one at a time")] = 500,
    burst: Annotated[int, typer.Option(min=10, max=9000, help="jobs for throughput")] = 2000,
) -> None:
    """The Redis hop: added latency per job (20 KB audio) and jobs/s, with trivial work."""
    from loadtest.bench_bus import bench_bus
    from loadtest.redis_server import RedisUnavailableError

    try:
        with Progress(TextColumn("{task.description}"), console=err, transient=True) as bar:
            task = bar.add_task("bench bus")
            figures = bench_bus(
                redis_url, lambda text: bar.update(task, description=text), jobs, burst
            )
    except RedisUnavailableError as exc:
        raise fail(str(exc)) from None
    _print_figures(figures, as_json, "bench bus")


@app.command()
def loadtest(
    url: Annotated[
        str | None, typer.Option(help="a running server; default: start one on 127.0.0.1")
    ] = None,
    rooms: Annotated[int, typer.Option(min=1, max=200)] = 2,
    participants: Annotated[int, typer.Option(min=2, max=500, help="per room")] = 3,
    languages: Annotated[str, typer.Option(help="mix, assigned round-robin")] = "en,pt,es",
    duration: Annotated[
        float, typer.Option(min=5, max=3600, help="seconds of conversation")
    ] = 30.0,
    mode: Annotated[
        str, typer.Option(help="turn_taking or all_pairs (the naive baseline)")
    ] = "turn_taking",
    sweep: Annotated[str, typer.Option(help="e.g. 2,4,8,16: both modes at each N")] = "",
    speech_dir: Annotated[Path | None, typer.Option(help="clips with a manifest.csv")] = None,
    slo: Annotated[str, typer.Option(help="e.g. caption_p95=2.0,lost=0; exit 1 when missed")] = "",
    out: Annotated[Path, typer.Option(help="writes summary.json and report.html")] = Path(
        "out/loadtest"
    ),
    processes: Annotated[
        int, typer.Option(min=0, max=32, help="load processes (0: automatic)")
    ] = 0,
    ramp: Annotated[float, typer.Option(min=0.1, max=100, help="joins per second")] = 5.0,
    speakers: Annotated[
        int, typer.Option(min=0, help="only the first N of a room talk (0: all)")
    ] = 0,
    overlap: Annotated[
        float, typer.Option(min=0, max=1, help="chance a second speaker starts at once")
    ] = 0.25,
) -> None:
    """Rooms of synthetic participants speaking fixture speech; latency, losses, cost, memory.
    With --url, participants carry room tokens signed with DRAGOMAN_JWT_SECRET when it is set."""
    from loadtest.runner import MODES, LoadConfig, LoadTestError, parse_slo, run
    from pipeline.fixtures import default_fixtures_dir

    with user_errors():
        try:
            if mode not in MODES:
                raise LoadTestError(f"unknown mode {mode!r}; choose {' or '.join(MODES)}")
            config = LoadConfig(
                url=url,
                rooms=rooms,
                participants=participants,
                languages=parse_language_list(languages),
                duration_s=duration,
                mode=mode,
                sweep=[int(n) for n in sweep.split(",") if n.strip()],
                speech_dir=speech_dir or default_fixtures_dir(),
                slo=parse_slo(slo),
                out=out,
                processes=processes,
                ramp_per_s=ramp,
                speakers=speakers,
                overlap=overlap,
                token_secret=os.environ.get("DRAGOMAN_JWT_SECRET") or None,
            )
            if any(n < 2 for n in config.sweep):
                raise LoadTestError("--sweep sizes must be at least 2")
            data = run(config, err)
        except (LoadTestError, ValueError) as exc:
            raise fail(str(exc)) from None
    err.print(f"wrote {out / 'summary.json'} and {out / 'report.html'}", highlight=False)
    if not data["slo"]["passed"]:
        err.print("SLO missed: " + "; ".join(data["slo"]["failures"]), highlight=False)
        raise typer.Exit(code=1)


def _print_figures(figures: dict[str, Any], as_json: bool, title: str) -> None:
    if as_json:
        sys.stdout.write(json.dumps(figures) + "\n")
        return
    table = Table("figure", "value", title=title)
    for key, value in figures.items():
        table.add_row(key, json.dumps(value))
    out.print(table)


if __name__ == "__main__":  # pragma: no cover
    app()
