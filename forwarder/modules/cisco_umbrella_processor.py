"""The `cisco_umbrella` processor: one Cisco Umbrella CSV line, as the `aws-s3` input read it, mapped onto ECS.

The input only reads objects: each event carries one CSV record in `message`
and the object's key in `aws.s3.object.key` (and its URL in `log.file.path`).
The log type is the key's folder (`…/dnslogs/2024-06-10/…`); this processor
parses the record with that type's columns, adds the ECS fields, and takes the
record's own UTC time as `@timestamp`. `message` stays the original line.

A row it cannot map (a key naming no Umbrella folder, a CSV error, fewer
columns than the oldest schema, a bad timestamp or number) makes it raise
before it has changed the event: the pipeline client's one error policy then
forwards the event as read, with `error.message` and the `_parse_failure`
tag, and counts it in the input's `mapping_failures`. Nothing is dropped.
"""

from __future__ import annotations

from typing import Any

from forwarder.modules.cisco_umbrella_columns import LOG_TYPES, log_type_of, parse_row
from forwarder.modules.cisco_umbrella_ecs import UmbrellaMapping
from forwarder.pipeline.client import Processor
from forwarder.pipeline.event import Event
from forwarder.schema.declared import Setting, ValueType, read_settings
from forwarder.schema.section import Section

ALL_LOG_TYPES = tuple(LOG_TYPES)


def _read_log_types(section: Section, key: str, setting: Setting, default: list[str]) -> list[str]:
    """A list of Umbrella folder names; an unknown one is reported (with the known ones) and left out."""
    names = section.string_list(key, default)
    unknown = [name for name in names if name not in LOG_TYPES]
    if unknown:
        section.error(key, f"unknown Umbrella log type(s) {', '.join(map(str, unknown))} "
                           f"(known: {', '.join(ALL_LOG_TYPES)})")
    return [name for name in names if name in LOG_TYPES]


LOG_TYPE_NAMES = ValueType("list of Umbrella log types", _read_log_types)
SETTINGS = (
    Setting("log_types", LOG_TYPE_NAMES, list(ALL_LOG_TYPES), "Umbrella log types (S3 folders) forwarded; lines of the "
            "other Umbrella folders are dropped (counted as `filtered` in /stats), and a line whose key names no "
            "Umbrella folder is forwarded raw and tagged `_parse_failure`", doc_default="all"),
)


def build_cisco_umbrella(options: Section) -> Processor:
    """`cisco_umbrella: {log_types: [dnslogs, …]}`; unknown options are reported by the caller's finish()."""
    mappings = {name: UmbrellaMapping(LOG_TYPES[name]) for name in read_settings(options, SETTINGS)["log_types"]}
    # Object key → its mapping: every line of an object has the same key, so the folder is looked up once.
    by_key: dict[str, UmbrellaMapping] = {}

    def cisco_umbrella(event: Event) -> Event | None:
        fields = event.fields
        key = _object_key(fields)
        if key in by_key:
            mapping = by_key[key]
        else:
            mapping = _mapping_for(key, mappings)
            if len(by_key) >= 4096:
                by_key.clear()
            by_key[key] = mapping
        if mapping is None:
            return None
        message = fields.get("message")
        if not isinstance(message, str):
            raise ValueError("the event has no CSV line in message")
        timestamp, mapped = mapping.map(parse_row(message))
        for name, value in mapped.items():
            existing = fields.get(name)
            if type(existing) is dict and type(value) is dict:
                existing.update(value)
            else:
                fields[name] = value
        event.timestamp = timestamp
        return event

    return cisco_umbrella


def _object_key(fields: dict[str, Any]) -> str:
    """The object key (`aws.s3.object.key`), or the object URL (`log.file.path`) when the key is absent."""
    try:
        return fields["aws"]["s3"]["object"]["key"]
    except (KeyError, TypeError):
        pass
    try:
        return fields["log"]["file"]["path"]
    except (KeyError, TypeError):
        raise ValueError("the event names no S3 object (aws.s3.object.key or log.file.path)") from None


def _mapping_for(key: str, mappings: dict[str, UmbrellaMapping]) -> UmbrellaMapping | None:
    """The mapping of the key's log type; None for an Umbrella folder not in `log_types` (its lines are dropped)."""
    log_type = log_type_of(key)
    if log_type is None:
        raise ValueError(f"cannot tell the Umbrella log type from {key!r}: no folder named "
                         f"{', '.join(ALL_LOG_TYPES)}")
    return mappings.get(log_type.folder)


def umbrella_processors(log_types: list[str]) -> list[Processor]:
    """The fileset's mapping for the log types it reads (options the module writes, always valid)."""
    return [build_cisco_umbrella(Section({"log_types": list(log_types)}, "", "cisco module", []))]
