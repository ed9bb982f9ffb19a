"""One event vocabulary for DataChannel messages, bus messages and logs.

Every finalised utterance ends in exactly one terminal event per target language:
CaptionFinal or UtteranceFailed. An utterance with no speech ends in UtteranceDropped. Before
that, while it is spoken, CaptionPartial revisions may show it (best effort, never terminal).
"""

from __future__ import annotations

import time
import typing
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

Stage = Literal["vad", "asr", "mt", "tts", "lipsync", "bus", "floor"]
# Why a segment produced no caption, on purpose: what the recognizer heard, or the floor.
DropReason = Literal[
    "no_speech",
    "repetitive",
    "hallucination",
    "not_holding_floor",
    "floor_queue_overflow",
    "floor_released",
    "speaker_left",
]
# What kind of failure ended a target (the `reason` says it in words).
FailureCause = Literal[
    "stage_error",  # a backend raised
    "unsupported",  # no route or voice for this language
    "stuck",  # no result by the job's deadline
    "overloaded",  # the job queue was full
    "unserved",  # no live worker serves this language or pair
    "shutdown",  # the server stopped before or while the job ran
    "poison",  # the job failed on several workers and was given up
]


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    emitted_at: float = Field(default_factory=time.time)


class _UtteranceEvent(_Event):
    utterance_id: str


class CaptionFinal(_UtteranceEvent):
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
    speech_end_at: float = Field(0.0, description="wall-clock time the speech ended (epoch s)")
    route: str = ""


class CaptionPartial(_UtteranceEvent):
    """What the floor holder is saying, while they say it: best effort. A newer revision
    supersedes an older one (outboxes keep only the newest), any may be dropped under load,
    and the utterance's caption.final replaces them all."""

    type: Literal["caption.partial"] = "caption.partial"
    revision: int = Field(ge=0, description="per utterance, rising; a higher one supersedes")
    speaker: str
    source_language: str
    committed_text: str = Field(description="source words that will not change any more")
    unstable_text: str = Field(description="source words after them, still being revised")
    target_language: str
    target_text: str = Field(description="the committed words in the target language")


class UtteranceFailed(_UtteranceEvent):
    """A stage failed for one target language; the call goes on."""

    type: Literal["utterance.failed"] = "utterance.failed"
    target_language: str
    stage: Stage
    reason: str
    cause: FailureCause = "stage_error"
    recoverable: bool = True


class UtteranceDropped(_UtteranceEvent):
    """A segment that produced no caption on purpose, e.g. no speech in it."""

    type: Literal["utterance.dropped"] = "utterance.dropped"
    reason: DropReason
    speaker: str = ""


class DubStarted(_UtteranceEvent):
    """A segment's translated speech starts playing now, to this language's listeners."""

    type: Literal["dub.started"] = "dub.started"
    target_language: str
    speech_end_at: float = Field(description="wall-clock time its speech ended (epoch s)")


class ParticipantInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    language: str
    connected: bool = Field(True, description="its peer connection is up (ICE and DTLS done)")
    muted: bool = False
    muted_by_moderator: bool = Field(False, description="only a moderator can lift this mute")
    lipsync: bool = Field(True, description="sees the speaker's lips follow its language")


class FloorChanged(_Event):
    """Who holds the floor, and who waits for it, in order."""

    type: Literal["floor.changed"] = "floor.changed"
    holder: str | None
    queue: list[str]


class SpeakingChanged(_Event):
    """Voice activity of one participant started or stopped (for speaking indicators)."""

    type: Literal["speaking.changed"] = "speaking.changed"
    participant: str
    speaking: bool


class TranslationStatus(_Event):
    """Translation paused (the pipeline is unreachable) or resumed; the call itself goes on."""

    type: Literal["translation.status"] = "translation.status"
    paused: bool
    reason: str = ""


class ServerClosing(_Event):
    """The gateway is shutting down: no new joins; pending translations finish, then it exits."""

    type: Literal["server.closing"] = "server.closing"
    reason: str
    deadline_s: float = Field(description="the gateway is gone by then, at the latest")


SessionEndReason = Literal["replaced", "removed", "token_expired"]


class SessionEnded(_Event):
    """This session is over and must not reconnect: the same identity joined elsewhere, a
    moderator removed it, or its access token expired. Sent just before the gateway closes it."""

    type: Literal["session.ended"] = "session.ended"
    reason: SessionEndReason


class ParticipantsChanged(_Event):
    type: Literal["participants.changed"] = "participants.changed"
    participants: list[ParticipantInfo]


RoomEvent = (
    CaptionFinal
    | CaptionPartial
    | UtteranceFailed
    | UtteranceDropped
    | DubStarted
    | FloorChanged
    | ParticipantsChanged
    | SpeakingChanged
    | TranslationStatus
    | ServerClosing
    | SessionEnded
)
PipelineEvent = Annotated[RoomEvent, Field(discriminator="type")]
PIPELINE_EVENT: TypeAdapter[PipelineEvent] = TypeAdapter(PipelineEvent)
TerminalEvent = CaptionFinal | UtteranceFailed


def events_schema() -> dict[str, Any]:
    """The JSON schema of every event a client receives: `client/events.schema.json` is this,
    written by `dragoman events-schema` (a test fails when the two drift apart)."""
    schema = PIPELINE_EVENT.json_schema(mode="serialization")
    schema["title"] = "Dragoman room event"
    return schema


def event_types() -> list[str]:
    """The `type` of every room event, sorted."""
    return sorted(str(member.model_fields["type"].default) for member in typing.get_args(RoomEvent))
