"""The Azure Monitor common envelope of a diagnostic-settings record, read once for every fileset.

Every record streamed by a diagnostic setting shares the same outer fields
(time, resourceId, operationName, category, result*, durationMs,
callerIpAddress, correlationId, level, properties), but services disagree on
their casing (`Level`/`level`, `resourceId`/`ResourceId`) and types
(`durationMs` as number or text). `read_envelope` reads them case-insensitively into
one fixed shape, so each fileset's mapping writes fields of one type only.
"""

from __future__ import annotations

from typing import Any

from forwarder.modules.entraid_ecs_values import put_source_address, split_address, text

_ENVELOPE_KEYS = {
    "time": "time",
    "resourceid": "resource_id",
    "operationname": "operation_name",
    "operationversion": "operation_version",
    "category": "category",
    "resulttype": "result_type",
    "resultsignature": "result_signature",
    "resultdescription": "result_description",
    "durationms": "duration_ms",
    "calleripaddress": "caller_ip_address",
    "correlationid": "correlation_id",
    "identity": "identity",
    "level": "level",
    "location": "location",
    "tenantid": "tenant_id",
    "properties": "properties",
}
# The spellings Azure uses, looked up before lower-casing a key (most records use the first).
_SPELLINGS = {
    "time": "time", "resourceId": "resource_id", "operationName": "operation_name",
    "operationVersion": "operation_version", "category": "category", "resultType": "result_type",
    "resultSignature": "result_signature", "resultDescription": "result_description", "durationMs": "duration_ms",
    "callerIpAddress": "caller_ip_address", "correlationId": "correlation_id", "identity": "identity",
    "Level": "level", "level": "level", "location": "location", "tenantId": "tenant_id", "properties": "properties",
}
# The time of records that name it differently (some resource logs).
_TIME_FALLBACK_KEYS = ("timegenerated", "timestamp", "eventtimestamp")

_OUTCOMES = {"success": "success", "succeeded": "success", "failure": "failure", "failed": "failure"}


# A record's envelope fields by snake_case name; absent ones are missing.
Envelope = dict[str, Any]


def read_envelope(record: dict[str, Any]) -> Envelope:
    """The envelope fields of one record, whatever the casing of their keys; the first spelling found wins."""
    found: Envelope = {}
    for key, value in record.items():
        name = _SPELLINGS.get(key)
        if name is None:
            if type(key) is not str:
                continue
            lowered = key.lower()
            name = _ENVELOPE_KEYS.get(lowered)
            if name is None:
                if lowered in _TIME_FALLBACK_KEYS and "fallback_time" not in found:
                    found["fallback_time"] = value
                continue
        if name not in found:
            found[name] = value
    if "time" not in found and "fallback_time" in found:
        found["time"] = found["fallback_time"]
    return found


def put_common(fields: dict[str, Any], envelope: Envelope, fileset: str) -> dict[str, Any]:
    """Writes what every fileset takes from the envelope; returns the `azure.<fileset>` object for more."""
    azure = fields.setdefault("azure", {})
    own: dict[str, Any] = azure.setdefault(fileset, {})
    for name in ("operation_name", "operation_version", "category", "result_type", "result_signature",
                 "result_description"):
        value = text(envelope.get(name))
        if value is not None:
            own[name] = value
    identity = text(envelope.get("identity"))
    if identity is not None:
        own["identity"] = identity

    correlation_id = text(envelope.get("correlation_id"))
    if correlation_id is not None:
        azure["correlation_id"] = correlation_id
    tenant_id = text(envelope.get("tenant_id"))
    if tenant_id is not None:
        azure["tenant_id"] = tenant_id
    resource_id = text(envelope.get("resource_id"))
    if resource_id is not None:
        put_resource(azure, resource_id)

    event = fields.setdefault("event", {})
    event["kind"] = "event"
    action = text(envelope.get("operation_name"))
    if action is not None:
        event.setdefault("action", action)
    duration = duration_nanoseconds(envelope.get("duration_ms"))
    if duration is not None:
        event.setdefault("duration", duration)
    level = text(envelope.get("level"))
    if level is not None:
        fields["log"] = {"level": level}
    if "ip" not in fields.get("source", {}):
        put_ip_address(fields, envelope.get("caller_ip_address"))
    return own


def put_resource(azure: dict[str, Any], resource_id: str) -> None:
    """`azure.resource.{id, group, provider, namespace, name}` and `azure.subscription_id` / `azure.tenant_id`.

    From `/SUBSCRIPTIONS/<id>/RESOURCEGROUPS/<group>/PROVIDERS/<namespace>/<type>/<name>[/<child type>/<child>…]`
    or `/tenants/<id>/providers/Microsoft.aadiam`; path words in any case.
    `provider` is `<namespace>/<type>` as in Filebeat (just the namespace when
    the id names no resource type), `name` everything after the type.
    """
    resource: dict[str, Any] = {"id": resource_id}
    parts = [part for part in resource_id.split("/") if part]
    index = 0
    while index + 1 < len(parts):
        word, value = parts[index].lower(), parts[index + 1]
        if word == "subscriptions":
            azure["subscription_id"] = value
        elif word == "resourcegroups":
            resource["group"] = value
        elif word == "tenants":
            azure.setdefault("tenant_id", value)
        elif word == "providers":
            resource["namespace"] = value
            rest = parts[index + 2:]
            resource["provider"] = f"{value}/{rest[0]}" if rest else value
            if len(rest) > 1:
                resource["name"] = "/".join(rest[1:])
            break
        index += 2
    azure["resource"] = resource


def put_ip_address(fields: dict[str, Any], value: Any) -> None:
    """`source.ip`/`source.address` from a value that is an IP address (with or without a port), else nothing.

    Azure writes service names and empty strings in `callerIpAddress` too; those are not addresses.
    """
    address = text(value)
    if address is not None and split_address(address)[0] is not None:
        put_source_address(fields, address)


def duration_nanoseconds(value: Any) -> int | None:
    """`durationMs` (a number, or its text) as ECS `event.duration` nanoseconds; None when unreadable or negative."""
    if isinstance(value, bool):
        return None
    if type(value) is str:
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, int | float) or value != value or value < 0 or value == float("inf"):
        return None
    return round(value * 1_000_000)


def outcome(result_type: Any) -> str | None:
    """`event.outcome` from an activity or resource log's `resultType` (`Success`, `Failed` …); None otherwise."""
    value = text(result_type)
    return None if value is None else _OUTCOMES.get(value.lower())
