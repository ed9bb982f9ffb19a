"""The operator's neural lip-sync folder: `lipsync.json` and the ONNX model it names.

Light on purpose (JSON and pydantic only): settings validation imports it at start-up.

`lipsync.json` describes a Wav2Lip-class model: per video frame it takes a square face crop
(`face_size` pixels; with `reference_face`, 6 channels: the crop with its lower half blanked,
then the crop itself) and a log-mel window of the speech (`mel_bins` × `mel_steps`, 80 steps a
second at 16 kHz), and returns the crop redrawn (3 channels, values 0–1). Example:

    {"model": "wav2lip.onnx", "face_size": 96, "face_input": "face", "audio_input": "audio"}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

CONFIG_NAME = "lipsync.json"


class NeuralModelConfig(BaseModel):
    """How to feed the model and read its answer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(description="ONNX file, relative to the folder")
    face_size: int = Field(96, ge=16, le=1024)
    face_input: str = "face"
    audio_input: str = "audio"
    output: str | None = Field(None, description="output name; None: the model's first output")
    reference_face: bool = Field(True, description="6-channel face input (masked + reference)")
    channels: Literal["rgb", "bgr"] = Field("bgr", description="Wav2Lip was trained on BGR")
    mel_bins: int = Field(80, ge=8, le=256)
    mel_steps: int = Field(16, ge=1, le=256, description="mel frames per video frame's window")
    crop_padding: float = Field(0.1, ge=0.0, le=1.0, description="around the face box, per side")
    batch: int = Field(8, ge=1, le=256)


def _read(folder: Path) -> NeuralModelConfig:
    config = folder / CONFIG_NAME
    if not config.is_file():
        raise ValueError(f"{folder} has no {CONFIG_NAME}")
    try:
        parsed = NeuralModelConfig.model_validate(json.loads(config.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{config} is not JSON: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ValueError(f"{config}: {where}: {first['msg']}") from None
    if not (folder / parsed.model).is_file():
        raise ValueError(f"{config} names {parsed.model!r}, which is not in {folder}")
    return parsed


def load_model_config(folder: Path | None) -> NeuralModelConfig:
    """The folder's configuration; ValueError with a one-line reason when it cannot serve."""
    if folder is None:
        raise ValueError("no model folder is set (DRAGOMAN_LIPSYNC_MODEL_DIR)")
    if not folder.is_dir():
        raise ValueError(f"model folder {folder} does not exist")
    return _read(folder)
