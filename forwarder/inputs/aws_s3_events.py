"""What an object's records become: `build_event`, the aws-s3 input's builder for `client.publish_raw`.

The reader (aws_s3_objects) only frames an object: it downloads, gunzips and
cuts lines, finds the JSON documents, and runs the parsers that join lines
(multiline, json_objects), because those need the records before and after.
What is left per record (decoding the line, the ndjson parsers after the last
joining one, the event's fields and `@metadata._id`) happens here, in this
process or, with `forwarder.workers` above 1, in a worker process next to the
module's mapping and the encoding. So `build_event` touches nothing but its
arguments, and payloads stay cheap to pickle:

    (offset, bytes)  a line as read, without its line ending (decoded here)
    (offset, str)    a JSON document, or one element of expand_event_list_from_field
    Message          a record a joining parser made in the reader
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from forwarder.inputs.line_message import Message
from forwarder.inputs.ndjson_parser import NdjsonConfig, NdjsonParser
from forwarder.pipeline.event import Event
from forwarder.pipeline.field_path import deep_update
from forwarder.stats import InputStats

BYTE_ORDER_MARK = "\ufeff"


@dataclass(frozen=True)
class ObjectContext:
    """What every event of one object shares; pickled once per chunk, so it holds no client or lock.

    The dicts are shared by the object's events, as Filebeat's events of one object share them: a processor
    that changes one of them in place changes it for the events built after.
    """

    file: dict[str, Any]
    aws: dict[str, Any]
    cloud: dict[str, Any]
    # object_id_prefix(bucket ARN, key): the start of every `@metadata._id` of the object.
    id_prefix: str
    read_at: float
    # The ndjson stages after the last joining parser: each decodes one record on its own, so they run here.
    parsers: tuple[NdjsonConfig, ...] = ()


def build_event(context: ObjectContext, payload: tuple[int, bytes | str] | Message, stats: InputStats) -> Event | None:
    """The event of one record of an object; None for a line that is only a byte order mark."""
    if isinstance(payload, Message):
        message = payload
    else:
        offset, data = payload
        if isinstance(data, bytes):
            # Invalid bytes are replaced; the reader counted them and logged the object once.
            text = data.decode("utf-8", "replace")
            if offset == 0 and text.startswith(BYTE_ORDER_MARK):
                text = text[1:]
                if not text:
                    return None
        else:
            text = data
        if not context.parsers:
            fields = {"log": {"file": context.file, "offset": offset}, "aws": context.aws, "cloud": context.cloud,
                      "message": text}
            return Event(fields, timestamp=context.read_at, meta={"_id": f"{context.id_prefix}-{offset:012d}"})
        message = Message(text, offset, offset + len(data), len(data))
    for config in context.parsers:
        NdjsonParser(config).decode(message)
    return _message_event(context, message)


def _message_event(context: ObjectContext, message: Message) -> Event:
    fields: dict[str, Any] = {"log": {"file": context.file, "offset": message.offset}, "aws": context.aws,
                              "cloud": context.cloud}
    if message.flags:
        fields["log"]["flags"] = list(message.flags)
    if message.fields:
        deep_update(fields, message.fields, copy=False)
    if message.content:
        fields["message"] = message.content
    if message.tags:
        fields["tags"] = list(message.tags)
    meta = dict(message.meta)
    meta.setdefault("_id", f"{context.id_prefix}-{message.offset:012d}")
    timestamp = message.timestamp if message.timestamp is not None else context.read_at
    return Event(fields, timestamp=timestamp, meta=meta)
