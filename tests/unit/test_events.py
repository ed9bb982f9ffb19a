"""The one event vocabulary: the client's copy of its JSON schema matches the Python models,
every event parses back by its type, and reasons are closed sets."""

from __future__ import annotations

import json
import typing
from pathlib import Path

import pytest
from pydantic import ValidationError

from pipeline.events import (
    PIPELINE_EVENT,
    DropReason,
    FailureCause,
    RoomEvent,
    UtteranceDropped,
    UtteranceFailed,
    event_types,
    events_schema,
)

CLIENT_SCHEMA = Path(__file__).resolve().parents[2] / "client" / "events.schema.json"


def test_the_clients_schema_is_the_models_schema() -> None:
    written = json.loads(CLIENT_SCHEMA.read_text())
    assert written == events_schema(), "run: dragoman events-schema > client/events.schema.json"


def test_the_schema_names_every_event_type() -> None:
    variants = events_schema()["discriminator"]["mapping"]
    assert sorted(variants) == event_types()
    assert len(event_types()) == len(typing.get_args(RoomEvent))


def test_an_event_parses_back_by_its_type() -> None:
    dropped = UtteranceDropped(utterance_id="u", reason="no_speech", speaker="ana")
    message = dropped.model_dump_json()
    assert json.loads(message)["type"] == "utterance.dropped"
    assert PIPELINE_EVENT.validate_json(message) == dropped
    with pytest.raises(ValidationError):
        PIPELINE_EVENT.validate_json('{"type": "caption.partial", "utterance_id": "u"}')


def test_drop_reasons_and_failure_causes_are_closed_sets() -> None:
    with pytest.raises(ValidationError):
        UtteranceDropped(utterance_id="u", reason="because")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        UtteranceFailed(
            utterance_id="u",
            target_language="pt",
            stage="mt",
            reason="x",
            cause="gremlins",  # type: ignore[arg-type]
        )
    assert "floor_queue_overflow" in typing.get_args(DropReason)
    assert {"stuck", "shutdown", "unserved"} <= set(typing.get_args(FailureCause))
