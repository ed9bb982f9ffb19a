"""`dragoman bench pipeline`: per-stage medians and τ on the real speech fixtures."""

from __future__ import annotations

import resource
import statistics
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench.steps import Step
from pipeline.audio import ASR_SAMPLE_RATE, read_file, resample
from pipeline.cascade import Cascade, Utterance
from pipeline.models import Models, segmenter_config
from pipeline.segmenter import segment_stream
from pipeline.speakers import speaker_embedder
from pipeline.tts.casting import VoiceCasting, shipped_prints
from testkit.fixtures import Clip
from testkit.quality import word_errors

DUB_LANGUAGES = ("en", "pt", "es", "fr", "it", "ca")
KOKORO_ENGLISH = "kokoro:af_heart"


@contextmanager
def _stopwatch() -> Iterator[list[float]]:
    elapsed: list[float] = []
    start = time.perf_counter()
    yield elapsed
    elapsed.append(time.perf_counter() - start)


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 4) if values else 0.0


def bench_asr(models: Models, clips: list[Clip], step: Step) -> dict[str, Any]:
    taus: list[float] = []
    errors: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    models.recognizer.transcribe(read_file(clips[0].path).samples, clips[0].language)  # warm-up
    for clip in clips:
        step(f"asr {clip.path.name}")
        audio = read_file(clip.path)
        with _stopwatch() as elapsed:
            text = models.recognizer.transcribe(audio.samples, clip.language).text
        taus.append(elapsed[0] / audio.duration_s)
        edits, words = word_errors(clip.transcript, text, clip.language)
        errors[clip.language][0] += edits
        errors[clip.language][1] += words
    wer = {lang: round(e / max(w, 1), 4) for lang, (e, w) in sorted(errors.items())}
    return {"asr_tau_median": _median(taus), "asr_wer": wer}


def _mt_times(models: Models, sentences: list[tuple[str, str, str]], step: Step) -> list[float]:
    times: list[float] = []
    for text, source, target in sentences:
        step(f"mt {source}→{target}")
        models.translator.translate(text, source, target)  # warm-up and first-use start-up
        with _stopwatch() as elapsed:
            models.translator.translate(text, source, target)
        times.append(elapsed[0] * 1000)
    return times


def bench_mt(models: Models, clips: list[Clip], step: Step) -> dict[str, Any]:
    """Bergamot en→pt on English transcripts; Apertium es↔pt and fr→es on the others."""
    bergamot = [(c.transcript, "en", "pt") for c in clips if c.language == "en"]
    apertium_pairs = {"es": "pt", "pt": "es", "fr": "es", "ca": "es"}
    apertium = [
        (c.transcript, c.language, apertium_pairs[c.language])
        for c in clips
        if c.language in apertium_pairs
    ]
    planner = models.translator.planner
    bergamot = [s for s in bergamot if planner.route(s[1], s[2]).hops[0].backend.name == "bergamot"]
    apertium = [s for s in apertium if planner.has_route(s[1], s[2])]
    bergamot_ms, apertium_ms = _mt_times(models, bergamot, step), _mt_times(models, apertium, step)
    return {
        "mt_ms_median": _median(bergamot_ms + apertium_ms),
        "mt_ms_median_bergamot": _median(bergamot_ms),
        "mt_ms_median_apertium": _median(apertium_ms),
    }


def _first_audio_s(models: Models, text: str, language: str, voice: str | None) -> float:
    """Text in → the first clause of its speech out."""
    started = time.perf_counter()
    for _ in models.voices.clauses(text, language, voice):
        return time.perf_counter() - started
    return 0.0


def bench_tts(models: Models, clips: list[Clip], step: Step) -> dict[str, Any]:
    """Each language's default voice on its fixtures' transcripts, and Kokoro's English voice
    beside Piper's (the English default is chosen by these figures and `dub_wer_en*`)."""
    by_engine: dict[str, list[float]] = defaultdict(list)
    first_audio: list[float] = []
    runs: list[tuple[Clip, str | None]] = [(clip, None) for clip in clips]
    runs += [(clip, KOKORO_ENGLISH) for clip in clips if clip.language == "en"]
    for clip, spec in runs:
        step(f"tts {clip.language} {spec or 'default'}")
        voice = models.voices.voice(clip.language, spec)
        voice.synthesize(clip.transcript, clip.language)  # warm-up
        with _stopwatch() as elapsed:
            speech = models.voices.synthesize(clip.transcript, clip.language, spec)
        by_engine[voice.name].append(elapsed[0] / max(speech.duration_s, 1e-3))
        first_audio.append(_first_audio_s(models, clip.transcript, clip.language, spec))
    every = [tau for taus in by_engine.values() for tau in taus]
    medians = {
        f"tts_tau_median_{name.replace('-', '_')}": _median(t) for name, t in by_engine.items()
    }
    return {
        "tts_tau_median": _median(every),
        **medians,
        "tts_first_audio_ms_median": round(statistics.median(first_audio) * 1000, 1),
    }


