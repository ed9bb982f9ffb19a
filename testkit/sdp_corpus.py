"""Malformed SDP offers: each one a real offer with one mutation that the WebRTC rules forbid or
that no parser should survive. A gateway must answer every one with a 4xx, never answer it and
never fail with a 5xx."""

from __future__ import annotations

import re
from collections.abc import Callable

from aiortc import RTCConfiguration, RTCPeerConnection

Mutation = Callable[[str], str]
FINGERPRINT_256 = ":".join(["AB"] * 32)


def _lines(sdp: str) -> list[str]:
    return sdp.replace("\r\n", "\n").strip("\n").split("\n")


def _join(lines: list[str]) -> str:
    return "\r\n".join(lines) + "\r\n"


def without(prefix: str) -> Mutation:
    """Every line starting with `prefix` removed."""
    return lambda sdp: _join([line for line in _lines(sdp) if not line.startswith(prefix)])


def replaced(pattern: str, replacement: str, count: int = 0) -> Mutation:
    """A regular-expression substitution, line by line (`^` and `$` are the line's ends), on
    the first `count` matching lines (0: all)."""

    def mutate(sdp: str) -> str:
        out, left = [], count or -1
        for line in _lines(sdp):
            if left != 0 and re.search(pattern, line):
                line, left = re.sub(pattern, replacement, line), left - 1
            out.append(line)
        return _join(out)

    return mutate


def appended_to_media(line: str, kind: str = "audio") -> Mutation:
    """`line` added at the end of the first media section of `kind`."""

    def mutate(sdp: str) -> str:
        out: list[str] = []
        state = "before"  # before the section, inside it, after it
        for current in _lines(sdp):
            if current.startswith("m=") and state == "inside":
                out.append(line)
                state = "after"
            if current.startswith(f"m={kind} ") and state == "before":
                state = "inside"
            out.append(current)
        if state == "inside":
            out.append(line)
        return _join(out)

    return mutate


