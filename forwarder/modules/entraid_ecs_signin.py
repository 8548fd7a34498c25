"""ECS fields of an Entra ID sign-in (the Graph `signIn` resource, any sign-in event type).

Sign-ins are the bulk of Entra ID traffic (tens of thousands a minute in large
tenants), so this reads each field once, builds the nested dicts directly and
leaves lists from the record shared rather than copied.
"""

from __future__ import annotations

from typing import Any

from forwarder.modules.entraid_ecs_values import (
    code_text,
    copy_present,
    flag_text,
    obj,
    put_geo,
    put_service,
    put_source_address,
    put_user,
    text,
    text_list,
)

_PROPERTY_KEYS = (
    ("clientAppUsed", "clientAppUsed"),
    ("conditionalAccessStatus", "conditionalAccessStatus"),
    ("resourceId", "resourceId"),
    ("riskDetail", "riskDetail"),
    ("riskLevelAggregated", "riskLevelAggregated"),
    ("riskLevelDuringSignIn", "riskLevelDuringSignIn"),
    ("riskState", "riskState"),
    # Not in the mapping table: they name the principal of sign-ins that have no user.
    ("servicePrincipalId", "servicePrincipalId"),
    ("servicePrincipalName", "servicePrincipalName"),
)


def signin_fields(record: dict[str, Any], envelope: dict[str, Any]) -> dict[str, Any]:
    """The sign-in rows of the mapping; `envelope` (Event Hub) fills in what `properties` lacks."""
    fields: dict[str, Any] = {}
    event: dict[str, Any] = {"category": ["authentication"], "type": ["start"]}
    fields["event"] = event

    status = obj(record.get("status"))
    code = code_text(status.get("errorCode"))
    if code is None:
        code = code_text(envelope.get("resultType"))
    if code is None:
        event["outcome"] = "unknown"
    else:
        event["code"] = code
        event["outcome"] = "success" if code == "0" else "failure"
        if code != "0":
            reason = text(status.get("failureReason")) or text(envelope.get("resultDescription"))
            if reason is not None:
                fields["error"] = {"message": reason}

    provider = text(record.get("resourceDisplayName"))
    if provider is not None:
        event["provider"] = provider
    put_service(fields, record.get("appId"), record.get("appDisplayName"))

    address = record.get("ipAddress")
    put_source_address(fields, address if text(address) is not None else envelope.get("callerIpAddress"))
    put_geo(fields, record.get("location"))

    display_name = record.get("userDisplayName")
    if text(display_name) is None and text(record.get("userId")) is not None:
        display_name = envelope.get("identity")
    put_user(fields, record.get("userId"), display_name, record.get("userPrincipalName"))

    device = obj(record.get("deviceDetail"))
    operating_system = text(device.get("operatingSystem"))
    if operating_system is not None:
        fields["host"] = {"os": {"name": operating_system}}
    user_agent = text(record.get("userAgent")) or text(device.get("browser"))
    if user_agent is not None:
        fields["user_agent"] = {"original": user_agent}

    properties: dict[str, Any] = {}
    policies = record.get("appliedConditionalAccessPolicies")
    if type(policies) is list:
        properties["appliedConditionalAccessPolicies"] = [policy for policy in policies if type(policy) is dict]
    copy_present(properties, record, _PROPERTY_KEYS)
    interactive = flag_text(record.get("isInteractive"))
    if interactive is not None:
        properties["isInteractive"] = interactive
    for key in ("riskEventTypes", "signInEventTypes"):
        values = text_list(record.get(key))
        if values is not None:
            properties[key] = values
    if properties:
        fields["azure"] = {"entraid": {"properties": properties}}
    return fields
