"""How jobs and results travel between processes: Redis stream entries of bytes fields.

Headers are JSON validated by pydantic (a malformed entry is rejected, never half-read); audio is
16-bit PCM, which halves the payload of float32 and loses nothing speech recognition can hear.
"""

from __future__ import annotations

import time
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from pipeline.agreement import Agreement
from pipeline.audio import Audio, Samples
from pipeline.bus import Job
from pipeline.cascade import Said, Utterance
from pipeline.events import CaptionFinal, UtteranceDropped, UtteranceFailed
from pipeline.live import PartialReading, PartialRequest
from pipeline.segmenter import Segment
from pipeline.streams import Fields


class WireError(ValueError):
    """A stream entry that is not a well-formed Dragoman message."""


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SegmentHeader(_Wire):
    index: int
    start_s: float
    speech_ratio: float
    cut_at_max_length: bool = False
    voiced_until_s: float = 0.0


class JobHeader(_Wire):
    """Everything about a job but its audio: who asked, for whom, and where results go."""

    job_id: str = Field(min_length=1, max_length=64)
    gateway: str = Field(min_length=1, max_length=64)
    room_id: str
    utterance_id: str
    speaker: str
    sequence: int
    language: str
    segment: SegmentHeader
    committed: str = ""
    heard: str = ""
    targets: tuple[str, ...]
    speech_end_at: float = 0.0
    recipient: str | None = None
    plays: bool = True
    voices: dict[str, str] = Field(default_factory=dict)  # language → the speaker's voice
    submitted_at: float = Field(default_factory=time.time)

    @classmethod
    def of(cls, job_id: str, gateway: str, job: Job) -> JobHeader:
        utterance, segment = job.utterance, job.utterance.segment
        return cls(
            job_id=job_id,
            gateway=gateway,
            room_id=job.room_id,
            utterance_id=utterance.utterance_id,
            speaker=utterance.speaker,
            sequence=utterance.sequence,
            language=utterance.language,
            committed=utterance.committed,
            heard=utterance.heard,
            segment=SegmentHeader(
                index=segment.index,
                start_s=segment.start_s,
                speech_ratio=segment.speech_ratio,
                cut_at_max_length=segment.cut_at_max_length,
                voiced_until_s=segment.voiced_until_s,
            ),
            targets=job.targets,
            speech_end_at=job.speech_end_at,
            recipient=job.recipient,
            plays=job.plays,
            voices=job.voice_map,
        )

    def utterance(self, samples: Samples) -> Utterance:
        segment = Segment(
            index=self.segment.index,
            start_s=self.segment.start_s,
            samples=samples,
            speech_ratio=self.segment.speech_ratio,
            cut_at_max_length=self.segment.cut_at_max_length,
            voiced_until_s=self.segment.voiced_until_s,
        )
        return Utterance(
            self.utterance_id,
            self.speaker,
            self.sequence,
            self.language,
            segment,
            committed=self.committed,
            heard=self.heard,
        )


class TextJob(_Wire):
    """The translate stage's job: one target language for a recognised utterance."""

    job: JobHeader
    said: Said
    text: str
    target: str
    asr_s: float = 0.0


class ResultHeader(_Wire):
    """One message back to the gateway: an early caption, a target's terminal event, or a drop."""

    kind: Literal["caption", "final", "dropped"]
    job_id: str
    target: str = ""
    event: CaptionFinal | UtteranceFailed | UtteranceDropped = Field(discriminator="type")
    asr_s: float = 0.0
    mt_s: float = 0.0
    tts_s: float = 0.0
    speech_rate: int = 0


