"""All rooms of this gateway, and the route from pipeline results back to their room."""

from __future__ import annotations

import logging
import re

from prometheus_client import Gauge

from pipeline.audio import Audio
from pipeline.bus import Job, JobResult
from pipeline.events import CaptionFinal, ServerClosing, TranslationStatus
from server.directory import RoomDirectory
from server.errors import BadRequest, NotFound, RoomElsewhere, TooMany
from server.room import TARGETS_IN_FLIGHT, Room, RoomContext

LOG = logging.getLogger(__name__)
ROOM_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
OPEN_ROOMS = Gauge("dragoman_rooms", "Rooms open on this gateway")


class RoomRegistry:
    def __init__(self, context: RoomContext, directory: RoomDirectory | None = None) -> None:
        self.context = context
        self.directory = directory
        self.rooms: dict[str, Room] = {}
        self.draining = False
        self.translation_paused: TranslationStatus | None = None

    async def start(self) -> None:
        if self.directory is not None:
            await self.directory.start()

    async def elsewhere(self, room_id: str) -> str | None:
        """The URL of another live gateway holding the room (a lookup: it claims nothing)."""
        if self.directory is None or room_id in self.rooms or not ROOM_ID.match(room_id):
            return None
        return await self.directory.elsewhere(room_id)

    async def redirect_if_elsewhere(self, room_id: str, path: str) -> None:
        """A room held by another live gateway: send the request there (307)."""
        url = await self.elsewhere(room_id)
        if url is not None:
            raise RoomElsewhere(url + path)

    async def room_for_join(self, room_id: str, path: str) -> Room:
        """The room a join enters: ours, or new here (claimed in the directory); a room held
        by another live gateway answers 307 with that gateway's `path`."""
        if not ROOM_ID.match(room_id):
            raise BadRequest("room ids are 1-64 letters, digits, '-' or '_'")
        room = self.rooms.get(room_id)
        if room is not None:
            return room
        self._check_capacity()
        if self.directory is not None:
            url = await self.directory.claim(room_id)
            if url is not None:
                raise RoomElsewhere(url + path)
        room = self.rooms.get(room_id)  # another join may have made it meanwhile
        if room is not None:
            return room
        try:
            self._check_capacity()
        except TooMany:
            if self.directory is not None:
                await self.directory.release(room_id)
            raise
        return self._create(room_id)

    def _check_capacity(self) -> None:
        if len(self.rooms) >= self.context.settings.max_rooms:
            raise TooMany(f"this server holds at most {self.context.settings.max_rooms} rooms")

    def announce(self, status: TranslationStatus) -> None:
        """Translation paused or resumed: every participant of every room is told."""
        self.translation_paused = status if status.paused else None
        for room in self.rooms.values():
            room.announce(status)

    def begin_drain(self, deadline_s: float) -> None:
        """Shutting down: joins are refused from now on, and every participant is told once."""
        if self.draining:
            return
        self.draining = True
        closing = ServerClosing(reason="the server is shutting down", deadline_s=deadline_s)
        for room in self.rooms.values():
            room.announce(closing)

    def get(self, room_id: str) -> Room:
        room = self.rooms.get(room_id)
        if room is None:
            raise NotFound(f"no room {room_id!r}")
        return room

    def _create(self, room_id: str) -> Room:
        room = Room(room_id, self.context, on_empty=self.close_if_empty)
        room.start()
        self.rooms[room_id] = room
        OPEN_ROOMS.set(len(self.rooms))
        return room

    async def close_if_empty(self, room: Room) -> None:
        """However a room became empty (leave, expiry, eviction, removal, a failed join), it
        closes: its slot, its media and its directory claim are freed."""
        if self.rooms.get(room.id) is room and not room.participants:
            await self._close(room)

    async def _close(self, room: Room) -> None:
        del self.rooms[room.id]
        OPEN_ROOMS.set(len(self.rooms))
        await room.close()
        if self.directory is not None:
            await self.directory.release(room.id)

    async def deliver(self, done: JobResult) -> None:
        """A pipeline result, to the room that asked for it (if it still exists)."""
        TARGETS_IN_FLIGHT.dec(len(done.job.targets))
        room = self.rooms.get(done.job.room_id)
        if room is None:
            LOG.info("result for closed room %s dropped", done.job.room_id)
            return
        await room.on_result(done)

    def deliver_caption(self, job: Job, caption: CaptionFinal) -> None:
        room = self.rooms.get(job.room_id)
        if room is not None:
            room.deliver_caption(job, caption)

    def deliver_clause(self, job: Job, language: str, clause: Audio) -> None:
        room = self.rooms.get(job.room_id)
        if room is not None:
            room.deliver_clause(job, language, clause)

    async def flush_all(self) -> None:
        """End every inbound stream's open segment, so it is submitted before the bus drains."""
        for room in self.rooms.values():
            for participant in room.participants.values():
                if participant.audio_in is not None:
                    await participant.audio_in.flush()

    async def close_all(self) -> None:
        self.draining = True
        for room in list(self.rooms.values()):
            await self._close(room)
        if self.directory is not None:
            await self.directory.stop()
