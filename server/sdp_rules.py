"""What an SDP offer must be before the gateway negotiates it: what browsers send and the WebRTC
rules (JSEP, RFC 8829; ICE, RFC 8839; DTLS-SRTP, RFC 8842) require.

aiortc's parser trusts its input: a malformed offer can raise anything from inside it, and some
forbidden offers (no DTLS fingerprint, plain RTP) are answered. Checking here first turns every
such offer into a one-line reason for a 4xx.
"""

from __future__ import annotations

import ipaddress
import re

from aiortc.rtcicetransport import RTCIceCandidate
from aiortc.sdp import MediaDescription, SessionDescription

RTP_PROFILES = frozenset({"UDP/TLS/RTP/SAVPF", "TCP/TLS/RTP/SAVPF"})
SCTP_PROFILES = frozenset({"UDP/DTLS/SCTP", "TCP/DTLS/SCTP", "DTLS/SCTP"})
DIGEST_BYTES = {"sha-256": 32, "sha-384": 48, "sha-512": 64}  # what aiortc can verify
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n)")
ICE_CHARS = re.compile(r"^[A-Za-z0-9+/]+$")
TOKEN = re.compile(r"^[A-Za-z0-9!#$%&'*+\-.^_`{|}~]{1,64}$")
MDNS_NAME = re.compile(r"^[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})*\.local$")
PAYLOAD_REFERENCE = re.compile(r"^a=(rtpmap|fmtp|rtcp-fb):(\S+)")
H264_PROFILE = re.compile(r"profile-level-id=([^;\s]*)")
MAX_SSRC = 2**32 - 1
HEX_PAIRS = r"[0-9A-Fa-f]{{2}}(:[0-9A-Fa-f]{{2}}){{{}}}"


class OfferRefused(ValueError):
    """The offer breaks a rule; the message says which, in one line."""


def check_offer(sdp: str) -> None:
    """Raise OfferRefused unless `sdp` is an offer a WebRTC endpoint may send."""
    if CONTROL_CHARACTERS.search(sdp):
        raise OfferRefused("the offer contains control characters or a bare CR (lines end in CRLF)")
    try:
        description = SessionDescription.parse(sdp)
    except Exception as exc:  # aiortc's parser raises whatever its input provokes
        raise OfferRefused(f"cannot parse this SDP ({type(exc).__name__})") from None
    _check_session(sdp, description)
    sections = _raw_sections(sdp)
    mids: list[str] = []
    for index, (media, lines) in enumerate(zip(description.media, sections, strict=True)):
        if media.port == 0:
            continue
        try:
            _check_section(media, lines)
        except OfferRefused as exc:
            raise OfferRefused(f"media section {index} ({media.kind}): {exc}") from None
        mids.append(str(media.rtp.muxId))
    if not mids:
        raise OfferRefused("the offer has no accepted media section")
    if len(set(mids)) != len(mids):
        raise OfferRefused("two media sections share one a=mid")
    for group in description.group:
        unknown = [str(mid) for mid in group.items if str(mid) not in mids]
        if unknown:
            raise OfferRefused(f"a=group:{group.semantic} names unknown mids {unknown}")


def _check_session(sdp: str, description: SessionDescription) -> None:
    if len(str(description.origin or "").split()) != 6:
        raise OfferRefused("the o= line needs six fields")
    session_lines = _lines(sdp)[: _first_media_line(sdp)]
    _check_connection_lines(session_lines)


def _check_section(media: MediaDescription, lines: list[str]) -> None:
    if not 1 <= media.port <= 65535:
        raise OfferRefused(f"port {media.port} is out of range")
    _check_transport(media)
    _check_identity(media, lines)
    _check_ice(media)
    _check_dtls(media)
    _check_connection_lines(lines)
    for candidate in media.ice_candidates:
        _check_candidate(candidate)
    if media.kind in ("audio", "video"):
        _check_rtp(media, lines)
    elif media.sctp_port is not None and not 1 <= media.sctp_port <= 65535:
        raise OfferRefused(f"a=sctp-port {media.sctp_port} is out of range")


def _check_transport(media: MediaDescription) -> None:
    if media.kind in ("audio", "video"):
        if media.profile not in RTP_PROFILES:
            raise OfferRefused(f"protocol {media.profile} is not DTLS-SRTP (UDP/TLS/RTP/SAVPF)")
    elif media.kind == "application":
        if media.profile not in SCTP_PROFILES:
            raise OfferRefused(f"protocol {media.profile} is not SCTP over DTLS")
    else:
        raise OfferRefused(f"unknown media kind {media.kind!r} (audio, video or application)")


