"""`dragoman loadtest`: rooms of synthetic participants against a server.

Heavy modules (models, aiortc, FastAPI) are imported inside the commands, so that `--help` and
`dragoman token` start in a tenth of a second.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from cli.output import err, fail, user_errors
from pipeline.languages import parse_language_list


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
    worker_metrics: Annotated[
        str,
        typer.Option(
            help="with --url to a gateway with Redis workers: their /metrics base URLs, e.g. "
            "http://127.0.0.1:9101 (dragoman worker --metrics-port), for stage figures and CPU"
        ),
    ] = "",
) -> None:
    """Rooms of synthetic participants speaking fixture speech; latency, losses, cost, memory.
    With --url, participants carry room tokens signed with DRAGOMAN_JWT_SECRET when it is set."""
    from loadtest.runner import MODES, LoadConfig, LoadTestError, parse_slo, run
    from testkit.fixtures import default_fixtures_dir

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
                worker_metrics=[u.strip() for u in worker_metrics.split(",") if u.strip()],
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
