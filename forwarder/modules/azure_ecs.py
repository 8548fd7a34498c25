"""ECS normalization of the records the `azure` module reads from Event Hubs.

Entra ID records carry a Graph resource in `properties`; they are mapped by
the same code as the Graph transport (`entraid_ecs.normalize`), so a SIEM sees
the same fields whichever transport a site picks. The Azure Monitor envelope
around them, and around every other record, adds what Filebeat's azure
pipelines put there:

| target | source |
|---|---|
| `@timestamp` | Entra ID: the resource's time (as on the Graph path), else `time`; others: `time`/`timeGenerated` |
| `azure.<fileset>.operation_name`, `operation_version`, `category` | `operationName`, `operationVersion`, `category` |
| `azure.<fileset>.result_type`, `result_signature`, `result_description` | `resultType`, `resultSignature`, … as text |
| `azure.<fileset>.identity` | `identity` when it is a name (activity logs: the object below) |
| `azure.tenant_id`, `azure.correlation_id` | `tenantId` (or the `/tenants/<id>` of the resource id), `correlationId` |
| `azure.resource.id`, `group`, `provider`, `namespace`, `name`; `azure.subscription_id` | `resourceId`, split |
| `event.action` | `operationName`, unless the mapping has a better one (audit: `activityDisplayName`) |
| `event.duration` | `durationMs` (number or text) × 1,000,000; provisioning: its `durationInMilliseconds` |
| `event.kind` | `event` |
| `log.level` | `level` / `Level` as text (`4`, `Informational`) |
| `source.ip`, `source.address` | the resource's address, else `callerIpAddress` when it is an IP address |
| `related.ip`, `related.user` | `source.ip`, `user.name` |
| `cloud.provider` | `Azure` for Entra ID records (as on the Graph path), `azure` for the others |

Activity logs also get `event.outcome` from `resultType` (`Success` →
success, `Failure`/`Failed` → failure), `user.name`/`user.full_name`/`user.id`
from the caller's claims, `azure.activitylogs.identity.{authorization, claims,
claims_initiated_by_user}`, `azure.activitylogs.properties` and
`event_category`. Platform logs: `event.outcome` and
`azure.platformlogs.properties`. Graph activity logs: `http.request.method`,
`http.response.status_code`/`bytes`, `url.*`, `user_agent.original`,
`source.ip` ← `ipAddress`, `user.id`, `event.outcome` from the status code,
and the request's ids, app, scopes and roles under
`azure.graphactivitylogs.properties`.

Normalizing never raises on odd input and writes no nulls.
"""

from __future__ import annotations

from typing import Any

from forwarder.modules.azure_ecs_envelope import duration_nanoseconds, put_common, read_envelope
from forwarder.modules.azure_ecs_monitor import activity_fields, graph_activity_fields, platform_fields
from forwarder.modules.azure_routing import ADVANCED_HUNTING_FILESET
from forwarder.modules.entraid_ecs import NormalizedRecord, record_type_for_category
from forwarder.modules.entraid_ecs import normalize as normalize_entraid
from forwarder.modules.entraid_ecs_values import millisecond_time, obj, parse_time
from forwarder.modules.microsoft_m365_event_ecs import normalize_advanced_hunting

# Entra ID filesets → the record type when the category does not tell (it always does for Azure's own categories).
_ENTRAID_FILESETS = {
    "signinlogs": "signinlogs",
    "auditlogs": "auditlogs",
    "provisioning": "provisioning",
    "identity_protection": "risk_detection",
}
_MONITOR_MAPPERS = {
    "activitylogs": activity_fields,
    "platformlogs": platform_fields,
    "graphactivitylogs": graph_activity_fields,
}


def normalize(record: Any, fileset: str) -> NormalizedRecord:
    """Maps one diagnostic-settings record of `fileset` (from `azure_routing`) onto ECS: (fields, timestamp).

    A record that is not a JSON object yields only `cloud.provider` and no timestamp.
    """
    if fileset == ADVANCED_HUNTING_FILESET:
        return normalize_advanced_hunting(record)
    if type(record) is not dict:
        return NormalizedRecord({"cloud": {"provider": "azure"}}, None)
    envelope = read_envelope(record)
    record_type = _ENTRAID_FILESETS.get(fileset)
    if record_type is not None:
        record_type = record_type_for_category(envelope.get("category")) or record_type
        properties = record.get("properties")
        normalized = normalize_entraid(properties, record_type, record)
        if record_type == "provisioning":
            # The envelope's durationMs is 0 for these; the provisioning's own duration is the real one.
            duration = duration_nanoseconds(obj(properties).get("durationInMilliseconds"))
            if duration is not None:
                normalized.fields.setdefault("event", {})["duration"] = duration
        put_common(normalized.fields, envelope, fileset)
        _put_related(normalized.fields)
        return normalized
    fields: dict[str, Any] = {"cloud": {"provider": "azure"}}
    own = put_common(fields, envelope, fileset)
    mapper = _MONITOR_MAPPERS.get(fileset, platform_fields)
    mapper(fields, envelope, own)
    _put_related(fields)
    timestamp = parse_time(envelope.get("time"))
    if timestamp is None:
        timestamp = parse_time(obj(envelope.get("properties")).get("timeGenerated"))
    return NormalizedRecord(fields, None if timestamp is None else millisecond_time(timestamp))


def _put_related(fields: dict[str, Any]) -> None:
    """`related.ip` / `related.user` from what the mapping placed in `source.ip` / `user.name`, as for Entra ID."""
    related: dict[str, list[str]] = {}
    ip = fields.get("source", {}).get("ip")
    if ip is not None:
        related["ip"] = [ip]
    user_name = fields.get("user", {}).get("name")
    if user_name is not None:
        related["user"] = [user_name]
    if related:
        fields["related"] = related
