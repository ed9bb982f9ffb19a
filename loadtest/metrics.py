"""The server's Prometheus metrics, scraped over HTTP: snapshots and a sampled time series."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families

Snapshot = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str, timeout_s: float = 5.0) -> Snapshot:
    """Every sample of /metrics, keyed by (sample name, sorted labels)."""
    text = httpx.get(f"{url}/metrics", timeout=timeout_s).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): float(sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


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
    """Samples the server's resident memory and CPU once a second, in a thread, until stopped."""

    url: str
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
                snapshot = scrape(self.url)
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
