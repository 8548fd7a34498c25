"""The event JSON: Filebeat's envelope, exact timestamps, and values JSON cannot hold natively."""

from __future__ import annotations

import orjson

from forwarder.outputs.codec import EventEncoder
from forwarder.pipeline.event import Event, format_timestamp


def test_envelope_and_metadata_order():
    event = Event({"message": "m", "log": {"offset": 3}}, timestamp=1700000000.123456, meta={"_id": "x-3"})
    encoded = EventEncoder("Custom-Index", version="9.9.9").encode(event)
    assert encoded.startswith(b'{"@timestamp":"2023-11-14T22:13:20.123Z","@metadata":{"beat":"custom-index",'
                              b'"type":"_doc","version":"9.9.9","_id":"x-3"}')
    assert orjson.loads(encoded)["log"] == {"offset": 3}


def test_timestamps_are_cut_to_milliseconds_like_filebeat():
    assert format_timestamp(1700000000.9996) == "2023-11-14T22:13:20.999Z"
    assert format_timestamp(1700000000.123) == "2023-11-14T22:13:20.123Z"
    assert format_timestamp(-0.0005) == "1969-12-31T23:59:59.999Z"
    assert format_timestamp(1700000000.0004) == "2023-11-14T22:13:20.000Z"
    assert format_timestamp(0) == "1970-01-01T00:00:00.000Z"
    assert format_timestamp(1700000000.5) == "2023-11-14T22:13:20.500Z"


def test_values_json_cannot_hold_are_sent_as_text_not_dropped():
    event = Event({"fields": {1: "numeric key"}, "raw": b"\xffbytes", "set": {3}}, timestamp=0)
    document = orjson.loads(EventEncoder().encode(event))
    assert document["fields"] == {"1": "numeric key"}
    assert document["raw"] == "\ufffdbytes"
    assert document["set"] == [3]
