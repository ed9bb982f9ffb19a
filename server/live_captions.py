"""Live captions of the floor holder: their open segment read again as it grows.

One stream per room (only the holder is read, so the cost does not grow with the room). A
quick reading (a short encoder window) is taken when enough new speech came since the last
one; a full one at once when the speaker pauses: it usually covers the whole segment and then
is the final's transcript (the final needs no decode of its own). Each reading that changes
the text goes to every listener language as a `caption.partial`; the words two readings agree
on are committed, and the final's decode continues them: a final never takes back a word.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from pipeline.audio import ASR_SAMPLE_RATE, Samples
from pipeline.bus import Bus
from pipeline.events import CaptionPartial
from pipeline.live import PartialReading, PartialRequest
from pipeline.segmenter import Segment
from server.participant import Participant

PAUSE_S = 0.15  # quiet this long at a segment's end: read it now, the segment may be ending


@dataclass(frozen=True)
class LivePacing:
    min_audio_s: float = 0.8  # speech before a segment's first reading
    min_step_s: float = 0.5  # new speech between two readings, at least


@dataclass
class _Stream:
    """What the readings of one segment settled so far."""

    speaker: str
    sequence: int
    committed: str = ""
    hypothesis: str = ""
    translations: dict[str, str] = field(default_factory=dict)
    revision: int = -1
    read_s: float = 0.0  # audio the last reading covered
    read_whole: bool = False  # the last reading was one a final can take (full window)
    speculate: bool = False  # the next reading is one at a pause (the final's, maybe)
    next_s: float = 0.0  # no reading before the segment is this long
    shown: tuple[str, str] = ("", "")
    reading: asyncio.Future[str] | None = None  # the hypothesis of the reading in flight
    reading_s: float = 0.0  # audio it covers
    reading_whole: bool = False

    def owns(self, participant: Participant) -> bool:
        return (self.speaker, self.sequence) == (participant.id, participant.sequence)


class LiveCaptions:
    def __init__(
        self,
        room_id: str,
        bus: Bus,
        pacing: LivePacing,
        holder: Callable[[], str | None],
        languages: Callable[[Participant], tuple[str, ...]],
        send: Callable[[str, CaptionPartial], None],
        spawn: Callable[[Coroutine[Any, Any, None], str], None],
    ) -> None:
        self.room_id, self.bus, self.pacing = room_id, bus, pacing
        self._holder, self._languages, self._send, self._spawn = holder, languages, send, spawn
        self._stream: _Stream | None = None
        self._reading = False

    def close(self) -> None:
        """The room closes: a final waiting for a reading that will not run decodes itself."""
        stream, self._stream = self._stream, None
        if stream is not None and stream.reading is not None and not stream.reading.done():
            stream.reading.set_result("")

    def tap(self, participant: Participant) -> _Tap:
        return _Tap(self, participant)

    def _stream_of(self, participant: Participant) -> _Stream:
        stream = self._stream
        if stream is None or not stream.owns(participant):
            stream = self._stream = _Stream(participant.id, participant.sequence)
            stream.next_s = self.pacing.min_audio_s
        return stream

    def wants(self, participant: Participant, open_s: float, pause_s: float) -> bool:
        """On the segmenter's thread: whether to read the holder's open segment now."""
        if self._reading or participant.id != self._holder():
            return False
        stream = self._stream_of(participant)
        pausing = pause_s >= PAUSE_S and stream.read_s < open_s - pause_s
        stream.speculate = pausing and open_s >= self.pacing.min_audio_s / 2
        return stream.speculate or open_s >= stream.next_s

    def grown(self, participant: Participant, samples: Samples) -> None:
        if self._reading or participant.id != self._holder():
            return
        self._reading = True
        stream = self._stream_of(participant)
        stream.reading = asyncio.get_running_loop().create_future()
        stream.reading_s, stream.reading_whole = len(samples) / ASR_SAMPLE_RATE, stream.speculate
        self._spawn(self._read(participant, stream, samples), f"live-{participant.id}")

    async def _read(self, participant: Participant, stream: _Stream, samples: Samples) -> None:
        heard_s = len(samples) / ASR_SAMPLE_RATE
        languages = self._languages(participant)
        request = PartialRequest(
            utterance_id=f"{self.room_id}/{stream.speaker}/{stream.sequence}",
            language=participant.language,
            samples=samples,
            committed=stream.committed,
            previous=stream.hypothesis,
            targets=languages[1:],
            whole=stream.reading_whole,  # as grown() took it (wants() may have moved on)
        )
        reading: PartialReading | None = None
        try:
            reading = await self.bus.read_partial(request)
        finally:
            self._reading = False
            if stream.reading is not None and not stream.reading.done():
                stream.reading.set_result(reading.hypothesis if reading else "")
        stream.next_s = heard_s + self.pacing.min_step_s
        if reading is None or not stream.owns(participant):  # skipped, or the segment ended
            return
        stream.read_s, stream.read_whole = heard_s, request.whole
        self._settle(stream, reading)
        if (stream.committed, reading.agreement.unstable) != stream.shown:
            stream.shown = (stream.committed, reading.agreement.unstable)
            stream.revision += 1
            self._show(participant, stream, request.utterance_id, languages)

    @staticmethod
    def _settle(stream: _Stream, reading: PartialReading) -> None:
        stream.committed = reading.agreement.committed
        stream.hypothesis = reading.hypothesis
        stream.translations.update(reading.translations)

    def _show(
        self, speaker: Participant, stream: _Stream, utterance_id: str, languages: tuple[str, ...]
    ) -> None:
        committed, unstable = stream.shown
        for language in languages:
            translated = committed if language == speaker.language else None
            event = CaptionPartial(
                utterance_id=utterance_id,
                revision=stream.revision,
                speaker=speaker.id,
                source_language=speaker.language,
                committed_text=committed,
                unstable_text=unstable,
                target_language=language,
                target_text=translated or stream.translations.get(language, ""),
            )
            self._send(language, event)

    def settle(self, speaker: Participant, segment: Segment) -> Settled:
        """When the segment ends (no partial of it follows): its committed words, and its
        transcript when a reading covered all its speech, done or still in flight (then the
        final needs no decode of its own)."""
        stream = self._stream
        if stream is None or not stream.owns(speaker):
            return Settled()
        self._stream = None
        voiced_s = (segment.voiced_until_s or segment.end_s) - segment.start_s
        if stream.reading is not None and not stream.reading.done():
            covers = stream.reading_whole and stream.reading_s >= voiced_s
            return Settled(stream.committed, heard_soon=stream.reading if covers else None)
        heard = stream.hypothesis if stream.read_whole and stream.read_s >= voiced_s else ""
        return Settled(stream.committed, heard)


@dataclass(frozen=True)
class Settled:
    """What live captions know of a segment that just ended."""

    committed: str = ""
    heard: str = ""
    heard_soon: asyncio.Future[str] | None = None


@dataclass(frozen=True)
class _Tap:
    """One participant's ingest, seen by the room's live captions."""

    live: LiveCaptions
    participant: Participant

    def wants(self, open_s: float, pause_s: float) -> bool:
        return self.live.wants(self.participant, open_s, pause_s)

    def grown(self, samples: Samples) -> None:
        self.live.grown(self.participant, samples)
