"""A participant's media connection, as the room sees it: the transport behind an interface.

The room routes; the peer owns its connection. It negotiates an offer (putting on each of the
offer's m-lines the outgoing track the room picks for it), hands the room what arrives (the
event channel, inbound tracks), and reports its state, a vanished client and a listener's
keyframe request. `AiortcPeer` is the WebRTC endpoint inside the gateway; the unit tests use
`testkit.fakes.FakePeer`; an SFU-backed peer fits the same interface.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, Protocol

from aiortc import RTCDataChannel, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from pipeline.settings import Settings
from server.errors import BadRequest
from server.ice import keep_loopback_candidates, rtc_configuration
from server.limits import MessageGuard
from server.media import PacketTrack

LOG = logging.getLogger(__name__)


class EventChannel(Protocol):
    """Where a participant's events go (a DataChannel labelled `events`)."""

    @property
    def readyState(self) -> str: ...

    @property
    def bufferedAmount(self) -> int: ...

    def send(self, data: str) -> None: ...

    def on(self, event: str, handler: Callable[..., Any]) -> Any: ...


class PeerEvents(Protocol):
    """What a peer tells the room about its connection."""

    def on_channel(self, channel: EventChannel) -> None: ...

    def on_track(self, track: MediaStreamTrack) -> None: ...

    def on_state(self, state: str) -> None: ...

    def on_vanished(self) -> None: ...

    def on_keyframe_request(self) -> None: ...


# The outgoing track for the next m-line of this kind, given the tracks already being sent.
PickOutgoing = Callable[[str, set[PacketTrack]], PacketTrack | None]


class Peer(ABC):
    """One participant's connection."""

    @property
    @abstractmethod
    def state(self) -> str:
        """`new`, `connecting`, `connected` (ICE and DTLS done), `failed` or `closed`."""

    @abstractmethod
    async def negotiate(self, offer: str, pick: PickOutgoing) -> str:
        """The answer to `offer` (BadRequest when it cannot be used), with outgoing tracks on
        the offer's free m-lines (none are invented)."""

    @abstractmethod
    def sending(self) -> set[PacketTrack]:
        """The outgoing tracks on this connection."""

    @abstractmethod
    async def close(self) -> None:
        """Close the connection (its inbound tracks end); never raises."""


PeerFactory = Callable[[PeerEvents], Peer]


class AiortcPeer(Peer):
    """The participant's WebRTC endpoint inside the gateway (aiortc)."""

    def __init__(self, settings: Settings, events: PeerEvents) -> None:
        self._loopback_only = settings.loopback_only
        self._events = events
        self._pc = RTCPeerConnection(rtc_configuration(settings))
        self._pc.on("datachannel", self._on_datachannel)
        self._pc.on("track", events.on_track)
        self._pc.on("connectionstatechange", self._on_state)

    @property
    def state(self) -> str:
        return str(self._pc.connectionState)

    def _on_state(self) -> None:
        self._events.on_state(self.state)

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        self._events.on_channel(channel)
        channel.on("message", MessageGuard(on_abuse=channel.close))
        # A closed event channel is the quickest sign of a vanished client (ICE consent takes
        # ~30 s to notice).
        channel.on("close", self._events.on_vanished)

    async def negotiate(self, offer: str, pick: PickOutgoing) -> str:
        if self._loopback_only:
            offer = keep_loopback_candidates(offer)
        pc = self._pc
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
            self._attach_outgoing(pick)
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:  # whatever aiortc raises on an offer it cannot use
            LOG.info("offer refused by aiortc: %s: %s", type(exc).__name__, exc)
            raise BadRequest(f"cannot use this offer: {exc or type(exc).__name__}") from None
        return str(pc.localDescription.sdp)

    def _attach_outgoing(self, pick: PickOutgoing) -> None:
        for transceiver in self._pc.getTransceivers():
            if transceiver.sender.track is not None or transceiver.direction == "inactive":
                continue
            track = pick(transceiver.kind, self.sending())
            if track is None:
                continue
            sender = self._pc.addTrack(track)  # takes this transceiver: the first free of its kind
            if track.kind == "video":
                self._forward_keyframe_requests(sender)

    def _forward_keyframe_requests(self, sender: RTCRtpSender) -> None:
        # aiortc only forces keyframes for frames it encodes itself; our packets are encoded once
        # for everyone, so a listener's PLI/FIR must reach the shared encoder.
        own = sender._send_keyframe

        def send_keyframe() -> None:
            own()
            self._events.on_keyframe_request()

        sender._send_keyframe = send_keyframe  # type: ignore[method-assign]

    def sending(self) -> set[PacketTrack]:
        tracks = (t.sender.track for t in self._pc.getTransceivers())
        return {track for track in tracks if isinstance(track, PacketTrack)}

    async def close(self) -> None:
        try:
            await self._pc.close()
        except Exception as exc:  # aiortc fails to close some half-negotiated peers
            LOG.warning("closing a peer connection failed: %r", exc)


def aiortc_peers(settings: Settings) -> PeerFactory:
    return lambda events: AiortcPeer(settings, events)
