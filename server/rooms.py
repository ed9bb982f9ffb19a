"""All rooms of this gateway, and the route from pipeline results back to their room."""

from __future__ import annotations

import logging
import re

from pipeline.bus import Job, JobResult
from pipeline.events import CaptionFinal, ServerClosing, TranslationStatus
from server.directory import RoomDirectory
from server.errors import BadRequest, NotFound, RoomElsewhere, TooMany
from server.room import Room, RoomContext

LOG = logging.getLogger(__name__)
ROOM_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


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
        """The URL of another live gateway holding the room; None when it is (or becomes) ours."""
        if self.directory is None or room_id in self.rooms or not ROOM_ID.match(room_id):
            return None
        return await self.directory.elsewhere(room_id)

    async def redirect_if_elsewhere(self, room_id: str, path: str) -> None:
        """A room held by another live gateway: send the join there (307)."""
        url = await self.elsewhere(room_id)
        if url is not None:
            raise RoomElsewhere(url + path)

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

    def get_or_create(self, room_id: str) -> Room:
        if not ROOM_ID.match(room_id):
            raise BadRequest("room ids are 1-64 letters, digits, '-' or '_'")
        room = self.rooms.get(room_id)
        if room is not None:
            return room
        if len(self.rooms) >= self.context.settings.max_rooms:
            raise TooMany(f"this server holds at most {self.context.settings.max_rooms} rooms")
        room = Room(room_id, self.context)
        room.start()
        self.rooms[room_id] = room
        return room

    async def close_if_empty(self, room_id: str) -> None:
        room = self.rooms.get(room_id)
        if room is not None and not room.participants:
            del self.rooms[room_id]
            await room.close()
            if self.directory is not None:
                await self.directory.release(room_id)

    async def deliver(self, done: JobResult) -> None:
        """A pipeline result, to the room that asked for it (if it still exists)."""
        room = self.rooms.get(done.job.room_id)
        if room is None:
            LOG.info("result for closed room %s dropped", done.job.room_id)
            return
        await room.on_result(done)

    def deliver_caption(self, job: Job, caption: CaptionFinal) -> None:
        room = self.rooms.get(job.room_id)
        if room is not None:
            room.deliver_caption(job, caption)

    async def flush_all(self) -> None:
        """End every inbound stream's open segment, so it is submitted before the bus drains."""
        for room in self.rooms.values():
            for participant in room.participants.values():
                if participant.audio_in is not None:
                    await participant.audio_in.flush()

    async def close_all(self) -> None:
        self.draining = True
        for room_id in list(self.rooms):
            room = self.rooms.pop(room_id)
            await room.close()
            if self.directory is not None:
                await self.directory.release(room_id)
        if self.directory is not None:
            await self.directory.stop()