def _dub_wer(
    models: Models, texts: list[str], language: str, voice: str | None, step: Step
) -> float:
    """Sentences in `language` dubbed by its voice and heard back by Whisper."""
    edits = words = 0
    for text in texts:
        step(f"dub {language} {voice or ''}")
        speech = models.voices.synthesize(text, language, voice)
        heard = models.recognizer.transcribe(
            resample(speech.samples, speech.sample_rate, ASR_SAMPLE_RATE), language
        ).text
        e, w = word_errors(text, heard, language)
        edits, words = edits + e, words + w
    return round(edits / max(words, 1), 4)


# The fixtures hold no Italian speech: natural Italian sentences of the same kind instead.
ITALIAN = (
    "La riunione di domani comincia alle nove e finisce prima di pranzo.",
    "Il treno per Milano parte dal binario tre con dieci minuti di ritardo.",
    "Abbiamo deciso di rimandare il viaggio perché il tempo era troppo brutto.",
    "Mia sorella lavora in un ospedale vicino al centro della città.",
    "Questo libro racconta la storia di una famiglia durante la guerra.",
    "Il museo resta aperto fino alle otto di sera tutti i giorni tranne il lunedì.",
    "Per arrivare alla stazione bisogna attraversare il ponte e girare a destra.",
    "La squadra ha vinto la partita grazie a un gol negli ultimi minuti.",
)


def dub_sentences(clips: list[Clip], language: str) -> list[str]:
    """The fixtures' own transcripts in `language` (Italian: sentences of the same kind)."""
    own = [c.transcript for c in clips if c.language == language]
    return own or (list(ITALIAN) if language == "it" else [])


def bench_dubs(models: Models, clips: list[Clip], step: Step) -> dict[str, Any]:
    """`dub_wer_<lang>`: fixture sentences dubbed by the language's default voice, heard back."""
    figures = {
        f"dub_wer_{language}": _dub_wer(
            models, dub_sentences(clips, language), language, None, step
        )
        for language in DUB_LANGUAGES
    }
    english = dub_sentences(clips, "en")
    figures["dub_wer_en_kokoro"] = _dub_wer(models, english, "en", KOKORO_ENGLISH, step)
    return figures


def bench_voice_choice(models: Models, clips: list[Clip], step: Step) -> dict[str, Any]:
    """Pitch distance from each fixture speaker to the voice cast for them, in every language
    with more than one voice, next to the distance to the language's default voice."""
    embedder = speaker_embedder(models.settings.assets_dir)
    prints = shipped_prints()
    chosen_gaps: list[float] = []
    default_gaps: list[float] = []
    for clip in clips:
        step(f"voiceprint {clip.path.name}")
        speaker = embedder.voiceprint(read_file(clip.path).samples)
        if speaker.f0_hz is None:
            continue
        for language in ("en", "pt", "es", "it"):
            candidates = models.voices.candidates(language)
            if len(candidates) < 2:
                continue
            chosen = VoiceCasting(prints).cast(clip.path.stem, speaker, language, candidates)
            for gaps, spec in ((chosen_gaps, chosen), (default_gaps, candidates[0])):
                voice_f0 = prints[spec].f0_hz
                if voice_f0 is not None:
                    gaps.append(abs(speaker.f0_hz - voice_f0))
    return {
        "voice_f0_gap_median_hz": _median(chosen_gaps),
        "voice_f0_gap_default_median_hz": _median(default_gaps),
    }


def bench_cascade(models: Models, clips: list[Clip], target: str, step: Step) -> dict[str, Any]:
    """Decode, VAD, ASR, MT and TTS of English clips to one target: wall time / speech time."""
    cascade = Cascade(
        models.recognizer, models.translator, models.voices, models.settings.asr_min_speech_ratio
    )
    wall = speech = 0.0
    for clip in clips:
        step(f"cascade {clip.path.name}")
        with _stopwatch() as elapsed:
            audio = read_file(clip.path)
            for segment in segment_stream(
                [audio.samples], models.new_vad(), segmenter_config(models.settings)
            ):
                utterance = Utterance(
                    f"bench-{segment.index}", "bench", segment.index, clip.language, segment
                )
                cascade.process(utterance, [target])
                speech += segment.duration_s
        wall += elapsed[0]
    return {"cascade_tau": round(wall / speech, 4) if speech else 0.0, "cascade_target": target}


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def bench_pipeline(models: Models, clips: list[Clip], step: Step) -> dict[str, Any]:
    """Every stage on every clip; load times included for reference."""
    with _stopwatch() as load:
        step("loading models")
        _ = models.recognizer, models.translator, models.voices.voice("en")
    english = [c for c in clips if c.language == "en"]
    return {
        **bench_asr(models, clips, step),
        **bench_mt(models, clips, step),
        **bench_tts(models, clips, step),
        **bench_dubs(models, clips, step),
        **bench_voice_choice(models, clips, step),
        **bench_cascade(models, english, "pt", step),
        "model_load_s": round(load[0], 3),
        "clips": len(clips),
        "peak_rss_mb": peak_rss_mb(),
    }
