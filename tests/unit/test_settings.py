"""Settings: defaults, DRAGOMAN_* environment variables, validation, the CLI's one-line error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from pipeline.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DRAGOMAN = Path(sys.executable).with_name("dragoman")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No DRAGOMAN_* variable from the developer's shell leaks into these tests."""
    for name in list(os.environ):
        if name.startswith("DRAGOMAN_"):
            monkeypatch.delenv(name)


def test_defaults_are_valid() -> None:
    settings = Settings()
    assert settings.inference_threads == 2
    assert settings.vad_threshold == 0.5
    assert settings.vad_min_silence_ms == 300
    assert settings.vad_speech_pad_ms == 160
    assert settings.vad_min_speech_ms == 250
    assert settings.segment_max_s == 12.0
    assert settings.asr_device == "cpu"
    assert settings.asr_min_speech_ratio == 0.15
    assert settings.mt_backends == ["bergamot", "apertium"]
    assert settings.ctranslate2_models == {}
    assert settings.tts_sample_rate == 48000
    assert settings.cache_dir == Path.home() / ".cache" / "dragoman"
    # A round trip through the validator accepts the defaults unchanged.
    assert Settings(**settings.model_dump()) == settings


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DRAGOMAN_VAD_THRESHOLD", "0.7")
    monkeypatch.setenv("DRAGOMAN_INFERENCE_THREADS", "4")
    monkeypatch.setenv("DRAGOMAN_SEGMENT_MAX_S", "5")
    monkeypatch.setenv("DRAGOMAN_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("DRAGOMAN_TTS_SAMPLE_RATE", "24000")
    monkeypatch.setenv("DRAGOMAN_ASR_DEVICE", "auto")
    monkeypatch.setenv("DRAGOMAN_MT_BACKENDS", '["apertium", "ctranslate2"]')
    monkeypatch.setenv("DRAGOMAN_CTRANSLATE2_MODELS", '{"en-de": "/models/opus-en-de"}')
    monkeypatch.setenv("DRAGOMAN_TTS_VOICES__pt", "espeak:pt-br")
    settings = Settings()
    assert settings.vad_threshold == 0.7
    assert settings.inference_threads == 4
    assert settings.segment_max_s == 5.0
    assert settings.cache_dir == tmp_path
    assert settings.tts_sample_rate == 24000
    assert settings.asr_device == "auto"
    assert settings.mt_backends == ["apertium", "ctranslate2"]
    assert settings.ctranslate2_models == {"en-de": "/models/opus-en-de"}
    assert settings.tts_voices == {"pt": "espeak:pt-br"}


def test_environment_variable_names_are_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("dragoman_asr_beam_size", "3")
    assert Settings().asr_beam_size == 3


def test_explicit_arguments_beat_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRAGOMAN_VAD_THRESHOLD", "0.7")
    assert Settings(vad_threshold=0.3).vad_threshold == 0.3


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"vad_threshold": 3}, "vad_threshold", "less than 1"),
        ({"vad_threshold": 0}, "vad_threshold", "greater than 0"),
        ({"tts_sample_rate": 44100}, "tts_sample_rate", "48000"),
        ({"mt_backends": ["google"]}, "mt_backends", "google"),
        ({"mt_backends": ["ctranslate2"]}, None, "DRAGOMAN_CTRANSLATE2_MODELS is empty"),
        ({"inference_threads": 0}, "inference_threads", "greater than or equal to 1"),
        ({"segment_max_s": 1.0}, "segment_max_s", "greater than or equal to 2"),
        ({"asr_device": "tpu"}, "asr_device", "cpu"),
        ({"redis_url": "http://redis:6379"}, "redis_url", "redis://"),
        ({"gateway_id": "gw one"}, "gateway_id", "pattern"),
        ({"turn_urls": ["turn:t:3478"]}, None, "DRAGOMAN_TURN_SECRET is not"),
        ({"bus_queue_size": 500}, None, "4 × DRAGOMAN_BUS_QUEUE_SIZE"),
        ({"bus_claim_idle_s": 0}, "bus_claim_idle_s", "greater than 0"),
    ],
)
def test_bad_values_raise_validation_error(
    overrides: dict[str, Any], field: str | None, words: str
) -> None:
    with pytest.raises(ValidationError) as info:
        Settings(**overrides)
    errors = info.value.errors()
    assert len(errors) == 1
    assert errors[0]["loc"] == ((field,) if field else ())
    assert words in errors[0]["msg"]


def test_bad_environment_value_raises_validation_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRAGOMAN_VAD_THRESHOLD", "3")
    with pytest.raises(ValidationError, match="vad_threshold"):
        Settings()


def test_ctranslate2_with_models_is_accepted() -> None:
    settings = Settings(mt_backends=["ctranslate2"], ctranslate2_models={"multi": "/models/nllb"})
    assert settings.mt_backends == ["ctranslate2"]


# ---------------------------------------------------------------- the CLI


def run_cli(env_overrides: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRAGOMAN_")}
    env.update(env_overrides)
    env["COLUMNS"] = "40"  # a narrow terminal must not wrap the message over several lines
    assert DRAGOMAN.exists(), DRAGOMAN
    return subprocess.run(
        [str(DRAGOMAN), "models"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0]
    assert result.stdout == ""
    return lines[0]


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"DRAGOMAN_VAD_THRESHOLD": "3"}, ("DRAGOMAN_VAD_THRESHOLD", "less than 1")),
        ({"DRAGOMAN_MT_BACKENDS": '["google"]'}, ("DRAGOMAN_MT_BACKENDS", "google", "bergamot")),
        ({"DRAGOMAN_INFERENCE_THREADS": "many"}, ("DRAGOMAN_INFERENCE_THREADS",)),
    ],
)
def test_cli_reports_a_bad_setting_in_one_line(env: dict[str, str], words: tuple[str, ...]) -> None:
    assert_one_line_error(run_cli(env), *words)


def test_cli_reports_a_non_json_list_setting_in_one_line() -> None:
    line = assert_one_line_error(run_cli({"DRAGOMAN_MT_BACKENDS": "bergamot,apertium"}), "error")
    assert "mt_backends" in line.lower()
