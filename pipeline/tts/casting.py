"""A voice close to the speaker's own: per speaker and target language, the candidate voice
nearest in pitch and embedding, held for the whole call; two speakers of a room get different
voices where the language has more than one.

The candidates' voiceprints are data, measured once from the pinned voices (each saying its
language's reference sentence) and kept in `voiceprints.json` beside this module, so a gateway
casts voices without loading any TTS model. `dragoman voices --measure` writes them again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType

from pipeline.audio import ASR_SAMPLE_RATE, resample
from pipeline.speakers import SpeakerEmbedder, VoicePrint, read_voiceprints
from pipeline.tts.base import SpeechSynthesizer

REFERENCE = {
    "en": "The quick brown fox jumps over the lazy dog, and then it runs home for dinner.",
    "pt": "O rápido cão castanho salta sobre a raposa, e depois corre para casa para jantar.",
    "es": "El rápido perro marrón salta sobre el zorro, y luego corre a casa para cenar.",
    "fr": "Le rapide chien brun saute par-dessus le renard, puis il rentre dîner à la maison.",
    "it": "Il veloce cane marrone salta sopra la volpe, e poi corre a casa per cena.",
    "ca": "El ràpid gos marró salta per sobre la guineu, i després corre cap a casa per sopar.",
    "de": "Der schnelle braune Hund springt über den Fuchs und läuft dann zum Essen nach Hause.",
    "nl": "De snelle bruine hond springt over de vos en rent dan naar huis voor het eten.",
    "ro": "Câinele maro și rapid sare peste vulpe, apoi fuge acasă la cină.",
}


def shipped_voiceprints() -> Path:
    return Path(str(resources.files("pipeline.tts"))) / "voiceprints.json"


def measure_voiceprints(
    voices: Mapping[str, tuple[str, ...]],
    speak: Mapping[str, SpeechSynthesizer],
    embedder: SpeakerEmbedder,
) -> dict[str, VoicePrint]:
    """Each candidate voice saying its language's reference sentence, as a voiceprint."""
    prints: dict[str, VoicePrint] = {}
    for language, specs in voices.items():
        for spec in specs:
            audio = speak[spec].synthesize(REFERENCE[language], language)
            samples = resample(audio.samples, audio.sample_rate, ASR_SAMPLE_RATE)
            prints[spec] = embedder.voiceprint(samples)
    return prints


def distance(speaker: VoicePrint, voice: VoicePrint) -> float:
    """Semitones of pitch difference (an octave counts 1) plus embedding dissimilarity."""
    return speaker.semitones_from(voice) / 12.0 + (1.0 - speaker.similarity(voice))


@dataclass
class VoiceCasting:
    """One room's choices: (speaker, language) → voice, stable once made."""

    prints: Mapping[str, VoicePrint]
    chosen: dict[tuple[str, str], str] = field(default_factory=dict)

    def nearest(self, speaker: VoicePrint, candidates: Iterable[str]) -> list[str]:
        known = [spec for spec in candidates if spec in self.prints]
        return sorted(known, key=lambda spec: distance(speaker, self.prints[spec]))

    def cast(
        self, speaker_id: str, speaker: VoicePrint, language: str, candidates: tuple[str, ...]
    ) -> str:
        """The speaker's voice in `language`: the nearest candidate that no other speaker of
        the room has in that language (the nearest of all when every one is taken)."""
        key = (speaker_id, language)
        if key not in self.chosen:
            ranked = self.nearest(speaker, candidates) or list(candidates[:1])
            taken = {v for (other, lang), v in self.chosen.items() if lang == language}
            free = [spec for spec in ranked if spec not in taken]
            self.chosen[key] = (free or ranked)[0]
        return self.chosen[key]

    def forget(self, speaker_id: str) -> None:
        for key in [k for k in self.chosen if k[0] == speaker_id]:
            del self.chosen[key]


@cache
def shipped_prints() -> Mapping[str, VoicePrint]:
    """The shipped voiceprints, read once per process."""
    return MappingProxyType(read_voiceprints(shipped_voiceprints()))
