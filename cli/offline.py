"""Offline tools: translate a recording, and list the models this machine can run.

Heavy modules (models, aiortc, FastAPI) are imported inside the commands, so that `--help` and
`dragoman token` start in a tenth of a second.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench.steps import Step
from cli.output import err, load_settings, out, user_errors
from pipeline.errors import DragomanError
from pipeline.languages import normalize_language, parse_language_list


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
def _status(action: str) -> Iterator[Step]:
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


def events_schema() -> None:
    """The JSON schema of the events clients receive (client/events.schema.json is its copy)."""
    from pipeline.events import events_schema as schema

    sys.stdout.write(json.dumps(schema(), indent=2, sort_keys=True) + "\n")


def voices(
    measure: Annotated[
        bool, typer.Option("--measure", help="measure every voice again and write voiceprints.json")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """The voices of each language (the first is its default) and their pitch; a speaker gets
    the one nearest their own voice."""
    from pipeline.models import shared_models
    from pipeline.speakers import read_voiceprints, speaker_embedder
    from pipeline.tts.casting import measure_voiceprints, shipped_voiceprints

    settings = load_settings()
    with user_errors():
        table = shared_models(settings).voices
        if measure:
            engines = {
                spec: table.voice(lang, spec)
                for lang in table.languages
                for spec in table.candidates(lang)
            }
            prints = measure_voiceprints(
                table.specs, engines, speaker_embedder(settings.assets_dir)
            )
            shipped_voiceprints().write_text(
                json.dumps({k: v.as_json() for k, v in sorted(prints.items())}, indent=1) + "\n"
            )
        known = read_voiceprints(shipped_voiceprints())
    listing = {
        language: [
            {"voice": spec, "f0_hz": round(known[spec].f0_hz or 0) if spec in known else None}
            for spec in table.candidates(language)
        ]
        for language in table.languages
    }
    if as_json:
        sys.stdout.write(json.dumps(listing) + "\n")
        return
    rows = Table("language", "voices (first: default)", title="Voices")
    for language, entries in listing.items():
        rows.add_row(language, ", ".join(f"{e['voice']} ({e['f0_hz']} Hz)" for e in entries))
    out.print(rows)
