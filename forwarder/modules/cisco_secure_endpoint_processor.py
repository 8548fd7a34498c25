"""The `cisco_secure_endpoint` processor: an event of the `cisco-secure-endpoint` input mapped onto ECS.

The input ships the event's JSON text in `message` and the parsed event in
`event.record`. This processor adds the ECS and `cisco.amp.*` fields (see
cisco_secure_endpoint_ecs.py), takes the event's own time as `@timestamp` and
copies `message` to `event.original` when asked. It computes everything before
changing the event and raises for a record it cannot map, which the pipeline
client then forwards raw, tagged `_parse_failure` and counted.
"""

from __future__ import annotations

from typing import Any

import orjson

from forwarder.modules.cisco_secure_endpoint_ecs import UnmappableEvent, normalize
from forwarder.pipeline.client import Processor
from forwarder.pipeline.event import Event
from forwarder.schema.declared import BOOLEAN, Setting, read_settings
from forwarder.schema.section import Section

SETTINGS = (
    Setting("preserve_original_event", BOOLEAN, False, "copy `message` (the event's JSON) to `event.original`"),
)


def build_cisco_secure_endpoint(options: Section) -> Processor:
    """`cisco_secure_endpoint: {preserve_original_event: false}`; unknown options are reported by finish()."""
    return cisco_secure_endpoint_processor(read_settings(options, SETTINGS)["preserve_original_event"])


def cisco_secure_endpoint_processor(preserve_original_event: bool) -> Processor:
    def cisco_secure_endpoint(event: Event) -> Event:
        record = event.record if event.record is not None else _parsed_message(event.fields.get("message"))
        mapped = normalize(record)
        fields = event.fields
        original = fields.get("message") if preserve_original_event else None
        for name, value in mapped.fields.items():
            if isinstance(value, dict) and isinstance(fields.get(name), dict):
                fields[name].update(value)
            else:
                fields[name] = value
        event.timestamp = mapped.timestamp
        if original is not None:
            fields["event"]["original"] = original
        return event

    return cisco_secure_endpoint


def _parsed_message(message: Any) -> Any:
    """An event read from elsewhere (a file of saved API answers): its `message` JSON, or an envelope's `data`."""
    if not isinstance(message, str):
        raise UnmappableEvent("the event has no Secure Endpoint record and no JSON message")
    try:
        value = orjson.loads(message)
    except orjson.JSONDecodeError:
        raise UnmappableEvent("the message is not JSON") from None
    if isinstance(value, dict) and isinstance(value.get("data"), dict):
        return value["data"]
    return value
