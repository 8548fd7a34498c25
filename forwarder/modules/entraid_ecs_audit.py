"""ECS fields of an Entra ID directory audit (the Graph `directoryAudit` resource).

Audit records vary in shape more than sign-ins: `initiatedBy` holds a user, an
app, or both with one of them null; target resources spell their type `type`
or `Type`; modified property values are JSON text but not always strings. The
copies kept under `azure.entraid.audit` are reshaped into one form so that no
field changes type between events.
"""

from __future__ import annotations

from typing import Any

from forwarder.modules.entraid_ecs_values import (
    obj,
    put_service,
    put_source_address,
    put_user,
    text,
    text_values,
    without_nulls,
)

_OUTCOMES = {"success": "success", "failure": "failure", "timeout": "failure"}


def audit_fields(record: dict[str, Any], envelope: dict[str, Any]) -> dict[str, Any]:
    """The directory-audit rows of the mapping; `envelope` (Event Hub) fills in a missing result."""
    fields: dict[str, Any] = {}
    event: dict[str, Any] = {}
    fields["event"] = event
    audit: dict[str, Any] = {}

    service_name = text(record.get("loggedByService"))
    if service_name is not None:
        event["provider"] = service_name
        fields["service"] = {"name": service_name}
    action = text(record.get("activityDisplayName"))
    if action is not None:
        event["action"] = action

    result = text(record.get("result")) or text(envelope.get("resultType"))
    event["outcome"] = _OUTCOMES.get(result.lower(), "unknown") if result is not None else "unknown"
    if result is not None:
        audit["result"] = result

    category = text(record.get("category"))
    event["category"] = ["configuration"] if category is not None and "policy" in category.lower() else ["iam"]
    if category is not None:
        audit["category"] = category
    reason = text(record.get("resultReason"))
    if reason is not None:
        event["reason"] = reason

    initiated_by = obj(record.get("initiatedBy"))
    user = obj(initiated_by.get("user"))
    if user:
        put_source_address(fields, user.get("ipAddress"))
        put_user(fields, user.get("id"), user.get("displayName"), user.get("userPrincipalName"))
    app = obj(initiated_by.get("app"))
    if text(app.get("appId")) is not None or text(app.get("displayName")) is not None:
        # The app is the actor: its name replaces the logging service's, which stays in event.provider.
        fields.pop("service", None)
        put_service(fields, app.get("appId"), app.get("displayName"))

    operation_type = text(record.get("operationType"))
    if operation_type is not None:
        audit["operation_type"] = operation_type
    targets = record.get("targetResources")
    if type(targets) is list:
        audit["target_resources"] = [_target_resource(target) for target in targets if type(target) is dict]
    details = record.get("additionalDetails")
    if type(details) is list:
        audit["additional_details"] = [text_values(detail) for detail in details if type(detail) is dict]
    if audit:
        fields["azure"] = {"entraid": {"audit": audit}}
    return fields


def _target_resource(target: dict[str, Any]) -> dict[str, Any]:
    resource: dict[str, Any] = {}
    for key, value in target.items():
        if value is None:
            continue
        if key in ("type", "Type"):
            if text(value) is not None and (key == "type" or "type" not in resource):
                resource["type"] = text(value)
        elif key == "modifiedProperties":
            if type(value) is list:
                resource[key] = [text_values(item) for item in value if type(item) is dict]
        else:
            resource[key] = without_nulls(value)
    return resource
