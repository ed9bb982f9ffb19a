"""The offer rules on their own: real aiortc offers pass; every mutation in the corpus is refused
with a one-line reason (no parser exception escapes)."""

from __future__ import annotations

import pytest

from server.sdp_rules import OfferRefused, check_offer
from testkit.sdp_corpus import MUTATIONS, malformed_offers, real_offer


@pytest.mark.parametrize("video", [True, False])
async def test_real_offers_pass(video: bool) -> None:
    check_offer(await real_offer(video=video))


async def test_every_malformed_offer_is_refused_with_one_line() -> None:
    corpus = malformed_offers(await real_offer())
    assert len(corpus) == len(MUTATIONS)  # every mutation changes a real offer
    for name, offer in corpus:
        with pytest.raises(OfferRefused) as refused:
            check_offer(offer)
        message = str(refused.value)
        assert message and "\n" not in message, name


async def test_lf_line_endings_and_an_mdns_candidate_are_fine() -> None:
    offer = await real_offer(video=False)
    mdns = offer.replace(" 127.0.0.1 ", " 1f2e3d4c-aaaa-bbbb-cccc-0123456789ab.local ", 1)
    check_offer(mdns.replace("\r\n", "\n"))
