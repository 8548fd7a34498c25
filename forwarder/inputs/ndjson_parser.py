"""The ndjson parser: each line (or joined record) is one JSON object, decoded the way Filebeat does.

A line that is not a JSON object is never dropped: it goes on raw, tagged
`_parse_failure`, with the reason in `error.message` unless the user turned the
error key off.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from forwarder.inputs.line_message import Message
from forwarder.pipeline.event import parse_timestamp
from forwarder.pipeline.field_path import deep_update
from forwarder.pipeline.json_fields import expand_dotted_keys
from forwarder.schema.section import Section

PARSE_FAILURE_TAG = "_parse_failure"


@dataclass(frozen=True)
class NdjsonConfig:
    target: str = ""
    message_key: str = ""
    document_id: str = ""
    overwrite_keys: bool = False
    expand_keys: bool = False
    # Filebeat defaults to false; we default to true because a record that
    # cannot be parsed must say why when it reaches the receiver.
    add_error_key: bool = True


def parse_ndjson_config(section: Section, target: str | None = None) -> NdjsonConfig:
    """Reads one ndjson setting block; unknown keys are reported here.

    `target` is given by the log input, whose `json.keys_under_root` decides it
    instead of a `target` key.
    """
    config = NdjsonConfig(
        target=section.string("target", "") if target is None else target,
        message_key=section.string("message_key", ""),
        document_id=section.string("document_id", ""),
        overwrite_keys=section.boolean("overwrite_keys", False),
        expand_keys=section.boolean("expand_keys", False),
        add_error_key=section.boolean("add_error_key", True),
    )
    # Only silences Filebeat's per-line error log, which this forwarder does not write.
    section.ignore("ignore_decoding_error")
    section.finish()
    return config


class NdjsonParser:
    """Decodes each message as one JSON object, the way Filebeat's ndjson parser does."""

    def __init__(self, config: NdjsonConfig) -> None:
        self._config = config

    def feed(self, message: Message, now: float) -> list[Message]:
        self.decode(message)
        return [message]

    def expire(self, now: float) -> list[Message]:
        return []

    def flush(self) -> list[Message]:
        return []

    def deadline(self) -> float | None:
        return None

    def decode(self, message: Message) -> None:
        decode_ndjson(message, self._config)


def decode_ndjson(message: Message, config: NdjsonConfig) -> None:
    """Decodes the message's text as one JSON object into its fields, by `config`; never drops it."""
    try:
        decoded = orjson.loads(message.content)
        if not isinstance(decoded, dict):
            raise ValueError(f"expected a JSON object, got {type(decoded).__name__}")
    except ValueError as exc:
        # The raw line stays the message: nothing is dropped.
        message.tags.append(PARSE_FAILURE_TAG)
        _set_error(message, f"Error decoding JSON: {exc}", config.add_error_key)
        return
    keys: dict[str, Any] = decoded
    content = ""
    if config.message_key:
        value = keys.get(config.message_key)
        if config.message_key not in keys:
            _set_error(message, f"Key '{config.message_key}' not found", config.add_error_key)
        elif not isinstance(value, str):
            _set_error(message, f"Value of key '{config.message_key}' is not a string", config.add_error_key)
        else:
            content = value
    message.content = content
    message.size = len(content.encode("utf-8", "surrogatepass"))
    if config.document_id:
        document_id = _pop_path(keys, config.document_id)
        if isinstance(document_id, str):
            message.meta["_id"] = document_id
    if config.target:
        _put_path(message.fields, config.target, keys)
    else:
        write_json_keys(message, keys, config)


def write_json_keys(message: Message, keys: dict[str, Any], config: NdjsonConfig) -> None:
    """Merges decoded keys into the record's root, with Filebeat's rules for the special keys."""
    if config.expand_keys:
        try:
            keys = expand_dotted_keys(keys)
        except ValueError as exc:
            _set_error(message, str(exc), config.add_error_key)
            return
    if not config.overwrite_keys:
        keys.pop("@timestamp", None)
        keys.pop("@metadata", None)
        _merge_into_fields(message, keys, overwrite=False)
        return
    if "@timestamp" in keys:
        stamp = keys.pop("@timestamp")
        try:
            if not isinstance(stamp, str):
                raise TypeError
            message.timestamp = parse_timestamp(stamp)
        except TypeError:
            _set_error(message, "@timestamp not overwritten (not string)", config.add_error_key)
        except ValueError:
            _set_error(message, f"@timestamp not overwritten (parse error on {stamp})", config.add_error_key)
    if "@metadata" in keys:
        metadata = keys.pop("@metadata")
        if isinstance(metadata, dict):
            deep_update(message.meta, metadata, copy=False)
        else:
            _set_error(message, "failed to update @metadata", config.add_error_key)
    if "type" in keys:
        kind = keys.pop("type")
        if not isinstance(kind, str):
            _set_error(message, "type not overwritten (not string)", config.add_error_key)
        elif not kind or kind.startswith("_"):
            _set_error(message, f"type not overwritten (invalid value [{kind}])", config.add_error_key)
        else:
            message.fields["type"] = kind
    _merge_into_fields(message, keys, overwrite=True)


def _merge_into_fields(message: Message, keys: dict[str, Any], overwrite: bool) -> None:
    """Merges the decoded keys into the record's fields; when there are none yet, the keys become them.

    Merging key by key into an empty mapping makes an equal mapping in the same order, and the
    decoded object is fresh and owned by this record: taking it as it is saves copying every key
    (the costliest step of decoding a wide record).
    """
    if message.fields:
        deep_update(message.fields, keys, overwrite=overwrite, copy=False)
    else:
        message.fields = keys


def _set_error(message: Message, text: str, add_error_key: bool) -> None:
    if add_error_key:
        message.fields["error"] = {"message": text, "type": "json"}


def _put_path(fields: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node = fields
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = value


def _pop_path(fields: dict[str, Any], path: str) -> Any:
    node: Any = fields
    *parents, last = [path] if path in fields else path.split(".")
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    return node.pop(last, None) if isinstance(node, dict) else None