def _check_identity(media: MediaDescription, lines: list[str]) -> None:
    mid = media.rtp.muxId
    if not mid or not TOKEN.match(mid):
        raise OfferRefused("a=mid is missing or not a token")
    if media.msid is not None and not media.msid.strip():
        raise OfferRefused("a=msid is empty")
    directions = [line for line in lines if line[2:].strip() in DIRECTIONS]
    if len(directions) > 1:
        raise OfferRefused("more than one direction attribute")


def _check_ice(media: MediaDescription) -> None:
    ice = media.ice
    ufrag, pwd = (ice.usernameFragment, ice.password) if ice is not None else (None, None)
    if not ufrag or not pwd:
        raise OfferRefused("ICE credentials (a=ice-ufrag, a=ice-pwd) are missing")
    if not (4 <= len(ufrag) <= 256 and ICE_CHARS.match(ufrag)):
        raise OfferRefused("a=ice-ufrag must be 4-256 ICE characters")
    if not (22 <= len(pwd) <= 256 and ICE_CHARS.match(pwd)):
        raise OfferRefused("a=ice-pwd must be 22-256 ICE characters")


def _check_dtls(media: MediaDescription) -> None:
    if media.dtls is None:
        raise OfferRefused("a=setup is missing")
    if media.dtls.role != "auto":
        raise OfferRefused("an offer's a=setup must be actpass")
    known = [f for f in media.dtls.fingerprints if f.algorithm.lower() in DIGEST_BYTES]
    if any(not _well_formed(f.algorithm, f.value) for f in known):
        raise OfferRefused("a DTLS fingerprint does not match its algorithm's length")
    if not known:
        raise OfferRefused("no usable DTLS fingerprint (sha-256, sha-384 or sha-512)")


def _well_formed(algorithm: str, value: str) -> bool:
    size = DIGEST_BYTES[algorithm.lower()]
    return re.fullmatch(HEX_PAIRS.format(size - 1), value) is not None


def _check_candidate(candidate: RTCIceCandidate) -> None:
    address = candidate.ip
    if not _is_ip(address) and not MDNS_NAME.match(address):
        raise OfferRefused("a candidate's address is neither an IP address nor an mDNS name")
    if not 0 <= candidate.port <= 65535 or candidate.component not in (1, 2):
        raise OfferRefused("a candidate's port or component is out of range")
    if candidate.protocol.lower() not in ("udp", "tcp"):
        raise OfferRefused(f"candidate transport {candidate.protocol!r} (udp or tcp)")


def _check_rtp(media: MediaDescription, lines: list[str]) -> None:
    if not media.rtcp_mux:
        raise OfferRefused("a=rtcp-mux is required")
    formats = [int(pt) for pt in media.fmt]
    if not formats or any(not 0 <= pt <= 127 for pt in formats):
        raise OfferRefused("payload types must be 0-127, at least one")
    mapped = [codec.payloadType for codec in media.rtp.codecs]
    if len(set(mapped)) != len(mapped):
        raise OfferRefused("two a=rtpmap lines share a payload type")
    for line in lines:
        if (match := PAYLOAD_REFERENCE.match(line)) is not None:
            kind, payload = match.groups()
            if not (payload == "*" and kind == "rtcp-fb") and not (
                payload.isdigit() and int(payload) in formats
            ):
                raise OfferRefused(f"a={kind} names payload type {payload!r}, not on the m= line")
    for line in lines:
        for level in H264_PROFILE.findall(line):
            if not re.fullmatch(r"[0-9A-Fa-f]{6}", level):
                raise OfferRefused("H264 profile-level-id must be six hex digits")
    if any(not 0 <= ssrc.ssrc <= MAX_SSRC for ssrc in media.ssrc):
        raise OfferRefused("an a=ssrc is out of range")


def _check_connection_lines(lines: list[str]) -> None:
    for line in lines:
        if line.startswith("c="):
            fields = line[2:].split()
            if len(fields) != 3 or not _is_ip(fields[2].split("/")[0]):
                raise OfferRefused("a c= line needs 'IN IP4|IP6 address'")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _lines(sdp: str) -> list[str]:
    return [line for line in re.split(r"\r\n|\r|\n", sdp) if line]


def _first_media_line(sdp: str) -> int:
    lines = _lines(sdp)
    return next((i for i, line in enumerate(lines) if line.startswith("m=")), len(lines))


def _raw_sections(sdp: str) -> list[list[str]]:
    """Each media section's own lines (the m= line first), as written."""
    sections: list[list[str]] = []
    for line in _lines(sdp):
        if line.startswith("m="):
            sections.append([line])
        elif sections:
            sections[-1].append(line)
    return sections
