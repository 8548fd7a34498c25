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
| `m365_defender.event.<snake_case name>` | every other column of the row, as written |
| `m365_defender.event.additional_fields` | `AdditionalFields`, decoded when it is JSON text |
| `event.kind` | `event` (`alert` for the alert tables) |
| `cloud.provider`, `cloud.account.id` | `azure`, `tenantId` |

Mapping never raises on odd input and writes no nulls.
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
        known = _SNAKE_NAMES[name] = _WORD_START.sub("_", name.replace("IPv", "Ipv")).lower()
    return known


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
    own: dict[str, Any] = {}
    for name, value in row.items():
        if value is None or value == "":
            continue
        if name == "AdditionalFields":
            value = decode_additional_fields(value)
        own[snake_case(name)] = value
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

    fields: dict[str, Any] = {"event": {"kind": "event"}, "cloud": {"provider": "azure"}}
    if "id" in tenant:
        fields["cloud"]["account"] = {"id": tenant["id"]}
    family_mapper(table)(fields, row, table)
    fields["m365_defender"] = {"event": own}
    timestamp = parse_time(row.get("Timestamp"))
    if timestamp is None:
        timestamp = parse_time(record.get("time"))
    return NormalizedRecord(fields, None if timestamp is None else millisecond_time(timestamp))
