"""The server's Prometheus metrics, scraped over HTTP: snapshots and a sampled time series.

The server is the gateway and, with Redis, its pipeline workers: each serves its own /metrics,
and their samples add up (the stages run in the workers, and each counts its own CPU).
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families

Snapshot = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str, timeout_s: float = 5.0) -> Snapshot:
    """Every sample of /metrics, keyed by (sample name, sorted labels)."""
    return parse(httpx.get(f"{url}/metrics", timeout=timeout_s).text)


def parse(text: str) -> Snapshot:
    """Every sample of a Prometheus text exposition."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): float(sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def combined(snapshots: Iterable[Snapshot]) -> Snapshot:
    """Several processes' samples as one: the values of the same sample and labels add up."""
    summed: Snapshot = defaultdict(float)
    for snapshot in snapshots:
        for key, value in snapshot.items():
            summed[key] += value
    return dict(summed)


def scrape_all(urls: Sequence[str], timeout_s: float = 5.0) -> Snapshot:
    """The gateway's and the workers' /metrics, combined (httpx.HTTPError if one is down)."""
    return combined(scrape(url, timeout_s) for url in urls)


def total(snapshot: Snapshot, name: str, **labels: str) -> float:
    """Sum of the samples called `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(
        value
        for (sample, keys), value in snapshot.items()
        if sample == name and wanted <= set(keys)
    )


def delta(after: Snapshot, before: Snapshot, name: str, **labels: str) -> float:
    return total(after, name, **labels) - total(before, name, **labels)


@dataclass
class Sampler:
    """Samples the server's resident memory and CPU once a second, in a thread, until stopped
    (gateway and workers together)."""

    urls: Sequence[str]
    period_s: float = 1.0
    series: list[tuple[float, float, float]] = field(default_factory=list)  # (t, rss MB, cpu s)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="metrics-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        started = time.monotonic()
        while not self._stop.is_set():
            try:
                snapshot = scrape_all(self.urls)
            except httpx.HTTPError:
                snapshot = {}
            if snapshot:
                rss = total(snapshot, "process_resident_memory_bytes") / 2**20
                cpu = total(snapshot, "process_cpu_seconds_total")
                self.series.append((time.monotonic() - started, rss, cpu))
            self._stop.wait(self.period_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
