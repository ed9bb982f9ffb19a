"""One load-generating process: the synthetic participants of some rooms, on one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx

from loadtest.metrics import parse, total
from loadtest.schedule import Turn, conversation, room_languages
from loadtest.speech import EncodedClip, PacketMicrophone, load_clips
from pipeline.events import (
    CaptionFinal,
    DubStarted,
    FloorChanged,
    RoomEvent,
    UtteranceDropped,
    UtteranceFailed,
)
from server.access import mint
from server.ice import use_loopback_candidates
from testkit.peer import Participant, ReceivedAudio

QUIET_AFTER_S = 6.0  # the drain ends this long after the last event, or at drain_s
Progress = Any  # a multiprocessing queue of (kind, value) tuples


@dataclass(frozen=True)
class WorkerPlan:
    """The participants one process drives: (room index, participant number) pairs."""

    url: str
    run_id: str
    members: list[tuple[int, int]]
    participants: int
    languages: list[str]
    duration_s: float
    speech_dir: Path
    seed: int
    join_interval_s: float
    drain_s: float
    start_at: float  # wall clock: every process starts its rooms' conversations together
    speakers: int | None = None  # only the first few participants of a room talk
    overlap: float = 0.25  # chance that a second speaker starts at once
    token_secret: str | None = None  # an operator's server: each participant gets a token


def _is_loopback(url: str) -> bool:
    host = urlparse(url).hostname or ""
    return host == "localhost" or host.startswith("127.")


def _token(plan: WorkerPlan, room_id: str, identity: str) -> str | None:
    if plan.token_secret is None:
        return None
    ttl_s = round(plan.duration_s + plan.drain_s) + 3600
    return mint(plan.token_secret, room_id, identity, "speaker", ttl_s)


class LoadParticipant(Participant):
    """A participant that speaks pre-encoded packets and keeps only the levels it heard."""

    def __init__(self, url: str, room: str, name: str, language: str, progress: Progress) -> None:
        super().__init__(url, room, name, language, heard=ReceivedAudio(keep_samples=False))
        self.mic = PacketMicrophone()
        self.progress = progress

    def _on_message(self, message: str | bytes) -> None:
        before = len(self.received)
        super()._on_message(message)
        if len(self.received) > before:
            at, event = self.received[-1]
            if isinstance(event, CaptionFinal) and event.speech_end_at:
                self.progress.put(("caption", at - event.speech_end_at))

    def report(self) -> dict[str, Any]:
        return {
            "room": self.room,
            "name": self.name,
            "id": self.participant_id,
            "language": self.language,
            "spoken": self.mic.spoken,
            "events": [
                {"arrival": at, "event": e.model_dump(mode="json")}
                for at, e in self.received
                if isinstance(
                    e, CaptionFinal | UtteranceFailed | UtteranceDropped | DubStarted | FloorChanged
                )
            ],
            "onsets": self.heard.onsets(),
            "packets": self.heard.count,
            "listened_s": self.heard.levels[-1][0] - self.heard.levels[0][0]
            if self.heard.levels
            else 0.0,
        }


async def _play(
    room: dict[int, LoadParticipant], turns: list[Turn], start_at: float, progress: Progress
) -> None:
    """Say this process's share of a room's turns at their times; bounded in time."""
    for turn in sorted(turns, key=lambda t: t.at_s):
        await asyncio.sleep(max(0.0, start_at + turn.at_s - time.time()))
        if turn.speaker in room:
            room[turn.speaker].mic.say(turn.clip)
            progress.put(("spoken", 1))
    # The room's conversation ends when its last turn ends, whoever (in any process) says it.
    ends_at = start_at + max((t.at_s + t.clip.duration_s for t in turns), default=0.0)
    await asyncio.sleep(max(0.0, ends_at - time.time()))
    deadline = time.monotonic() + 60
    while any(p.mic.speaking for p in room.values()) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)


def awaits_more(received: list[RoomEvent]) -> bool:
    """Whether a participant's events say more is coming: an utterance it heard of (a partial,
    a dub) has no terminal event yet, or the floor's last known queue holds speech back."""
    heard_of: set[str] = set()
    ended: set[str] = set()
    queue: list[str] = []
    for event in received:
        if isinstance(event, FloorChanged):
            queue = event.queue
        elif (utterance := getattr(event, "utterance_id", None)) is not None:
            heard_of.add(utterance)
            if isinstance(event, CaptionFinal | UtteranceFailed | UtteranceDropped):
                ended.add(utterance)
    return bool(heard_of - ended or queue)


