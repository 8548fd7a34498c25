"""How a record read from a file becomes its event — in a worker process when `forwarder.workers` allows.

The filestream input reads and splits lines and runs the parsers that keep
state across lines (multiline, json_objects) itself; an ndjson stage at the
end of the chain keeps none, so it runs in `build_file_event` with the rest of
the event building, where worker processes share the decoding. The payload is
a tuple of the record's parts, since pickling a tuple of text costs a
fraction of pickling a built event.
"""

from __future__ import annotations

from typing import Any

from forwarder.inputs.line_message import TRUNCATED_FLAG, Message
from forwarder.inputs.line_parsers import ParserConfig
from forwarder.inputs.ndjson_parser import NdjsonConfig, decode_ndjson
from forwarder.pipeline.event import Event
from forwarder.pipeline.field_path import deep_update
from forwarder.stats import InputStats

TRUNCATED_TAG = "_truncated"

# (path, device id, inode, `_id` prefix, the trailing ndjson stages run while building)
FileContext = tuple[str, str, str, str, tuple[NdjsonConfig, ...]]


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
    """The Builder of filestream and log inputs (see PipelineClient.publish_raw)."""
    path, device, inode, id_prefix, ndjson_stages = context
    content, offset, flags, tags, fields, meta, timestamp = payload
    message = Message(content, offset, 0, 0, fields=fields or {}, meta=meta or {}, timestamp=timestamp,
                      flags=flags or [], tags=tags or [])
    for stage in ndjson_stages:
        decode_ndjson(message, stage)
    if not message.content and not message.fields:
        return None
    log: dict[str, Any] = {"offset": offset, "file": {"path": path, "device_id": device, "inode": inode}}
    if message.flags:
        log["flags"] = list(message.flags)
    event_fields: dict[str, Any] = {"log": log}
    if message.fields:
        deep_update(event_fields, message.fields, copy=False)
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
