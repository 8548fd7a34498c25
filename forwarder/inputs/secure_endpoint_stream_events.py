"""One Secure Endpoint event stream message → one forwarder event.

A message body is one event as JSON (the object `GET /v1/events` lists under
`data`; a body in the API's envelope, `{"version", "metadata", "data": {…}}`,
is unwrapped). The event keeps Cisco's `id` as `@metadata._id`, so the copy a
broker redelivers after a crash is recognisable, and its `date` as the time.
A body that is not a JSON object is still forwarded, raw, tagged
`_parse_failure`, with an id derived from its bytes.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from forwarder.pipeline.event import Event, parse_timestamp
from forwarder.pipeline.json_text import json_text
from forwarder.stats import InputStats

RECORD_KIND = "secure_endpoint"
PARSE_FAILURE_TAG = "_parse_failure"


def build_stream_event(_context: None, body: bytes, stats: InputStats) -> Event:
    """`client.publish_raw`'s builder: the event of one message body, a body that is not an event counted in
    `parse_failures`. Runs in a worker process with `forwarder.workers`: it touches only its arguments."""
    event = stream_message_event(body)
    if event.record is None:
        stats.extra["parse_failures"] = stats.extra.get("parse_failures", 0) + 1
    return event


def stream_message_event(body: bytes) -> Event:
    """The event for one message body; parse problems end up in `error.message`, never raised."""
    try:
        document = json.loads(body)
    except ValueError as error:
        return _raw_event(body, f"the event stream message is not JSON: {error}")
    record = _unwrapped(document)
    if not isinstance(record, dict):
        return _raw_event(body, "the event stream message is not a JSON object")
    fields: dict[str, Any] = {"message": json_text(record)}
    timestamp = _event_time(record.get("date"))
    if timestamp is None:
        fields["error"] = {"message": "the event has no readable date; @timestamp is the time it was read"}
    event_id = record.get("id")
    meta = {"_id": str(event_id) if event_id not in (None, "") else _body_id(body)}
    return Event(fields, timestamp, meta, record=record, record_kind=RECORD_KIND)


def _unwrapped(document: Any) -> Any:
    if isinstance(document, dict) and isinstance(document.get("data"), dict) and "metadata" in document:
        return document["data"]
    return document


def _event_time(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_timestamp(value)
    except ValueError:
        return None


def _raw_event(body: bytes, reason: str) -> Event:
    fields = {"message": body.decode("utf-8", errors="replace"), "error": {"message": reason},
              "tags": [PARSE_FAILURE_TAG]}
    return Event(fields, time.time(), {"_id": _body_id(body)})


def _body_id(body: bytes) -> str:
    return "amqp-" + hashlib.sha256(body).hexdigest()[:32]
