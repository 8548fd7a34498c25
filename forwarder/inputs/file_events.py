"""How a record read from a file becomes its event — in a worker process when `forwarder.workers` allows.

The filestream input reads and splits lines and runs the parsers that keep
state across lines (multiline, json_objects) itself; an ndjson stage at the
end of the chain keeps none, so it runs here with the rest of the event
building, where worker processes share the decoding. The payload is a tuple of
the record's parts (`build_file_event`), or of the line's undecoded bytes when
the input has nothing to do with its text (`build_line_event`), since pickling
a tuple of text costs a fraction of pickling a built event.
"""

from __future__ import annotations

from typing import Any

import orjson

from forwarder.inputs.file_reader import decode_line
from forwarder.inputs.line_message import TRUNCATED_FLAG, Message
from forwarder.inputs.line_parsers import ParserConfig
from forwarder.inputs.ndjson_parser import NdjsonConfig, decode_ndjson
from forwarder.pipeline.event import Event
from forwarder.pipeline.field_path import deep_update
from forwarder.stats import InputStats

TRUNCATED_TAG = "_truncated"

# (path, device id, inode, `_id` prefix, the trailing ndjson stages run while building)
FileContext = tuple[str, str, str, str, tuple[NdjsonConfig, ...]]
# A line as read, for `build_line_event`: (its bytes, its offset, whether it was cut at the byte limit).
RawLinePayload = tuple[bytes, int, bool]


def split_parsers(parsers: list[ParserConfig], lines_filtered: bool) -> tuple[list[ParserConfig],
                                                                               tuple[NdjsonConfig, ...]]:
    """The stages the input runs, and the trailing ndjson stages left to event building.

    With include_lines/exclude_lines every stage stays with the input: those patterns match the text
    after the parsers, which the input must have before it decides what to send.
    """
    if lines_filtered:
        return list(parsers), ()
    split = len(parsers)
    while split > 0 and isinstance(parsers[split - 1], NdjsonConfig):
        split -= 1
    return list(parsers[:split]), tuple(parsers[split:])  # type: ignore[arg-type]


def file_payload(message: Message) -> tuple[Any, ...]:
    """The record as a tuple; the parts parsers rarely set are None when empty, to pickle small."""
    return (message.content, message.offset, message.flags or None, message.tags or None,
            message.fields or None, message.meta or None, message.timestamp)


def build_file_event(context: FileContext, payload: tuple[Any, ...], stats: InputStats) -> Event | None:
    """The Builder of filestream and log inputs for records their own parsers made (see PipelineClient.publish_raw)."""
    content, offset, flags, tags, fields, meta, timestamp = payload
    message = Message(content, offset, 0, 0, fields=fields or {}, meta=meta or {}, timestamp=timestamp,
                      flags=flags or [], tags=tags or [])
    return _event_from_message(context, message)


def build_line_event(context: FileContext, payload: RawLinePayload, stats: InputStats) -> Event | None:
    """The Builder for lines as read, when the input runs no parser of its own and filters no lines.

    The line is decoded here, in a worker process when there are workers, not by the reading thread.
    A line of one JSON object under the plain ndjson settings takes a shorter way (`_plain_ndjson_event`);
    everything else, and any line that way is not sure of, goes through the parsers as it would in
    the input.
    """
    data, offset, truncated = payload
    ndjson_stages = context[4]
    if not truncated and len(ndjson_stages) == 1 and is_plain_ndjson(ndjson_stages[0]):
        event = _plain_ndjson_event(context, data, offset)
        if event is not None:
            return event
    return _event_from_message(context, decode_line(data, offset, 0, truncated))


def is_plain_ndjson(config: NdjsonConfig) -> bool:
    """Settings under which a JSON object's keys become the event's fields as they are."""
    return not (config.target or config.message_key or config.document_id or config.expand_keys)


def _plain_ndjson_event(context: FileContext, data: bytes, offset: int) -> Event | None:
    """The event `decode_ndjson` and `_event_from_message` make of `data`, without a Message; None when unsure.

    orjson reads the bytes as they are: it refuses invalid UTF-8 (which the input would have replaced)
    and a byte order mark (which the input drops from a file's first line); those lines, and anything
    but a non-empty JSON object with none of the special keys, take the longer way.
    """
    try:
        decoded = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if type(decoded) is not dict or not decoded:
        return None
    # Keys left to the parsers: the forwarder's own `log` is merged into, and the others are special to
    # ndjson (`@timestamp`, `@metadata` are dropped or applied, `type` checked with overwrite_keys).
    if "log" in decoded or "@timestamp" in decoded or "@metadata" in decoded or "type" in decoded:
        return None
    path, device, inode, id_prefix, _ = context
    # The line's text rides along (`raw_fields`): unless something changes the fields, it is sent as read.
    return Event.with_raw_fields({"log": {"offset": offset, "file": {"path": path, "device_id": device,
                                                                      "inode": inode}}},
                                 data.strip(), decoded, {"_id": f"{id_prefix}-{offset}"})


def _event_from_message(context: FileContext, message: Message) -> Event | None:
    path, device, inode, id_prefix, ndjson_stages = context
    offset = message.offset
    for stage in ndjson_stages:
        decode_ndjson(message, stage)
    if not message.content and not message.fields:
        return None
    log: dict[str, Any] = {"offset": offset, "file": {"path": path, "device_id": device, "inode": inode}}
    if message.flags:
        log["flags"] = list(message.flags)
    record_fields = message.fields
    if "log" in record_fields:
        event_fields: dict[str, Any] = {"log": log}
        deep_update(event_fields, record_fields, copy=False)
    else:
        # The same mapping, in the same order, as merging the record's keys after `log` one by one.
        event_fields = {"log": log, **record_fields}
    if message.content:
        event_fields["message"] = message.content
    event_tags = list(message.tags)
    if TRUNCATED_FLAG in message.flags:
        event_tags.append(TRUNCATED_TAG)
    if event_tags:
        existing = event_fields.get("tags")
        event_fields["tags"] = (existing if isinstance(existing, list) else []) + event_tags
    message.meta.setdefault("_id", f"{id_prefix}-{offset}")
    return Event(event_fields, timestamp=message.timestamp, meta=message.meta)
