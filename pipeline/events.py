"""One event vocabulary for DataChannel messages, bus messages and logs.

Every finalised utterance ends in exactly one terminal event per target language:
CaptionFinal or UtteranceFailed. An utterance with no speech ends in UtteranceDropped.
"""

from __future__ import annotations

import time
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

Stage = Literal["vad", "asr", "mt", "tts", "lipsync", "bus"]


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    utterance_id: str
    emitted_at: float = Field(default_factory=time.time)


class CaptionFinal(_Event):
    """The translated text of a whole segment; speech follows when it is dubbed."""

    type: Literal["caption.final"] = "caption.final"
    sequence: int = Field(ge=0, description="per-speaker segment number")
    speaker: str
    source_language: str
    source_text: str
    target_language: str
    target_text: str
    speech_start_s: float
    speech_end_s: float
    route: str = ""


class UtteranceFailed(_Event):
    """A stage failed for one target language; the call goes on."""

    type: Literal["utterance.failed"] = "utterance.failed"
    target_language: str
    stage: Stage
    reason: str
    recoverable: bool = True


class UtteranceDropped(_Event):
    """A segment that produced no caption on purpose, e.g. no speech in it."""

    type: Literal["utterance.dropped"] = "utterance.dropped"
    reason: str


PipelineEvent = Annotated[
    CaptionFinal | UtteranceFailed | UtteranceDropped, Field(discriminator="type")
]
PIPELINE_EVENT = TypeAdapter(PipelineEvent)
TerminalEvent = CaptionFinal | UtteranceFailed
