"""Model registry: every backend built from settings once per process and shared."""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.asr.base import SpeechRecognizer
from pipeline.asr.models import resolve_whisper
from pipeline.asr.whisper import HallucinationGuard, WhisperRecognizer
from pipeline.mt.apertium import ApertiumTranslator
from pipeline.mt.base import Translator
from pipeline.mt.bergamot import BergamotTranslator, shipped_model_dirs
from pipeline.mt.ctranslate2_backend import CTranslate2Translator
from pipeline.mt.routes import RoutedTranslator, RoutePlanner
from pipeline.segmenter import SegmenterConfig
from pipeline.settings import Settings
from pipeline.tts.voices import VoiceContext, VoiceTable
from pipeline.vad import SileroDetector, VoiceActivityDetector


def _bergamot(settings: Settings) -> Translator:
    dirs = [*shipped_model_dirs(), *(Path(p) for p in settings.bergamot_model_dirs)]
    return BergamotTranslator(dirs, timeout_s=settings.mt_timeout_s)


def _apertium(settings: Settings) -> Translator:
    return ApertiumTranslator(settings.apertium_modes_dir, timeout_s=settings.mt_timeout_s)


def _ctranslate2(settings: Settings) -> Translator:
    device = "cuda" if settings.asr_device == "cuda" else "cpu"
    return CTranslate2Translator(
        settings.ctranslate2_models, device=device, threads=settings.inference_threads
    )


MT_BACKENDS: dict[str, Callable[[Settings], Translator]] = {
    "bergamot": _bergamot,
    "apertium": _apertium,
    "ctranslate2": _ctranslate2,
}


def build_recognizer(settings: Settings) -> WhisperRecognizer:
    guard = HallucinationGuard(
        no_speech_threshold=settings.asr_no_speech_threshold,
        logprob_threshold=settings.asr_logprob_threshold,
        compression_ratio_threshold=settings.asr_compression_ratio_threshold,
    )
    return WhisperRecognizer(
        resolve_whisper(settings.asr_model, settings.cache_dir),
        device=settings.asr_device,
        compute_type=settings.asr_compute_type,
        threads=settings.inference_threads,
        beam_size=settings.asr_beam_size,
        guard=guard,
        workers=2 if settings.live_captions else 1,
    )


def build_translator(settings: Settings) -> RoutedTranslator:
    backends = [MT_BACKENDS[name](settings) for name in settings.mt_backends]
    return RoutedTranslator(RoutePlanner(backends))


def voice_context(settings: Settings) -> VoiceContext:
    return VoiceContext(
        settings.cache_dir, settings.assets_dir, settings.tts_device, settings.inference_threads
    )


def segmenter_config(settings: Settings) -> SegmenterConfig:
    return SegmenterConfig(
        threshold=settings.vad_threshold,
        min_silence_ms=settings.vad_min_silence_ms,
        speech_pad_ms=settings.vad_speech_pad_ms,
        min_speech_ms=settings.vad_min_speech_ms,
        max_segment_s=settings.segment_max_s,
    )


@dataclass
class Models:
    """The loaded models of one process. Built lazily, each exactly once, thread-safe."""

    settings: Settings
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _recognizer: SpeechRecognizer | None = None
    _translator: RoutedTranslator | None = None
    _voices: VoiceTable | None = None

    @property
    def recognizer(self) -> SpeechRecognizer:
        with self._lock:
            if self._recognizer is None:
                self._recognizer = build_recognizer(self.settings)
            return self._recognizer

    @property
    def translator(self) -> RoutedTranslator:
        with self._lock:
            if self._translator is None:
                self._translator = build_translator(self.settings)
            return self._translator

    @property
    def voices(self) -> VoiceTable:
        with self._lock:
            if self._voices is None:
                self._voices = VoiceTable(
                    self.settings.tts_voices,
                    self.settings.tts_sample_rate,
                    voice_context(self.settings),
                )
            return self._voices

    def new_vad(self) -> VoiceActivityDetector:
        """VAD keeps per-stream state, so each stream gets its own detector."""
        return SileroDetector()

    def close(self) -> None:
        with self._lock:
            if self._translator is not None:
                self._translator.close()
                self._translator = None
            if self._voices is not None:
                self._voices.close()
                self._voices = None


_shared: dict[int, Models] = {}
_shared_lock = threading.Lock()


def shared_models(settings: Settings) -> Models:
    """The process-wide Models for these settings (one set of weights per process)."""
    with _shared_lock:
        key = id(settings)
        if key not in _shared:
            _shared[key] = Models(settings)
            atexit.register(_shared[key].close)
        return _shared[key]
