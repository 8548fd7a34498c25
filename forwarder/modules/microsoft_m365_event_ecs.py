"""ECS for Defender XDR Streaming API records (`category: AdvancedHunting-<Table>`) read from Event Hubs.

A record is `{"time", "tenantId", "category", "operationName", "Tenant",
"properties": {<one Advanced Hunting row>}}`. As Elastic's `m365_defender`
`event` data stream does, every record gets the generic fields below, then
the fields of its table family, chosen from the table name: device tables,
e-mail tables (and `UrlClickEvents`), identity and cloud-app tables, and alert
tables (microsoft_m365_event_tables). A table none of these knows (Microsoft
adds tables) keeps the generic fields: it is forwarded, never dropped.

| target | source |
|---|---|
| `@timestamp`, `m365_defender.event.timestamp` | `properties.Timestamp` (else the record's `time`) |
| `m365_defender.event.category`, `.table` | `category`, and the table named in it |
| `m365_defender.event.operation_name`, `.tenant.name`, `.tenant.id`, `.time` | `operationName`, `Tenant`, … |
| `m365_defender.event.<snake_case name>` | every column the family did not map onto ECS, as written |
| `m365_defender.event.additional_fields` | `AdditionalFields`, decoded when it is JSON text |
| `event.kind` | `event` (`alert` for the alert tables) |
| `cloud.provider`, `cloud.account.id` | `azure`, `tenantId` |

A column mapped onto ECS is not repeated under `m365_defender.event` (Elastic's default,
`preserve_duplicate_custom_fields: false`): the row is in `message` as received, and in
`event.original` with `preserve_original_event`. Mapping never raises on odd input and writes no nulls.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from forwarder.modules.entraid_ecs import NormalizedRecord
from forwarder.modules.entraid_ecs_values import millisecond_time, parse_time, text
from forwarder.modules.microsoft_m365_event_tables import family_mapper

CATEGORY_PREFIX = "advancedhunting-"
_WORD_START = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SNAKE_NAMES: dict[str, str] = {}
MAX_NAMES = 4096
# Column lists seen (a few per table): bounded, so rows of ever-changing shape cannot grow it without end.
MAX_ROW_SHAPES = 512
_ROW_SHAPES: dict[tuple[str, ...], list[str]] = {}
_ENVELOPE_KEYS = {"time", "tenantId", "category", "operationName", "Tenant", "properties"}


def table_of(category: Any) -> str | None:
    """`DeviceProcessEvents` of `AdvancedHunting-DeviceProcessEvents` (any case), None for other categories."""
    if type(category) is not str or not category.lower().startswith(CATEGORY_PREFIX):
        return None
    return category[len(CATEGORY_PREFIX):]


def snake_case(name: str) -> str:
    """`InitiatingProcessSHA256` → `initiating_process_sha256`, `SenderIPv4` → `sender_ipv4`; cached (tables
    reuse a few hundred names)."""
    known = _SNAKE_NAMES.get(name)
    if known is None:
        known = _WORD_START.sub("_", name.replace("IPv", "Ipv")).lower()
        if len(_SNAKE_NAMES) < MAX_NAMES:
            _SNAKE_NAMES[name] = known
    return known


def _snake_names(row: dict[str, Any]) -> list[str]:
    """The snake_case names of a row's columns, in order; rows of one table share them, so they are kept by shape."""
    shape = tuple(row)
    names = _ROW_SHAPES.get(shape)
    if names is None:
        names = [snake_case(name) for name in shape]
        if len(_ROW_SHAPES) < MAX_ROW_SHAPES:
            _ROW_SHAPES[shape] = names
    return names


def decode_additional_fields(value: Any) -> Any:
    """`AdditionalFields` as an object when it is JSON text (Microsoft writes both); anything else as given."""
    if type(value) is str and value[:1] in ("{", "["):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def normalize_advanced_hunting(record: Any) -> NormalizedRecord:
    """One Streaming API record → (ECS fields, @timestamp)."""
    if type(record) is not dict:
        return NormalizedRecord({"cloud": {"provider": "azure"}}, None)
    row = record.get("properties")
    if type(row) is not dict:
        row = {}
    table = table_of(record.get("category")) or ""
    fields: dict[str, Any] = {"event": {"kind": "event"}, "cloud": {"provider": "azure"}}
    mapped = family_mapper(table)(fields, row, table)
    own = {name: value for name, column, value in zip(_snake_names(row), row, row.values(), strict=True)
           if value is not None and value != "" and column not in mapped}
    if "additional_fields" in own:
        own["additional_fields"] = decode_additional_fields(own["additional_fields"])
    for source, target in (("category", "category"), ("operationName", "operation_name"), ("time", "time")):
        value = text(record.get(source))
        if value is not None:
            own[target] = value
    if table:
        own["table"] = table
    tenant = {key: value for key, value in (("name", text(record.get("Tenant"))), ("id", text(record.get("tenantId"))))
              if value is not None}
    if tenant:
        own["tenant"] = tenant
    for name, value in record.items():
        if name not in _ENVELOPE_KEYS and value is not None:
            own.setdefault(snake_case(name), value)

    if "id" in tenant:
        fields["cloud"]["account"] = {"id": tenant["id"]}
    fields["m365_defender"] = {"event": own}
    timestamp = parse_time(row.get("Timestamp"))
    if timestamp is None:
        timestamp = parse_time(record.get("time"))
    return NormalizedRecord(fields, None if timestamp is None else millisecond_time(timestamp))
