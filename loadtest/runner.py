"""`dragoman loadtest`: rooms of synthetic participants against a server, with a report.

Every loop is bounded: joins ramp at a fixed rate, each run has a fixed duration plus a bounded
drain, and worker processes are given a hard deadline.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import queue
import statistics
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.live import Live
from rich.table import Table

from loadtest.analysis import RunFigures, analyse
from loadtest.metrics import Sampler, Snapshot, scrape_all, total
from loadtest.report import summary, write_report
from loadtest.worker import WorkerPlan, worker_entry
from testkit.server_process import LocalServer

SLO_KEYS = {
    "caption_p50": "caption_latency_p50_s",
    "caption_p95": "caption_latency_p95_s",
    "audio_p95": "audio_latency_p95_s",
    "lost": "lost",
    "stalls": "stalls",
    "cost": "cost_per_speech_s",
}
MODES = ("turn_taking", "all_pairs")


class LoadTestError(ValueError):
    """A bad option: reported in one line."""


@dataclass(frozen=True)
class LoadConfig:
    url: str | None
    rooms: int
    participants: int
    languages: list[str]
    duration_s: float
    mode: str
    sweep: list[int]
    speech_dir: Path
    slo: dict[str, float]
    out: Path
    processes: int = 0
    ramp_per_s: float = 5.0
    drain_s: float = 60.0
    seed: int = 7
    speakers: int = 0  # 0: everyone talks (a sweep: one per language)
    overlap: float = 0.25
    token_secret: str | None = None  # --url to a server with tokens: they are minted with it
    # --url to a gateway with Redis workers: where the workers serve /metrics (their stages, CPU)
    worker_metrics: list[str] = field(default_factory=list)


def parse_slo(text: str) -> dict[str, float]:
    """'caption_p95=2.0,lost=0' → {'caption_p95': 2.0, 'lost': 0.0}."""
    limits: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, _, value = part.partition("=")
        if key not in SLO_KEYS:
            raise LoadTestError(f"unknown SLO {key!r}; choose from {', '.join(SLO_KEYS)}")
        try:
            limits[key] = float(value)
        except ValueError:
            raise LoadTestError(f"SLO {key} needs a number, got {value!r}") from None
    return limits


def check_slo(runs: list[RunFigures], limits: dict[str, float]) -> dict[str, Any]:
    """Limits apply to every turn-taking run (the product); all-pairs is only a baseline."""
    failures = []
    for run in [r for r in runs if r.mode == "turn_taking"]:
        for key, limit in limits.items():
            value = getattr(run, SLO_KEYS[key])
            if value is None or value > limit:
                failures.append(f"{key}={value} > {limit} (N={run.participants})")
    return {"limits": limits, "passed": not failures, "failures": failures}


class Progress:
    """Live counters fed by the worker processes."""

    def __init__(self, console: Console) -> None:
        self.queue: Any = multiprocessing.Manager().Queue()
        self.console = console
        self.joined = 0
        self.spoken = 0
        self.latencies: list[float] = []

    def drain(self) -> None:
        with contextlib.suppress(queue.Empty):
            while True:
                kind, value = self.queue.get_nowait()
                if kind == "joined":
                    self.joined += value
                elif kind == "spoken":
                    self.spoken += value
                elif kind == "caption":
                    self.latencies.append(value)

    def table(self, label: str) -> Table:
        table = Table(title=label)
        for column in (
            "participants connected",
            "utterances spoken",
            "captions",
            "caption p50 (s)",
        ):
            table.add_column(column)
        p50 = f"{statistics.median(self.latencies[-200:]):.2f}" if self.latencies else "–"
        table.add_row(str(self.joined), str(self.spoken), str(len(self.latencies)), p50)
        return table


PEERS_PER_PROCESS = 8  # an event loop holds about ten duplex audio peers (DESIGN.md)


def _plans(config: LoadConfig, url: str, participants: int, run_id: str) -> list[WorkerPlan]:
    """Participants spread over processes (a room may span several); joins ramp at the set
    rate; all conversations start together once everyone has joined."""
    members = [(room, number) for number in range(participants) for room in range(config.rooms)]
    processes = config.processes or min(8, -(-len(members) // PEERS_PER_PROCESS))
    # A sweep compares room sizes: the same speakers say the same things at every N, and the
    # participants added are listeners.
    speakers = config.speakers or (len(config.languages) if config.sweep else None)
    start_at = time.time() + len(members) / config.ramp_per_s + 15.0
    return [
        WorkerPlan(
            url,
            run_id,
            members[i::processes],
            participants,
            config.languages,
            config.duration_s,
            config.speech_dir,
            config.seed,
            processes / config.ramp_per_s,
            config.drain_s,
            start_at,
            speakers,
            config.overlap,
            config.token_secret if config.url else None,
        )
        for i in range(processes)
    ]


def _deadline_s(config: LoadConfig, plans: list[WorkerPlan]) -> float:
    return max(0.0, plans[0].start_at - time.time()) + config.duration_s + config.drain_s + 120


def run_once(
    config: LoadConfig, url: str, mode: str, participants: int, console: Console
) -> RunFigures:
    """R rooms × N participants for the configured duration; then the figures of that run."""
    run_id = f"load-{mode[:2]}{participants}-{uuid.uuid4().hex[:6]}"
    plans = _plans(config, url, participants, run_id)
    progress = Progress(console)
    results: Any = multiprocessing.get_context("spawn").Queue()
    servers = _metrics_urls(config, url)
    sampler = Sampler(servers)
    before = scrape_all(servers)
    joined_at: list[Snapshot] = []
    sampler.start()
    label = f"{mode}: {config.rooms} rooms × {participants} participants"
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=worker_entry, args=(plan, progress.queue, results)) for plan in plans
    ]
    for worker in workers:
        worker.start()
    reports: list[dict[str, Any]] = []
    errors: list[str] = []
    finished = 0
    deadline = time.monotonic() + _deadline_s(config, plans)
    with Live(progress.table(label), console=console, refresh_per_second=2, transient=True) as live:
        while finished < len(workers) and time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                kind, value = results.get(timeout=0.5)
                finished += 1
                (reports.extend if kind == "ok" else errors.append)(value)
            progress.drain()
            live.update(progress.table(label))
            if not joined_at and progress.joined >= config.rooms * participants:
                joined_at.append(scrape_all(servers))
    for worker in workers:
        worker.join(timeout=5)
        if worker.is_alive():
            worker.terminate()
    sampler.stop()
    if errors or finished < len(workers):
        missing = (
            f"{len(workers) - finished} of {len(workers)} load processes gave no report in time"
        )
        raise LoadTestError("load test failed: " + ("; ".join(errors) or missing))
    config.out.mkdir(parents=True, exist_ok=True)
    (config.out / f"participants-{mode}-{participants}.json").write_text(json.dumps(reports))
    figures = analyse(
        mode,
        config.rooms,
        participants,
        reports,
        before,
        scrape_all(servers),
        sampler.series,
        config.duration_s,
    )
    if joined_at:
        grown = total(joined_at[0], "process_resident_memory_bytes") - total(
            before, "process_resident_memory_bytes"
        )
        figures.rss_per_participant_mb = round(grown / 2**20 / (config.rooms * participants), 2)
    console.print(
        f"{label}: lost {figures.lost}, caption p50 {figures.caption_latency_p50_s} s, "
        f"p95 {figures.caption_latency_p95_s} s (pipeline p50 "
        f"{figures.pipeline_caption_latency_p50_s} s, p95 {figures.pipeline_caption_latency_p95_s}"
        f" s; floor wait p50 {figures.floor_wait_p50_s} s, p95 {figures.floor_wait_p95_s} s), "
        f"cost {figures.cost_per_speech_s} CPU-s/speech-s",
        highlight=False,
    )
    return figures


def _metrics_urls(config: LoadConfig, gateway: str) -> list[str]:
    """Every process of the server that serves /metrics: the gateway, then its workers."""
    return [gateway, *(u.rstrip("/") for u in config.worker_metrics)]


def _check_metrics(urls: list[str]) -> None:
    for url in urls:
        try:
            httpx.get(f"{url}/metrics", timeout=5).raise_for_status()
        except httpx.HTTPError as exc:
            raise LoadTestError(f"cannot read {url}/metrics: {exc}") from None


@contextlib.contextmanager
def server_for(config: LoadConfig, mode: str) -> Iterator[str]:
    """The operator's server (--url), or one started here in the given mode."""
    if config.url:
        yield config.url.rstrip("/")
        return
    config.out.mkdir(parents=True, exist_ok=True)
    with LocalServer(mode, config.out / f"server-{mode}.log") as server:
        yield server.url


