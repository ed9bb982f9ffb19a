"""Backend name (DRAGOMAN_LIPSYNC_BACKEND) → lip-syncer, built from settings."""

from __future__ import annotations

from collections.abc import Callable

from pipeline.errors import ModelUnavailableError
from pipeline.lipsync.base import LipSyncer
from pipeline.lipsync.landmark_syncer import LandmarkLipSyncer
from pipeline.lipsync.neural import NeuralLipSyncer
from pipeline.settings import Settings


def _landmarks(settings: Settings) -> LipSyncer:
    return LandmarkLipSyncer()


def _neural(settings: Settings) -> LipSyncer:
    if settings.lipsync_model_dir is None:  # settings validation already refuses this
        raise ModelUnavailableError("neural lip-sync needs DRAGOMAN_LIPSYNC_MODEL_DIR")
    return NeuralLipSyncer(settings.lipsync_model_dir, threads=settings.inference_threads)


LIPSYNC_BACKENDS: dict[str, Callable[[Settings], LipSyncer]] = {
    "landmarks": _landmarks,
    "neural": _neural,
}


def build_lipsyncer(settings: Settings) -> LipSyncer:
    """The configured backend. Loading takes about a second (the landmark model); build once
    per process and share it: `sync` is safe to call from several threads."""
    return LIPSYNC_BACKENDS[settings.lipsync_backend](settings)