class PartialHeader(_Wire):
    """A live-caption request but its audio: the growing segment's state, and where the
    reading goes. Best effort: nobody acknowledges it, so a lost one is only a missed reading."""

    request_id: str = Field(min_length=1, max_length=64)
    gateway: str = Field(min_length=1, max_length=64)
    utterance_id: str
    language: str
    committed: str = ""
    previous: str = ""
    targets: tuple[str, ...] = ()
    whole: bool = False
    sent_at: float = Field(default_factory=time.time)

    @classmethod
    def of(cls, request_id: str, gateway: str, request: PartialRequest) -> PartialHeader:
        return cls(
            request_id=request_id,
            gateway=gateway,
            utterance_id=request.utterance_id,
            language=request.language,
            committed=request.committed,
            previous=request.previous,
            targets=request.targets,
            whole=request.whole,
        )

    def request(self, samples: Samples) -> PartialRequest:
        return PartialRequest(
            self.utterance_id,
            self.language,
            samples,
            committed=self.committed,
            previous=self.previous,
            targets=self.targets,
            whole=self.whole,
        )


class ReadingHeader(_Wire):
    """A partial reading, back to the gateway that asked for it."""

    request_id: str
    hypothesis: str
    committed: str
    unstable: str
    translations: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def of(cls, request_id: str, reading: PartialReading) -> ReadingHeader:
        return cls(
            request_id=request_id,
            hypothesis=reading.hypothesis,
            committed=reading.agreement.committed,
            unstable=reading.agreement.unstable,
            translations=reading.translations,
        )

    def reading(self) -> PartialReading:
        agreement = Agreement(self.committed, self.unstable)
        return PartialReading(self.hypothesis, agreement, dict(self.translations))


def encode_pcm(samples: Samples) -> bytes:
    clipped = np.clip(np.nan_to_num(samples), -1.0, 1.0)
    return (clipped * 32767.0).astype("<i2").tobytes()


def decode_pcm(data: bytes) -> Samples:
    if len(data) % 2:
        raise WireError("PCM payload has an odd number of bytes")
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32767.0


def job_fields(header: JobHeader, samples: Samples) -> Fields:
    return {"header": header.model_dump_json(), "pcm": encode_pcm(samples)}


def read_job(fields: dict[bytes, bytes]) -> tuple[JobHeader, Samples]:
    try:
        header = JobHeader.model_validate_json(fields[b"header"])
        return header, decode_pcm(fields[b"pcm"])
    except (KeyError, ValueError) as exc:
        raise WireError(f"malformed job entry: {exc}") from None


def text_job_fields(job: TextJob) -> Fields:
    return {"header": job.model_dump_json()}


def read_text_job(fields: dict[bytes, bytes]) -> TextJob:
    try:
        return TextJob.model_validate_json(fields[b"header"])
    except (KeyError, ValueError) as exc:
        raise WireError(f"malformed translate entry: {exc}") from None


def result_fields(header: ResultHeader, speech: Audio | None = None) -> Fields:
    fields: Fields = {"header": header.model_dump_json()}
    if speech is not None:
        fields["speech"] = encode_pcm(speech.samples)
    return fields


def read_result(fields: dict[bytes, bytes]) -> tuple[ResultHeader, Audio | None]:
    try:
        header = ResultHeader.model_validate_json(fields[b"header"])
        speech = None
        if b"speech" in fields and header.speech_rate > 0:
            speech = Audio(decode_pcm(fields[b"speech"]), header.speech_rate)
        return header, speech
    except (KeyError, ValueError) as exc:
        raise WireError(f"malformed result entry: {exc}") from None


def partial_fields(header: PartialHeader, samples: Samples) -> Fields:
    return {"header": header.model_dump_json(), "pcm": encode_pcm(samples)}


def read_partial(fields: dict[bytes, bytes]) -> tuple[PartialHeader, Samples]:
    try:
        return PartialHeader.model_validate_json(fields[b"header"]), decode_pcm(fields[b"pcm"])
    except (KeyError, ValueError) as exc:
        raise WireError(f"malformed partial request: {exc}") from None


def reading_fields(header: ReadingHeader) -> Fields:
    return {"header": header.model_dump_json()}


def read_reading(fields: dict[bytes, bytes]) -> ReadingHeader:
    try:
        return ReadingHeader.model_validate_json(fields[b"header"])
    except (KeyError, ValueError) as exc:
        raise WireError(f"malformed partial reading: {exc}") from None
