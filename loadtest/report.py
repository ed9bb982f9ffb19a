"""The load test's outputs: summary.json (documented schema) and a self-contained report.html."""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from loadtest.analysis import RunFigures

STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2rem}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:.25rem .5rem;font-size:.85rem}"
    "img{max-width:100%;display:block;margin:1rem 0}"
)
SUMMARY_KEYS = (
    "lost",
    "caption_latency_p50_s",
    "caption_latency_p95_s",
    "pipeline_caption_latency_p50_s",
    "pipeline_caption_latency_p95_s",
    "floor_wait_p50_s",
    "floor_wait_p95_s",
    "audio_latency_p95_s",
    "stalls",
)


def summary(runs: list[RunFigures], config: dict[str, Any], slo: dict[str, Any]) -> dict[str, Any]:
    """Top level: the product mode's (turn-taking) headline figures over all its runs; then
    per mode and participants `cost_per_speech_s` and `pipeline_calls_per_speech_s`; then runs."""
    product = [r for r in runs if r.mode == "turn_taking"] or runs
    headline = max(product, key=lambda r: r.participants * r.rooms)
    top = {key: getattr(headline, key) for key in SUMMARY_KEYS}
    top["lost"] = sum(r.lost for r in runs)
    by_mode: dict[str, dict[str, dict[str, float]]] = {}
    for run in runs:
        entry = by_mode.setdefault(run.mode, {})
        entry[str(run.participants)] = {
            "cost_per_speech_s": run.cost_per_speech_s,
            "pipeline_calls_per_speech_s": run.pipeline_calls_per_speech_s,
            "asr_calls_per_speech_s": run.asr_calls_per_speech_s,
        }
    return {
        **top,
        "cost_per_speech_s": {
            mode: {n: v["cost_per_speech_s"] for n, v in e.items()} for mode, e in by_mode.items()
        },
        "work": by_mode,
        "slo": slo,
        "config": config,
        "runs": [run.as_json() for run in runs],
    }


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def _cost_plot(runs: list[RunFigures]) -> str:
    figure, (cost, calls) = plt.subplots(1, 2, figsize=(11, 4))
    for mode in sorted({r.mode for r in runs}):
        chosen = sorted((r for r in runs if r.mode == mode), key=lambda r: r.participants)
        xs = [r.participants for r in chosen]
        cost.plot(xs, [r.cost_per_speech_s for r in chosen], marker="o", label=mode)
        calls.plot(xs, [r.pipeline_calls_per_speech_s for r in chosen], marker="o", label=mode)
    cost.set(title="server CPU-seconds per speech-second", xlabel="participants per room")
    calls.set(title="pipeline calls (ASR+MT+TTS) per speech-second", xlabel="participants per room")
    for axis in (cost, calls):
        axis.grid(alpha=0.3)
        axis.legend()
    return _png(figure)


def _per_run_plot(
    runs: list[RunFigures],
    points: Callable[[RunFigures], tuple[list[float], list[float]]],
    step: bool,
    **labels: str,
) -> str:
    """One line per run (label: mode and N), from `points(run)` → (xs, ys)."""
    figure, axis = plt.subplots(figsize=(6, 4))
    for run in runs:
        xs, ys = points(run)
        if xs:
            draw = axis.step if step else axis.plot
            draw(xs, ys, label=f"{run.mode} N={run.participants}")
    axis.set(**labels)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    return _png(figure)


def _latency_cdf(run: RunFigures) -> tuple[list[float], list[float]]:
    values = sorted(run.caption_latencies)
    return values, [(i + 1) / len(values) for i in range(len(values))]


def _latency_plot(runs: list[RunFigures]) -> str:
    return _per_run_plot(
        runs,
        _latency_cdf,
        step=True,
        title="end of speech → final caption (CDF)",
        xlabel="seconds",
        ylabel="fraction",
    )


def _rss_plot(runs: list[RunFigures]) -> str:
    return _per_run_plot(
        runs,
        lambda run: ([t for t, _ in run.rss_series], [m for _, m in run.rss_series]),
        step=False,
        title="server resident memory",
        xlabel="seconds into the run",
        ylabel="MB",
    )


def _table(runs: list[RunFigures]) -> str:
    columns = [
        "mode",
        "rooms",
        "participants",
        "spoken_s",
        "utterances",
        "lost",
        "failed",
        "caption_latency_p50_s",
        "caption_latency_p95_s",
        "pipeline_caption_latency_p50_s",
        "pipeline_caption_latency_p95_s",
        "floor_wait_p50_s",
        "floor_wait_p95_s",
        "audio_latency_p95_s",
        "stalls",
        "cost_per_speech_s",
        "pipeline_calls_per_speech_s",
        "rss_mb_max",
        "rss_per_participant_mb",
    ]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(getattr(r, c)))}</td>" for c in columns) + "</tr>"
        for r in runs
    )
    return f"<table><tr>{head}</tr>{rows}</table>"


def write_report(out: Path, runs: list[RunFigures], data: dict[str, Any]) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    summary_path, report_path = out / "summary.json", out / "report.html"
    summary_path.write_text(json.dumps(data, indent=2))
    verdict = (
        "passed"
        if data["slo"].get("passed", True)
        else "FAILED: " + "; ".join(data["slo"]["failures"])
    )
    images = "".join(
        f'<img alt="{alt}" src="data:image/png;base64,{png}">'
        for alt, png in (
            ("cost per speech-second against participants", _cost_plot(runs)),
            ("caption latency CDF", _latency_plot(runs)),
            ("server memory over time", _rss_plot(runs)),
        )
    )
    config = html.escape(json.dumps(data["config"], indent=2))
    page = [
        '<!doctype html><html lang="en"><meta charset="utf-8"><title>Dragoman load test</title>',
        f"<style>{STYLE}</style>",
        f"<h1>Dragoman load test</h1><p>SLO: {html.escape(verdict)}</p>",
        _table(runs),
        images,
        f"<pre>{config}</pre></html>",
    ]
    report_path.write_text("\n".join(page))
    return summary_path, report_path
