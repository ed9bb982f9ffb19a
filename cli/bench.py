"""`dragoman bench …`: benchmarks that print their figures (JSON with --json).

Heavy modules (models, aiortc, FastAPI) are imported inside the commands, so that `--help` and
`dragoman token` start in a tenth of a second.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn

from bench.steps import Step
from cli.output import err, fail, load_settings, print_figures, user_errors
from pipeline.settings import Settings

bench_app = typer.Typer(
    help="Benchmarks that print their figures (JSON with --json).", no_args_is_help=True
)


BenchRun = Callable[[Settings, Any, list[Any], Step], dict[str, Any]]


def _run_bench(
    title: str,
    fixtures: Path | None,
    as_json: bool,
    run: BenchRun,
    per_language: int = 0,
    kind: str = "speech/",
) -> None:
    """Load settings, models and fixture clips, run one benchmark with a live step line, print."""
    from pipeline.models import shared_models
    from testkit.fixtures import default_fixtures_dir, first_per_language, load_manifest

    settings = load_settings()
    with user_errors():
        clips = load_manifest(fixtures or default_fixtures_dir(), kind)
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
    print_figures(figures, as_json, title)


@bench_app.command("pipeline")
def bench_pipeline_command(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    fixtures: Annotated[Path | None, typer.Option(help="folder with manifest.csv")] = None,
    per_language: Annotated[int, typer.Option(help="clips per language (0 = all)")] = 0,
) -> None:
    """Per-stage medians and τ on the speech fixtures."""
    from bench.pipeline import bench_pipeline

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
    peer_clips: Annotated[
        Path | None,
        typer.Option(
            "--peer-clips",
            help="any folder of clips with a manifest.csv (file, language, duration_s, "
            "transcript, speakers): its English clips are said instead of the fixtures",
        ),
    ] = None,
) -> None:
    """Real calls on 127.0.0.1: caption, live-caption and audio latency, lost finals, work per
    room size."""

    from bench.call import bench_call

    _run_bench(
        "bench call",
        peer_clips or fixtures,
        as_json,
        lambda settings, models, clips, step: asyncio.run(
            bench_call(settings, models, clips, step, crowd)
        ),
        kind="" if peer_clips else "speech/",
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
    from bench.lipsync import bench_lipsync
    from testkit.fixtures import default_fixtures_dir

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
    from bench.bus import bench_bus
    from testkit.redis_server import RedisUnavailableError

    try:
        with Progress(TextColumn("{task.description}"), console=err, transient=True) as bar:
            task = bar.add_task("bench bus")
            figures = bench_bus(
                redis_url, lambda text: bar.update(task, description=text), jobs, burst
            )
    except RedisUnavailableError as exc:
        raise fail(str(exc)) from None
    print_figures(figures, as_json, "bench bus")
