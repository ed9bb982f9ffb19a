"""Live captions: a partial reading of the segment the floor holder is still speaking.

The request carries the whole state (the committed words and the previous hypothesis), so any
worker can serve it and a lost one loses only itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import Counter

from pipeline.agreement import Agreement
from pipeline.audio import Samples

PARTIAL_WAIT_S = 3.0  # a reading later than this is worth nothing: the next one is already due
PARTIALS = Counter(
    "dragoman_partial_decodes_total",
    "Partial (live caption) decodes: done, failed, skipped (final work ran), or unanswered",
    ["outcome"],
)


@dataclass(frozen=True)
class PartialRequest:
    """The growing segment so far, and what earlier decodes of it settled."""

    utterance_id: str
    language: str
    samples: Samples
    committed: str = ""
    previous: str = ""  # the last hypothesis
    targets: tuple[str, ...] = ()  # listener languages other than the source
    whole: bool = False  # read as a final is (the full window), not quickly: at a pause


@dataclass(frozen=True)
class PartialReading:
    hypothesis: str
    agreement: Agreement
    # target → the committed words in it; only when the committed words grew
    translations: dict[str, str] = field(default_factory=dict)
