"""ICE: servers always from settings (never aiortc's public STUN default); loopback-only mode."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer

from pipeline.settings import Settings
from server.turn import ice_servers_for

_original_host_addresses: Callable[[bool, bool], list[str]] = aioice.ice.get_host_addresses


def rtc_configuration(settings: Settings) -> RTCConfiguration:
    """An explicit (possibly empty) server list: an omitted one means Google's STUN in aiortc."""
    servers = [
        RTCIceServer(urls=server.urls, username=server.username, credential=server.credential)
        for server in ice_servers_for(settings, settings.gateway_id)
    ]
    return RTCConfiguration(iceServers=servers)


def _loopback_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    return ["127.0.0.1"] if use_ipv4 else []


def use_loopback_candidates(enabled: bool) -> None:
    """aioice leaves 127.0.0.1 out of host candidates; loopback mode offers only it."""
    chosen = _loopback_addresses if enabled else _original_host_addresses
    aioice.ice.get_host_addresses = chosen  # type: ignore[assignment]


def is_loopback_candidate(line: str) -> bool:
    """'a=candidate:… 1 udp 2130706431 127.0.0.1 5000 typ host' → is the address in 127.0.0.0/8?"""
    fields = line.split()
    if len(fields) < 6:
        return False
    try:
        return ipaddress.ip_address(fields[4]).is_loopback
    except ValueError:  # a hostname (mDNS) or garbage
        return False


def keep_loopback_candidates(sdp: str) -> str:
    """Drop every remote candidate outside 127.0.0.0/8."""
    lines = sdp.splitlines()
    kept = [
        line for line in lines if not line.startswith("a=candidate:") or is_loopback_candidate(line)
    ]
    return "\r\n".join(kept) + "\r\n"