MUTATIONS: dict[str, Mutation] = {
    # DTLS: WebRTC media is always DTLS-SRTP, so an offer must name its certificate
    "no_fingerprint": without("a=fingerprint:"),
    "fingerprint_md5": replaced(r"^a=fingerprint:sha-\d+ ", "a=fingerprint:md5 "),
    "fingerprint_unknown_algorithm": replaced(r"^a=fingerprint:sha-\d+ ", "a=fingerprint:sha-999 "),
    "fingerprint_not_hex": replaced(
        r"^a=fingerprint:sha-256 .*$", "a=fingerprint:sha-256 " + ":".join(["ZZ"] * 32)
    ),
    "fingerprint_too_short": replaced(r"^a=fingerprint:sha-256 .*$", "a=fingerprint:sha-256 AB:CD"),
    "fingerprint_empty": replaced(r"^a=fingerprint:.*$", "a=fingerprint:"),
    "setup_missing": without("a=setup:"),
    "setup_active_in_offer": replaced(r"^a=setup:actpass", "a=setup:active"),
    "setup_holdconn": replaced(r"^a=setup:actpass", "a=setup:holdconn"),
    "setup_garbage": replaced(r"^a=setup:actpass", "a=setup:sideways"),
    # ICE credentials (RFC 8839: ufrag 4-256 characters, pwd 22-256)
    "no_ice_ufrag": without("a=ice-ufrag:"),
    "no_ice_pwd": without("a=ice-pwd:"),
    "ice_ufrag_too_short": replaced(r"^a=ice-ufrag:.*$", "a=ice-ufrag:ab"),
    "ice_pwd_too_short": replaced(r"^a=ice-pwd:.*$", "a=ice-pwd:short"),
    "ice_ufrag_with_spaces": replaced(r"^a=ice-ufrag:.*$", "a=ice-ufrag:a b c d e"),
    # Media lines
    "m_line_port_not_a_number": replaced(r"^m=audio \d+ ", "m=audio abc ", count=1),
    "m_line_port_out_of_range": replaced(r"^m=audio \d+ ", "m=audio 70000 ", count=1),
    "m_line_unknown_kind": replaced(r"^m=audio ", "m=text ", count=1),
    "m_line_plain_rtp": replaced(r"UDP/TLS/RTP/SAVPF", "RTP/AVP"),
    "m_line_no_formats": replaced(r"^(m=audio \d+ UDP/TLS/RTP/SAVPF)[ \d]*$", r"\1", count=1),
    "application_over_rtp": replaced(r"UDP/DTLS/SCTP", "RTP/AVP"),
    "all_media_rejected": replaced(r"^m=(\w+) \d+ ", r"m=\1 0 "),
    "no_rtcp_mux": without("a=rtcp-mux"),
    # Codecs and payload types
    "payload_type_out_of_range": replaced(r"(^m=audio \d+ \S+ )(\d+)", r"\g<1>300", count=1),
    "payload_type_negative": replaced(r"(^m=audio \d+ \S+ )(\d+)", r"\g<1>-5", count=1),
    "rtpmap_clock_not_a_number": replaced(r"^a=rtpmap:(\d+) opus/48000/2", r"a=rtpmap:\1 opus/x/2"),
    "rtpmap_without_clock": replaced(r"^a=rtpmap:(\d+) opus/48000/2", r"a=rtpmap:\1 opus"),
    "rtpmap_payload_not_a_number": replaced(r"^a=rtpmap:\d+ opus", "a=rtpmap:opus opus"),
    "rtpmap_duplicate_payload_type": appended_to_media("a=rtpmap:96 PCMU/8000"),
    "fmtp_garbage": appended_to_media("a=fmtp:96 ;;;==;\x7f", "video"),
    "rtx_apt_not_a_number": replaced(r"^a=fmtp:(\d+) apt=\d+", r"a=fmtp:\1 apt=xyz"),
    "rtcp_fb_payload_not_a_number": replaced(r"^a=rtcp-fb:\d+ ", "a=rtcp-fb:abc ", count=1),
    "h264_profile_garbage": replaced(r"profile-level-id=\w+", "profile-level-id=zz"),
    # Streams and header extensions
    "ssrc_not_a_number": replaced(r"^a=ssrc:\d+ ", "a=ssrc:notanumber "),
    "ssrc_too_large": replaced(r"^a=ssrc:\d+ ", "a=ssrc:99999999999999999 "),
    "ssrc_group_not_numbers": appended_to_media("a=ssrc-group:FID abc def", "video"),
    "extmap_id_not_a_number": replaced(r"^a=extmap:\d+ ", "a=extmap:abc ", count=1),
    "extmap_without_uri": appended_to_media("a=extmap:5"),
    "msid_empty": appended_to_media("a=msid:"),
    "two_directions": appended_to_media("a=recvonly"),
    # Identification and bundling
    "no_mid": without("a=mid:"),
    "duplicate_mid": replaced(r"^a=mid:\w+", "a=mid:0"),
    "bundle_names_unknown_mid": replaced(r"^a=group:BUNDLE .*$", "a=group:BUNDLE 0 1 2 7"),
    # Transport details
    "candidate_priority_not_a_number": replaced(r" udp \d+ ", " udp notanumber ", count=1),
    "candidate_truncated": replaced(r"^a=candidate:.*$", "a=candidate:1 1 udp", count=1),
    "candidate_port_not_a_number": replaced(
        r"(^a=candidate:\S+ \d+ udp \d+ \S+ )\d+", r"\1port", count=1
    ),
    "candidate_address_garbage": replaced(
        r"(^a=candidate:\S+ \d+ udp \d+ )\S+", r"\1::zz::", count=1
    ),
    "sctp_port_not_a_number": replaced(r"^a=sctp-port:\d+", "a=sctp-port:abc"),
    "max_message_size_not_a_number": replaced(
        r"^a=max-message-size:\d+", "a=max-message-size:lots"
    ),
    "connection_address_garbage": replaced(r"^c=IN IP4 .*$", "c=IN IP4 not-an-address"),
    "connection_line_truncated": replaced(r"^c=IN IP4 .*$", "c=IN"),
    "rtcp_port_not_a_number": replaced(r"^a=rtcp:\d+ ", "a=rtcp:abc "),
    "origin_truncated": replaced(r"^o=.*$", "o=-"),
    "nul_inside_attribute": replaced(r"^a=mid:0", "a=mid:0\x00evil", count=1),
    "lone_carriage_returns": lambda sdp: "\r".join(_lines(sdp)) + "\r",
}


def malformed_offers(valid_offer: str) -> list[tuple[str, str]]:
    """(name, offer) for every mutation that changes the offer (all of them, for a real offer)."""
    offers = [(name, mutate(valid_offer)) for name, mutate in MUTATIONS.items()]
    return [(name, offer) for name, offer in offers if offer != valid_offer]


async def real_offer(video: bool = True) -> str:
    """An offer from a real aiortc peer (events channel, audio, video), closed again: what the
    corpus mutates, and a body that passes every rule when a test needs a valid join."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        pc.createDataChannel("events")
        pc.addTransceiver("audio", direction="sendrecv")
        if video:
            pc.addTransceiver("video", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        return str(pc.localDescription.sdp)
    finally:
        await pc.close()
