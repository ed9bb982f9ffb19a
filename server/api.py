"""Signalling over HTTP: join (offer → answer), renegotiate, floor, mute, leave; room state.

Every error is a 4xx with a one-line `detail`, never a 500.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field, field_validator
from pydantic_core import PydanticCustomError

from pipeline.errors import UnsupportedLanguageError
from pipeline.events import CaptionFinal, FloorChanged, ParticipantInfo
from pipeline.languages import LANGUAGE_NAMES, normalize_language
from pipeline.settings import IceServer
from pipeline.tts.voices import voice_specs
from server.access import Access, Grant
from server.errors import BadRequest, Forbidden, Unavailable
from server.room import Room
from server.rooms import ROOM_ID, RoomRegistry
from server.sdp_rules import OfferRefused, check_offer
from server.turn import ice_servers_for

MAX_SDP_BYTES = 64 * 1024
MAX_MEDIA_SECTIONS = 8
router = APIRouter(prefix="/api")


def registry(request: Request) -> RoomRegistry:
    return request.app.state.registry  # type: ignore[no-any-return]


Registry = Annotated[RoomRegistry, Depends(registry)]


def client_address(request: Request) -> str:
    """The client's address: the peer's, or a trusted proxy's X-Forwarded-For (app.py)."""
    return request.client.host if request.client else "unknown"


def room_grant(room_id: str, request: Request) -> Grant:
    """Every room call carries the room's token (unless rooms are open, in development)."""
    access: Access = request.app.state.access
    return access.admit(room_id, request.headers.get("authorization"))


RoomGrant = Annotated[Grant, Depends(room_grant)]


def owned(room: Room, participant_id: str, grant: Grant) -> Room:
    """A participant's calls need that participant's own token (its secret is checked too)."""
    participant = room.participants.get(participant_id)
    others = participant is not None and participant.grant.identity != grant.identity
    if others and grant.identity is not None:
        raise Forbidden("this access token belongs to another participant")
    return room


class SessionDescription(BaseModel):
    sdp: str
    type: Literal["offer"] = "offer"

    @field_validator("sdp")
    @classmethod
    def _looks_like_sdp(cls, sdp: str) -> str:
        size = len(sdp.encode("utf-8", "surrogatepass"))
        if size > MAX_SDP_BYTES:
            raise PydanticCustomError(
                "too_large",
                "the SDP is {size} bytes; at most {limit}",
                {"size": size, "limit": MAX_SDP_BYTES},
            )
        if not sdp.startswith("v=0"):
            raise ValueError("not an SDP offer (must start with 'v=0')")
        sections = sdp.count("\nm=")
        if sections == 0:
            raise ValueError("the offer has no media section (add a DataChannel, audio or video)")
        if sections > MAX_MEDIA_SECTIONS:
            raise PydanticCustomError(
                "too_large",
                "the offer has {sections} media sections; at most {limit}",
                {"sections": sections, "limit": MAX_MEDIA_SECTIONS},
            )
        try:
            check_offer(sdp)
        except OfferRefused as exc:
            raise ValueError(f"not a usable WebRTC offer: {exc}") from None
        return sdp


class JoinRequest(SessionDescription):
    name: str = Field(min_length=1, max_length=64)
    language: str = Field(min_length=2, max_length=16)
    participant_id: str | None = Field(
        None, max_length=64, description="reconnect as this participant"
    )
    secret: str | None = Field(None, max_length=128)
    lipsync: bool = Field(True, description="the speaker's lips follow my language's speech")


class JoinResponse(BaseModel):
    participant_id: str
    secret: str = Field(description="keep it: renegotiation, floor, leave and reconnection need it")
    sdp: str
    type: Literal["answer"] = "answer"
    language: str


class RoomEntry(BaseModel):
    """How a browser joins a room: at which gateway, and with which ICE servers."""

    gateway_url: str | None = Field(
        description="the gateway holding the room, when it is not this one"
    )
    ice_servers: list[IceServer]


class Answer(BaseModel):
    sdp: str
    type: Literal["answer"] = "answer"


class Credentials(BaseModel):
    secret: str = Field(min_length=1, max_length=128)


class Renegotiation(SessionDescription, Credentials):
    pass


class FloorAction(Credentials):
    action: Literal["request", "release"]


class MuteAction(Credentials):
    muted: bool


