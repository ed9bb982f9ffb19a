"""The `dragoman` command as users run it: outputs, one-line errors with exit code 2."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from pipeline.audio import read_file
from pipeline.settings import Settings
from testkit.fixtures import Clip, clip_named
from testkit.signals import music, silence, white_noise, write_16k

DRAGOMAN = str(Path(sys.executable).with_name("dragoman"))


def run(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "DRAGOMAN_CACHE_DIR": str(settings.cache_dir), **env}
    return subprocess.run(
        [DRAGOMAN, *args], capture_output=True, text=True, env=environment, timeout=300
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], pattern: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert re.search(pattern, lines[0]), lines[0]


def test_translate_writes_speech_captions_and_report(
    settings: Settings, clips: list[Clip], tmp_path: Path
) -> None:
    clip = clip_named(clips, "en_jfk_inaugural_1961")
    result = run(
        settings,
        "translate",
        str(clip.path),
        "--to",
        "pt,ES",
        "--from",
        "en-US",
        "--out",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["targets"] == ["pt", "es"] and report["source_lang"] == "en"
    assert 0 < report["tau"] < 5  # a sanity bound: the speed target is `bench pipeline`'s
    segments = report["segments"]
    assert len(segments) >= 2
    for segment in segments:
        assert {"start", "end", "source_lang", "source_text", "translations", "timings"} <= set(
            segment
        )
        assert 0 <= segment["start"] < segment["end"] <= clip.duration_s + 0.1
        assert segment["translations"]["pt"] and segment["translations"]["es"]
        assert segment["timings"]["asr"] > 0 and segment["timings"]["mt"]["pt"] > 0
    assert "país" in " ".join(s["translations"]["pt"] for s in segments)
    for language in ("pt", "es"):
        vtt = (tmp_path / f"en_jfk_inaugural_1961.{language}.vtt").read_text()
        assert vtt.startswith("WEBVTT")
        assert vtt.count(" --> ") == len(segments)
        assert "<v en>" in vtt
        with wave.open(str(tmp_path / f"en_jfk_inaugural_1961.{language}.wav")) as dub:
            assert dub.getframerate() == 48000
            assert dub.getnframes() / 48000 >= clip.duration_s - 0.5
        dubbed = read_file(tmp_path / f"en_jfk_inaugural_1961.{language}.wav").samples
        assert float(np.abs(dubbed).max()) > 0.1


@pytest.mark.parametrize(
    "make_input",
    [
        lambda p: write_16k(p, silence(8)),
        lambda p: write_16k(p, white_noise(8, 0.2)),
        lambda p: write_16k(p, music(8)),
    ],
    ids=["silence", "noise", "music"],
)
def test_non_speech_gives_no_captions(
    settings: Settings, tmp_path: Path, make_input: object
) -> None:
    source = make_input(tmp_path / "input.wav")  # type: ignore[operator]
    result = run(settings, "translate", str(source), "--to", "pt", "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "no speech found" in result.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["segments"] == []
    assert (tmp_path / "out" / "input.pt.vtt").read_text().strip() == "WEBVTT"


def test_ten_minute_input_is_translated_where_the_speech_is(
    settings: Settings, clips: list[Clip], tmp_path: Path
) -> None:
    speech = read_file(clip_named(clips, "en_commonvoice_platforms").path).samples
    path = tmp_path / "long.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        for minute in range(10):
            block = silence(60.0)
            if minute in (1, 8):
                block[: len(speech)] = speech
            out.writeframes((block * 32767).astype(np.int16).tobytes())
    result = run(settings, "translate", str(path), "--to", "pt", "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    starts = [s["start"] for s in report["segments"]]
    assert len(starts) == 2 and 60 <= starts[0] < 62 and 480 <= starts[1] < 482
    assert report["duration_s"] == pytest.approx(600, abs=0.5)


def _garbage(path: Path) -> Path:
    path.write_bytes(bytes(range(256)) * 40)
    return path


def _empty(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def _truncated(path: Path, fixture: Path) -> Path:
    path.write_bytes(fixture.read_bytes()[:30])
    return path


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (["translate", "{tmp}/missing.wav", "--to", "pt"], "not found"),
        (["translate", "{empty}", "--to", "pt"], "empty"),
        (["translate", "{garbage}", "--to", "pt"], "cannot read|cannot decode"),
        (["translate", "{truncated}", "--to", "pt"], "cannot read|cannot decode|no audio"),
        (["translate", "{image}", "--to", "pt"], "no audio|cannot read"),
        (["translate", "{tmp}", "--to", "pt"], "not a file"),
        (["translate", "{speech}", "--to", "xx"], "unknown language code 'xx'.*supported: .*en"),
        (["translate", "{speech}", "--to", "pt", "--from", "klingon"], "unknown language code"),
        (
            ["translate", "{speech}", "--to", "en", "--from", "de"],
            "no translation route de→en; available: .*en→pt",
        ),
        (["translate", "{speech}", "--to", "en"], "is the source language"),
        (["translate", "{speech}", "--to", ","], "no target language"),
    ],
    ids=[
        "missing",
        "empty",
        "garbage",
        "truncated",
        "image",
        "directory",
        "bad-target",
        "bad-source",
        "unsupported-pair",
        "same-language",
        "no-target",
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    settings: Settings,
    clips: list[Clip],
    fixtures_dir: Path,
    tmp_path: Path,
    args: list[str],
    pattern: str,
) -> None:
    speech = clip_named(clips, "en_commonvoice_platforms").path
    paths = {
        "tmp": str(tmp_path),
        "empty": str(_empty(tmp_path / "empty.wav")),
        "garbage": str(_garbage(tmp_path / "garbage.wav")),
        "truncated": str(_truncated(tmp_path / "cut.wav", speech)),
        "image": str(next((fixtures_dir / "face").glob("*.png"))),
        "speech": str(speech),
    }
    result = run(settings, *[a.format(**paths) for a in args], "--out", str(tmp_path / "out"))
    assert_one_line_error(result, pattern)


def test_bad_setting_stops_with_one_line(
    settings: Settings, clips: list[Clip], tmp_path: Path
) -> None:
    speech = str(clip_named(clips, "en_commonvoice_platforms").path)
    result = run(settings, "translate", speech, "--to", "pt", DRAGOMAN_SEGMENT_MAX_S="0.5")
    assert_one_line_error(result, "DRAGOMAN_SEGMENT_MAX_S")
    result = run(settings, "models", DRAGOMAN_MT_BACKENDS='["google"]')
    assert_one_line_error(result, "unknown MT backend")


def test_models_lists_stages_backends_and_routes(settings: Settings) -> None:
    result = run(settings, "models", "--json")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    backends = {(row["stage"], row["backend"].split(" (")[0]) for row in found["stages"]}
    assert {
        ("vad", "silero"),
        ("asr", "faster-whisper base"),
        ("asr", "faster-whisper tiny.en"),
        ("mt", "bergamot"),
        ("mt", "apertium"),
        ("tts", "piper"),
        ("tts", "kokoro"),
        ("tts", "festival"),
        ("tts", "espeak-ng"),
    } <= backends
    defaults = {
        row["languages"][0]: row["backend"]
        for row in found["stages"]
        if row["stage"] == "tts" and "default" in row["backend"]
    }
    assert defaults["pt"] == "kokoro (kokoro:pf_dora, default)"
    assert defaults["ca"] == "festival (festival:upc_ca_ona_hts, default)"
    routes = {route["pair"]: route["route"] for route in found["routes"]}
    assert routes["en→pt"] == "en→pt (bergamot)"
    assert routes["en→es"] == "en→pt (bergamot), pt→es (apertium)"
    assert all(row["origin"] for row in found["stages"])


def test_bench_pipeline_prints_the_figures_as_json(settings: Settings) -> None:
    result = run(settings, "bench", "pipeline", "--json", "--per-language", "1")
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    for key in ("asr_tau_median", "mt_ms_median", "tts_tau_median", "cascade_tau", "peak_rss_mb"):
        assert figures[key] > 0, key
    assert figures["clips"] == 6
    assert set(figures["asr_wer"]) == {"en", "es", "pt", "fr", "de", "ca"}


@pytest.mark.redis
def test_bench_bus_prints_the_figures_as_json(settings: Settings) -> None:
    result = run(settings, "bench", "bus", "--json", "--jobs", "20", "--burst", "50")
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert 0 < figures["hop_p50_ms"] <= figures["hop_p99_ms"]
    assert figures["jobs_per_s"] > 0 and figures["failed_jobs"] == 0
    assert figures["payload_bytes"] == 20000


def test_worker_refuses_bad_options_in_one_line(settings: Settings) -> None:
    assert_one_line_error(run(settings, "worker", "--stages", "tts"), r"unknown stage")
    assert_one_line_error(
        run(settings, "worker", "--redis-url", "redis://127.0.0.1:9/0", "--device", "tpu"),
        r"unknown device 'tpu'",
    )
    assert_one_line_error(run(settings, "worker"), r"needs --redis-url")
    assert_one_line_error(
        run(settings, "worker", "--redis-url", "http://x"), r"DRAGOMAN_REDIS_URL: .*redis://"
    )
