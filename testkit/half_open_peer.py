"""A peer that joins, answers ICE connectivity checks, and never completes DTLS.

What a crashed, stalled or hostile client leaves behind: the gateway sees a live ICE path but a
connection that never becomes `connected`. Built from aioice directly (no DTLS at all), with a
real offer: its own ICE credentials and candidates, a well-formed fingerprint it will never use.
"""

from __future__ import annotations

import secrets
from typing import Any

import aioice
import httpx
from aiortc.rtcicetransport import candidate_from_aioice, candidate_to_aioice
from aiortc.sdp import SessionDescription, candidate_to_sdp


class HalfOpenPeer:
    def __init__(self, base_url: str, room: str, name: str, language: str = "en") -> None:
        self.base_url, self.room, self.name, self.language = base_url, room, name, language
        self.ice = aioice.Connection(ice_controlling=True, components=1)
        self.participant_id = ""
        self.secret = ""

    async def offer(self) -> str:
        """A DataChannel-only offer, as a browser would make it."""
        await self.ice.gather_candidates()
        fingerprint = ":".join(f"{byte:02X}" for byte in secrets.token_bytes(32))
        candidates = [
            f"a=candidate:{candidate_to_sdp(candidate_from_aioice(c))}"
            for c in self.ice.local_candidates
        ]
        lines = [
            "v=0",
            f"o=- {secrets.randbelow(2**31)} 1 IN IP4 127.0.0.1",
            "s=-",
            "t=0 0",
            "a=group:BUNDLE 0",
            "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
            "c=IN IP4 127.0.0.1",
            "a=mid:0",
            "a=sctp-port:5000",
            "a=max-message-size:65536",
            f"a=ice-ufrag:{self.ice.local_username}",
            f"a=ice-pwd:{self.ice.local_password}",
            f"a=fingerprint:sha-256 {fingerprint}",
            "a=setup:actpass",
            *candidates,
            "a=end-of-candidates",
        ]
        return "\r\n".join(lines) + "\r\n"

    async def join(self, http: httpx.AsyncClient, headers: dict[str, str] | None = None) -> None:
        """Join, then complete ICE with the gateway's answer, and stop there."""
        body = {"name": self.name, "language": self.language, "sdp": await self.offer()}
        url = f"{self.base_url}/api/rooms/{self.room}/join"
        response = await http.post(url, json=body, headers=headers or {})
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        self.participant_id, self.secret = answer["participant_id"], answer["secret"]
        await self._complete_ice(answer["sdp"])

    async def _complete_ice(self, answer: str) -> None:
        media = SessionDescription.parse(answer).media[0]
        assert media.ice is not None
        self.ice.remote_username = media.ice.usernameFragment
        self.ice.remote_password = media.ice.password
        for candidate in media.ice_candidates:
            await self.ice.add_remote_candidate(candidate_to_aioice(candidate))
        await self.ice.add_remote_candidate(None)
        await self.ice.connect()

    async def close(self) -> None:
        await self.ice.close()