class LipsyncChoice(Credentials):
    enabled: bool


class RoomLipsync(BaseModel):
    enabled: bool


class Moderation(BaseModel):
    action: Literal["mute", "unmute", "requeue", "remove"]


class RoomState(BaseModel):
    room: str
    participants: list[ParticipantInfo]
    floor: FloorChanged


class Language(BaseModel):
    code: str
    name: str
    voices: list[str] = Field(description="its voices, the default first")


class RoomPlayout(BaseModel):
    mode: Literal["live", "smooth"] = Field(
        description="live: a short delay, dubs may pause between segments; smooth: a longer "
        "first delay, then one turn's dubs back to back"
    )


class RoomVoices(BaseModel):
    mode: Literal["matched", "neutral"] = Field(
        description="matched: each speaker a voice near their own; neutral: the default voices"
    )


def checked_language(code: str, supported: list[str]) -> str:
    try:
        language = normalize_language(code)
    except UnsupportedLanguageError as exc:
        raise BadRequest(str(exc)) from None
    if language not in supported:
        raise BadRequest(
            f"language {language!r} is not served here; choose one of {', '.join(supported)}"
        )
    return language


@router.get("/languages")
async def languages(request: Request) -> list[Language]:
    """The languages a participant can choose: heard, translated and spoken by this server."""
    voices = voice_specs(request.app.state.settings.tts_voices)
    return [
        Language(code=code, name=LANGUAGE_NAMES[code], voices=list(voices.get(code, ())))
        for code in request.app.state.languages
    ]


@router.get("/rooms/{room_id}/entry")
async def entry(room_id: str, rooms: Registry, grant: RoomGrant, request: Request) -> RoomEntry:
    """Call before creating the peer connection: where to join, and STUN/TURN servers (TURN
    with credentials that expire after DRAGOMAN_TURN_TTL_S). A lookup: it claims no room."""
    request.app.state.entry_rate.check(client_address(request))
    if not ROOM_ID.match(room_id):
        raise BadRequest("room ids are 1-64 letters, digits, '-' or '_'")
    gateway_url = await rooms.elsewhere(room_id)
    user = secrets.token_hex(8)
    return RoomEntry(
        gateway_url=gateway_url, ice_servers=ice_servers_for(rooms.context.settings, user)
    )


@router.post("/rooms/{room_id}/join")
async def join(
    room_id: str, body: JoinRequest, rooms: Registry, request: Request, grant: RoomGrant
) -> JoinResponse:
    """Join (creating the room on first join), or reconnect with participant_id and secret.
    A room held by another gateway answers 307 with that gateway's join URL."""
    language = checked_language(body.language, request.app.state.languages)
    if rooms.draining:
        raise Unavailable(
            "the server is shutting down; join again in a moment", {"Retry-After": "5"}
        )
    request.app.state.join_rate.check(client_address(request))
    if body.participant_id is not None:
        await rooms.redirect_if_elsewhere(room_id, request.url.path)
        room = rooms.get(room_id)
        owned(room, body.participant_id, grant)
        participant, answer = await room.reconnect(body.participant_id, body.secret or "", body.sdp)
    else:
        room = await rooms.room_for_join(room_id, request.url.path)
        participant, answer = await room.join(
            grant.name or body.name, language, body.sdp, grant, lipsync=body.lipsync
        )
    if rooms.translation_paused is not None:
        participant.outbox.send(rooms.translation_paused)
    return JoinResponse(
        participant_id=participant.id,
        secret=participant.secret,
        sdp=answer,
        language=participant.language,
    )


@router.post("/rooms/{room_id}/participants/{participant_id}/offer")
async def renegotiate(
    room_id: str, participant_id: str, body: Renegotiation, rooms: Registry, grant: RoomGrant
) -> Answer:
    """A new offer on the same connection (camera or microphone added or removed)."""
    room = owned(rooms.get(room_id), participant_id, grant)
    answer = await room.renegotiate(participant_id, body.secret, body.sdp)
    return Answer(sdp=answer)


@router.post("/rooms/{room_id}/participants/{participant_id}/floor")
async def floor(
    room_id: str, participant_id: str, body: FloorAction, rooms: Registry, grant: RoomGrant
) -> FloorChanged:
    room = owned(rooms.get(room_id), participant_id, grant)
    if body.action == "request":
        await room.request_floor(participant_id, body.secret)
    else:
        await room.release_floor(participant_id, body.secret)
    return FloorChanged(holder=room.floor.holder, queue=list(room.floor.queue))