async def _server_busy(http: httpx.AsyncClient, url: str) -> bool:
    """Whether the gateway still owes results (its in-flight gauge); unknown reads as idle."""
    try:
        text = (await http.get(f"{url}/metrics", timeout=5)).text
    except httpx.HTTPError:
        return False
    return total(parse(text), "dragoman_targets_in_flight") > 0


async def _drain(
    http: httpx.AsyncClient, url: str, people: list[LoadParticipant], drain_s: float
) -> None:
    """Wait for the last finals: until the server owes none, no one awaits more and nothing
    arrived for a while since the conversation ended (or since the last event, if later),
    bounded by drain_s. A slow server's late finals are late, not lost; only what never comes
    within drain_s is lost."""
    ended = time.time()
    deadline = time.monotonic() + drain_s
    while time.monotonic() < deadline:
        latest = max((at for p in people for at, _ in p.events), default=0.0)
        waiting = any(awaits_more([e for _, e in p.received]) for p in people)
        quiet = time.time() - max(latest, ended) > QUIET_AFTER_S
        if quiet and not waiting and not await _server_busy(http, url):
            return
        await asyncio.sleep(0.5)


async def _run(plan: WorkerPlan, progress: Progress) -> list[dict[str, Any]]:
    if _is_loopback(plan.url):
        use_loopback_candidates(True)
    clips: dict[str, list[EncodedClip]] = load_clips(plan.speech_dir, plan.languages)
    languages = room_languages(plan.participants, plan.languages)
    rooms: dict[int, dict[int, LoadParticipant]] = {}
    async with httpx.AsyncClient(timeout=60) as http:
        try:
            for room, number in plan.members:
                room_id = f"{plan.run_id}-{room}"
                person = LoadParticipant(
                    plan.url, room_id, f"p{number}", languages[number], progress
                )
                person.token = _token(plan, room_id, f"{plan.run_id}-p{number}")
                await person.join(http, video=False, microphone=person.mic)
                rooms.setdefault(room, {})[number] = person
                progress.put(("joined", 1))
                await asyncio.sleep(plan.join_interval_s)
            schedules = {
                room: conversation(
                    languages,
                    clips,
                    plan.duration_s,
                    plan.seed + room,
                    overlap=plan.overlap,
                    speakers=plan.speakers,
                )
                for room in rooms
            }
            await asyncio.gather(
                *(_play(rooms[r], s, plan.start_at, progress) for r, s in schedules.items())
            )
            everyone = [p for room in rooms.values() for p in room.values()]
            await _drain(http, plan.url, everyone, plan.drain_s)
            return [p.report() for p in everyone]
        finally:
            for person in [p for room in rooms.values() for p in room.values()]:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(person.leave(http), timeout=10)


def worker_entry(plan: WorkerPlan, progress: Progress, results: Progress) -> None:
    """Entry point of a load process: its reports (or its error) go to `results`."""
    try:
        results.put(("ok", run_worker(plan, progress)))
    except Exception as exc:
        results.put(("error", f"{type(exc).__name__}: {exc}"))


def run_worker(plan: WorkerPlan, progress: Progress) -> list[dict[str, Any]]:
    """Entry point of a load process (spawned)."""
    return asyncio.run(_run(plan, progress))
