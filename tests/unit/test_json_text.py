"""Records and events with values orjson refuses are still written as JSON, never an exception."""

from __future__ import annotations

import json

from forwarder.outputs.codec import EventEncoder
from forwarder.pipeline.event import Event
from forwarder.pipeline.json_text import json_text

HUGE = 2**70 + 1


def test_a_record_with_an_integer_beyond_64_bits_keeps_every_digit():
    text = json_text({"id": HUGE, "name": "café", "nested": [1, {"n": -HUGE}]})
    assert json.loads(text) == {"id": HUGE, "name": "café", "nested": [1, {"n": -HUGE}]}
    assert "café" in text and " " not in text


def test_plain_records_are_written_as_orjson_writes_them():
    record = {"b": 1, "a": [True, None, 1.5], "c": "ü"}
    assert json_text(record) == '{"b":1,"a":[true,null,1.5],"c":"ü"}'


def test_an_event_holding_such_an_integer_is_encoded_not_refused():
    event = Event({"message": "x", "count": HUGE, "labels": {1: "non-string key"}}, 0.0, {"_id": "a"})
    document = json.loads(EventEncoder().encode(event))
    assert document["count"] == HUGE and document["labels"] == {"1": "non-string key"}
    assert document["@metadata"]["_id"] == "a" and document["@timestamp"] == "1970-01-01T00:00:00.000Z"