def run(config: LoadConfig, console: Console) -> dict[str, Any]:
    """The whole load test: one run, or both modes at every N of the sweep. Writes the report."""
    if not config.languages:
        raise LoadTestError("no languages given")
    if config.sweep and config.url:
        raise LoadTestError("--sweep starts its own servers (one per mode); leave out --url")
    if config.worker_metrics and not config.url:
        raise LoadTestError("--worker-metrics is for --url: a server started here has no workers")
    modes = MODES if config.sweep else (config.mode,)
    sizes = config.sweep or [config.participants]
    runs: list[RunFigures] = []
    for mode in modes:
        with server_for(config, mode) as url:
            _check_metrics(_metrics_urls(config, url))
            runs += [run_once(config, url, mode, size, console) for size in sizes]
    slo = check_slo(runs, config.slo)
    data = summary(runs, _config_json(config), slo)
    write_report(config.out, runs, data)
    return data


def _config_json(config: LoadConfig) -> dict[str, Any]:
    return {
        "url": config.url or "started by the load tester on 127.0.0.1",
        "rooms": config.rooms,
        "participants": config.participants,
        "languages": config.languages,
        "duration_s": config.duration_s,
        "mode": config.mode,
        "sweep": config.sweep,
        "speech_dir": str(config.speech_dir),
        "speakers": config.speakers,
        "overlap": config.overlap,
        "worker_metrics": config.worker_metrics,
    }
