"""ECS mapping of Duo Admin API log records, one mapping per stream, as Elastic's cisco_duo integration maps them.

Streams (the `duo` input's `record_kind`): auth, admin, telephony, activity,
trust_monitor, offline_enrollment. Each mapping returns only ECS and
`cisco_duo.<stream>.*` fields (no nulls, no empty values); `@timestamp` comes
back separately, with the full sub-second precision the record has, in UTC:

| stream | time |
|---|---|
| auth, admin, offline_enrollment | `isotimestamp` (ISO 8601, microseconds), else `timestamp` (epoch seconds) |
| telephony, activity | `ts` (ISO 8601), else `timestamp` |
| trust_monitor | `surfaced_timestamp` (epoch milliseconds) |

A record that is not an object, or of a stream not listed, raises
`UnmappableDuoRecord`: the pipeline then ships it raw, tagged and counted.
The result may share lists and objects with the record, which must not be
changed afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from forwarder.modules.duo_ecs_activity import activity_fields, telephony_fields, trust_monitor_fields
from forwarder.modules.duo_ecs_admin import admin_fields, offline_enrollment_fields
from forwarder.modules.duo_ecs_auth import auth_fields
from forwarder.modules.duo_ecs_values import iso_time, milliseconds_time, seconds_time

RECORD_KINDS = ("auth", "admin", "telephony", "activity", "trust_monitor", "offline_enrollment")

_FIELD_MAPPERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "auth": auth_fields,
    "admin": admin_fields,
    "telephony": telephony_fields,
    "activity": activity_fields,
    "trust_monitor": trust_monitor_fields,
    "offline_enrollment": offline_enrollment_fields,
}
# (ISO time key, epoch seconds key) per stream; trust_monitor's time is in milliseconds and read apart.
_TIME_KEYS = {
    "auth": ("isotimestamp", "timestamp"),
    "admin": ("isotimestamp", "timestamp"),
    "offline_enrollment": ("isotimestamp", "timestamp"),
    "telephony": ("ts", "timestamp"),
    "activity": ("ts", "timestamp"),
}


class UnmappableDuoRecord(ValueError):
    """A record the mapping cannot handle: not a JSON object, or of an unknown stream."""


class MappedRecord(NamedTuple):
    fields: dict[str, Any]
    """ECS fields to merge into the event (nested objects)."""
    timestamp: float | None
    """The record's time in epoch seconds (UTC, sub-second precision kept); None when it has no readable time."""


def normalize(record: Any, record_kind: str) -> MappedRecord:
    """Maps one Duo log record of stream `record_kind` onto ECS; raises UnmappableDuoRecord when it cannot."""
    mapper = _FIELD_MAPPERS.get(record_kind)
    if mapper is None:
        raise UnmappableDuoRecord(f"unknown Duo log stream {record_kind!r} (known: {', '.join(RECORD_KINDS)})")
    if type(record) is not dict:
        raise UnmappableDuoRecord(f"the {record_kind} record is a {type(record).__name__}, not a JSON object")
    return MappedRecord(mapper(record), record_time(record, record_kind))


def record_time(record: dict[str, Any], record_kind: str) -> float | None:
    """Epoch seconds of the record's own time (see the table above), or None."""
    if record_kind == "trust_monitor":
        return milliseconds_time(record.get("surfaced_timestamp"))
    keys = _TIME_KEYS.get(record_kind)
    if keys is None:
        return None
    iso_key, seconds_key = keys
    timestamp = iso_time(record.get(iso_key))
    return timestamp if timestamp is not None else seconds_time(record.get(seconds_key))