@router.post("/rooms/{room_id}/participants/{participant_id}/mute")
async def mute(
    room_id: str, participant_id: str, body: MuteAction, rooms: Registry, grant: RoomGrant
) -> ParticipantInfo:
    room = owned(rooms.get(room_id), participant_id, grant)
    room.set_muted(participant_id, body.secret, body.muted)
    return room.participants[participant_id].info


@router.post("/rooms/{room_id}/participants/{participant_id}/lipsync")
async def lipsync(
    room_id: str, participant_id: str, body: LipsyncChoice, rooms: Registry, grant: RoomGrant
) -> ParticipantInfo:
    """Lip-synced video for me, or the original video (with translated audio either way)."""
    room = owned(rooms.get(room_id), participant_id, grant)
    room.set_lipsync(participant_id, body.secret, body.enabled)
    return room.participants[participant_id].info


@router.post("/rooms/{room_id}/lipsync")
async def room_lipsync(
    room_id: str, body: RoomLipsync, rooms: Registry, grant: RoomGrant
) -> RoomLipsync:
    """A moderator turns lip-sync on or off for the whole room."""
    if not grant.moderates:
        raise Forbidden("only a moderator's token may change the room's lip-sync")
    room = rooms.get(room_id)
    room.set_room_lipsync(body.enabled)
    return RoomLipsync(enabled=room.lip_video.enabled)


@router.post("/rooms/{room_id}/voices")
async def room_voices(
    room_id: str, body: RoomVoices, rooms: Registry, grant: RoomGrant
) -> RoomVoices:
    """A moderator chooses the room's voices: matched to each speaker, or the neutral defaults."""
    if not grant.moderates:
        raise Forbidden("only a moderator's token may change the room's voices")
    room = rooms.get(room_id)
    room.voice_mode = body.mode
    return RoomVoices(mode=room.voice_mode)


@router.post("/rooms/{room_id}/playout")
async def room_playout(
    room_id: str, body: RoomPlayout, rooms: Registry, grant: RoomGrant
) -> RoomPlayout:
    """A moderator chooses how the room's dubs play: live, or smooth."""
    if not grant.moderates:
        raise Forbidden("only a moderator's token may change the room's playout")
    room = rooms.get(room_id)
    room.set_playout_mode(body.mode)
    return RoomPlayout(mode=room.playout_mode)


@router.post("/rooms/{room_id}/participants/{participant_id}/leave", status_code=204)
async def leave(
    room_id: str, participant_id: str, body: Credentials, rooms: Registry, grant: RoomGrant
) -> None:
    room = owned(rooms.get(room_id), participant_id, grant)
    room.authorize(participant_id, body.secret)
    await room.leave(participant_id)


@router.get("/rooms/{room_id}")
async def room_state(room_id: str, rooms: Registry, grant: RoomGrant) -> RoomState:
    room = rooms.get(room_id)
    return RoomState(
        room=room.id,
        participants=[p.info for p in room.participants.values()],
        floor=FloorChanged(holder=room.floor.holder, queue=list(room.floor.queue)),
    )


@router.get("/rooms/{room_id}/transcript")
async def transcript(room_id: str, rooms: Registry, grant: RoomGrant) -> list[CaptionFinal]:
    """Every final caption of the room so far (bounded to the last 10 000)."""
    return list(rooms.get(room_id).transcript)


@router.post("/rooms/{room_id}/participants/{participant_id}/moderate", status_code=204)
async def moderate(
    room_id: str,
    participant_id: str,
    body: Moderation,
    rooms: Registry,
    grant: RoomGrant,
    request: Request,
) -> None:
    """A moderator's token: mute (held until a moderator unmutes), unmute, move to the back of
    the floor queue, or remove (every session of that identity ends; its tokens are refused)."""
    if not grant.moderates:
        raise Forbidden("only a moderator's token may mute, requeue or remove others")
    room = rooms.get(room_id)
    target = room.participants.get(participant_id)
    if body.action == "remove" and target is not None:
        access: Access = request.app.state.access
        access.revoke(room_id, target.grant)
    await room.moderate(participant_id, body.action)
