"""Room tokens without a server: roles, the name claim, identity bans after a removal."""

from __future__ import annotations

import time

import pytest

from server.access import BanList, Grant, RoomTokens, mint
from server.errors import Forbidden, Unauthorized

SECRET = "0123456789abcdef0123456789abcdef-unit"


def bearer(token: str) -> str:
    return f"Bearer {token}"


def test_a_token_admits_its_room_with_its_role_name_and_times() -> None:
    tokens = RoomTokens(SECRET)
    issued = time.time() - 5
    grant = tokens.admit(
        "r", bearer(mint(SECRET, "r", "ana", "moderator", 600, name="Ana", now=issued))
    )
    assert (grant.identity, grant.role, grant.name) == ("ana", "moderator", "Ana")
    assert grant.issued_at == int(issued) and grant.expires_at == int(issued) + 600
    assert grant.moderates and grant.speaks
    with pytest.raises(Forbidden, match="another room"):
        tokens.admit("elsewhere", bearer(mint(SECRET, "r", "ana", "speaker", 600)))
    with pytest.raises(Unauthorized):
        tokens.admit("r", bearer(mint(SECRET, "r", "ana", "speaker", 600, name="x" * 65)))


def test_a_removed_identity_is_barred_for_tokens_issued_until_the_removal() -> None:
    now = [time.time()]
    tokens = RoomTokens(SECRET, BanList(clock=lambda: now[0]))
    before = mint(SECRET, "r", "ben", "speaker", 3600, now=now[0] - 10)
    tokens.revoke("r", Grant("ben", "speaker", "jti", now[0] + 3600))
    with pytest.raises(Forbidden, match="removed you"):
        tokens.admit("r", bearer(before))
    tokens.admit("other-room", bearer(mint(SECRET, "other-room", "ben", "speaker", 3600)))
    tokens.admit("r", bearer(mint(SECRET, "r", "cid", "speaker", 3600)))  # others unaffected
    now[0] += 2
    after = mint(SECRET, "r", "ben", "speaker", 3600, now=now[0])  # a new invitation
    assert tokens.admit("r", bearer(after)).identity == "ben"


def test_bans_are_forgotten_once_no_token_issued_before_them_can_live() -> None:
    now = [0.0]
    bans = BanList(clock=lambda: now[0])
    bans.ban("r", "ben")
    assert bans.refuses("r", "ben", issued_at=-1)
    now[0] = 31 * 86400.0
    assert not bans.refuses("r", "ben", issued_at=-1)
    bans.ban("r", "zed")  # banning prunes what expired
    assert set(bans.removed_at) == {("r", "zed")}
