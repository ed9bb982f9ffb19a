"""The load tester: real runs against a server it starts on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pipeline.settings import Settings

DRAGOMAN = str(Path(sys.executable).with_name("dragoman"))


def loadtest(
    settings: Settings, *args: str, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DRAGOMAN_CACHE_DIR": str(settings.cache_dir), **(extra_env or {})}
    return subprocess.run(
        [DRAGOMAN, "loadtest", *args], capture_output=True, text=True, env=env, timeout=900
    )


def test_short_run_loses_nothing_and_writes_the_report(settings: Settings, tmp_path: Path) -> None:
    result = loadtest(
        settings,
        "--rooms",
        "2",
        "--participants",
        "3",
        "--duration",
        "20",
        "--out",
        str(tmp_path),
        "--slo",
        "lost=0",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["lost"] == 0
    for key in ("caption_latency_p50_s", "caption_latency_p95_s", "audio_latency_p95_s", "stalls"):
        assert key in summary
    assert summary["caption_latency_p50_s"] > 0
    # Every caption's latency splits into its wait for the floor and the pipeline's part.
    assert 0 <= summary["floor_wait_p50_s"] <= summary["floor_wait_p95_s"]
    assert 0 < summary["pipeline_caption_latency_p50_s"] <= summary["caption_latency_p50_s"]
    assert summary["pipeline_caption_latency_p95_s"] <= summary["caption_latency_p95_s"]
    run = summary["runs"][0]
    assert run["utterances"] >= 2 and run["finals_received"] == run["finals_expected"] > 0
    # Every listener at 50 packets a second, the floor holder's silence included (the gateway
    # drops none for a slow sender; what is missing was lost on the way).
    assert run["packets_per_listener_s_min"] >= 47
    assert run["audio_packets_dropped"] == 0
    assert summary["cost_per_speech_s"]["turn_taking"]["3"] > 0
    assert summary["slo"]["passed"] is True
    report = (tmp_path / "report.html").read_text()
    assert report.count("data:image/png;base64,") == 3
    assert "floor_wait_p95_s" in report and "pipeline_caption_latency_p95_s" in report


def test_sweep_shows_linear_turn_taking_against_quadratic_all_pairs(
    settings: Settings, tmp_path: Path
) -> None:
    result = loadtest(
        settings,
        "--sweep",
        "2,4,8",
        "--rooms",
        "1",
        "--duration",
        "10",
        "--languages",
        "en,pt",
        "--out",
        str(tmp_path),
        # The count is of the work done in 10 s: with Kokoro's Portuguese (τ ≈ 0.4 here), eight
        # all-pairs pipelines saturate 2 cores before they show their N − 1 growth. espeak-ng
        # keeps TTS out of the way, so the figure measures the routing, not the voice.
        extra_env={"DRAGOMAN_TTS_VOICES": json.dumps({"pt": "espeak:pt-br"})},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    work = json.loads((tmp_path / "summary.json").read_text())["work"]
    turn_taking = [work["turn_taking"][n]["pipeline_calls_per_speech_s"] for n in ("2", "4", "8")]
    assert max(turn_taking) <= 1.2 * min(turn_taking)  # flat within ±20 %
    all_pairs = {n: work["all_pairs"][str(n)]["asr_calls_per_speech_s"] for n in (2, 4, 8)}
    for n in (4, 8):  # a pipeline per listener: at least proportional to N − 1
        assert all_pairs[n] >= 0.9 * (n - 1) * all_pairs[2]
    assert work["all_pairs"]["8"]["pipeline_calls_per_speech_s"] > 3 * turn_taking[2]


def test_bad_options_are_one_line_errors(settings: Settings, tmp_path: Path) -> None:
    for args, message in (
        (["--slo", "speed=3"], "unknown SLO 'speed'"),
        (["--mode", "chaos"], "unknown mode 'chaos'"),
        (["--languages", "xx"], "unknown language code"),
        (["--sweep", "2,4", "--url", "http://127.0.0.1:1"], "leave out --url"),
        (["--worker-metrics", "http://127.0.0.1:1"], "--worker-metrics is for --url"),
        (
            ["--url", "http://127.0.0.1:1", "--worker-metrics", "http://127.0.0.1:2"],
            "cannot read http://127.0.0.1:1/metrics",
        ),
    ):
        result = loadtest(settings, *args, "--out", str(tmp_path))
        assert result.returncode == 2, result.stderr
        assert message in result.stderr and "Traceback" not in result.stderr
