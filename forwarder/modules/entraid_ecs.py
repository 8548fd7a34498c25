"""ECS normalization of Entra ID records, shared by the Graph and Event Hub transports.

Both transports carry the same Graph resource: a Graph page holds it directly,
an Event Hub diagnostic record holds it in `properties` with an Azure Monitor
envelope beside it. Normalizing the resource alone, with the envelope only as
a fallback for what the resource lacks, is what gives a SIEM the same fields
whichever transport a site uses (reference/entraid-ecs.md).

Record types: "signinlogs", "auditlogs", "provisioning", "risk_detection",
"risky_user", "alert", "incident". Normalizing never raises on odd input; the
result holds only JSON values and no nulls, except inside the sign-in's
conditional access policies, which are kept exactly as Microsoft wrote them.
It may share lists with the record, which must not be mutated afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from forwarder.modules.entraid_ecs_audit import audit_fields
from forwarder.modules.entraid_ecs_protection import (
    alert_fields,
    incident_fields,
    provisioning_fields,
    risk_detection_fields,
    risky_user_fields,
)
from forwarder.modules.entraid_ecs_signin import signin_fields
from forwarder.modules.entraid_ecs_values import millisecond_time, parse_time, text

RECORD_TYPES = ("signinlogs", "auditlogs", "provisioning", "risk_detection", "risky_user", "alert", "incident")

_FIELD_MAPPERS: dict[str, Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]] = {
    "signinlogs": signin_fields,
    "auditlogs": audit_fields,
    "provisioning": provisioning_fields,
    "risk_detection": risk_detection_fields,
    "risky_user": risky_user_fields,
    "alert": alert_fields,
    "incident": incident_fields,
}

# The record's own time, which becomes @timestamp.
_EVENT_TIME_KEYS = {
    "signinlogs": "createdDateTime",
    "auditlogs": "activityDateTime",
    "provisioning": "activityDateTime",
    "risk_detection": "detectedDateTime",
    "risky_user": "riskLastUpdatedDateTime",
    "alert": "createdDateTime",
    "incident": "createdDateTime",
}

# The time an incremental poll filters on: for records that are updated in place
# it is the last-update time, so an update is read (and forwarded) again.
_CURSOR_TIME_KEYS = {
    **_EVENT_TIME_KEYS,
    "risk_detection": "lastUpdatedDateTime",
    "alert": "lastUpdateDateTime",
    "incident": "lastUpdateDateTime",
}

_CATEGORY_RECORD_TYPES = {
    "signinlogs": "signinlogs",
    "noninteractiveusersigninlogs": "signinlogs",
    "serviceprincipalsigninlogs": "signinlogs",
    "managedidentitysigninlogs": "signinlogs",
    "auditlogs": "auditlogs",
    "provisioninglogs": "provisioning",
    "userriskevents": "risk_detection",
    "serviceprincipalriskevents": "risk_detection",
    "riskyusers": "risky_user",
    "riskyserviceprincipals": "risky_user",
}

class NormalizedRecord(NamedTuple):
    fields: dict[str, Any]
    """ECS fields to merge into the event (nested dicts)."""
    timestamp: float | None
    """The record's time in epoch seconds, truncated to milliseconds; None when the record has none."""


def normalize(record: Any, record_type: str, envelope: dict[str, Any] | None = None) -> NormalizedRecord:
    """Maps one Entra ID record onto ECS.

    `record` is the Graph resource (for Event Hub: the envelope's `properties`);
    `envelope` is the whole Event Hub record, whose `time`, `correlationId`,
    `resultType`, `callerIpAddress` … stand in for what the resource lacks.
    An unknown `record_type` yields only the fields common to every Entra ID event.
    """
    if type(record) is not dict:
        record = {}
    if type(envelope) is not dict:
        envelope = {}
    mapper = _FIELD_MAPPERS.get(record_type)
    fields = mapper(record, envelope) if mapper is not None else {}
    # A fresh object per event: processors may edit one event's fields in place.
    fields["cloud"] = {"provider": "Azure", "service": {"name": "Azure EntraId"}}

    trace_id = record.get("correlationId")
    if type(trace_id) is not str and trace_id is not None:
        trace_id = text(trace_id)
    if not trace_id:
        trace_id = text(envelope.get("correlationId"))
    if trace_id is not None:
        fields["trace"] = {"id": trace_id}

    # The mappers write `source` and `user` only as objects.
    source = fields.get("source")
    ip = source.get("ip") if source is not None else None
    user = fields.get("user")
    user_name = user.get("name") if user is not None else None
    if ip is not None:
        fields["related"] = {"ip": [ip], "user": [user_name]} if user_name is not None else {"ip": [ip]}
    elif user_name is not None:
        fields["related"] = {"user": [user_name]}

    timestamp = parse_time(record.get(_EVENT_TIME_KEYS.get(record_type, ""))) or parse_time(envelope.get("time"))
    return NormalizedRecord(fields, None if timestamp is None else millisecond_time(timestamp))


def record_time(record: Any, record_type: str) -> float | None:
    """The time an incremental poll of this record type filters on (epoch seconds), for cursors.

    It is the event time for append-only logs and the last-update time for
    risk detections, alerts and incidents. None when the record has no readable time.
    """
    key = _CURSOR_TIME_KEYS.get(record_type)
    if key is None or type(record) is not dict:
        return None
    return parse_time(record.get(key))


def record_type_for_category(category: Any) -> str | None:
    """The record type of an Event Hub diagnostic `category` (case-insensitive), None when not an Entra ID one."""
    if type(category) is not str:
        return None
    return _CATEGORY_RECORD_TYPES.get(category.lower())
