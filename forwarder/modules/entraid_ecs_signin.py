"""ECS fields of an Entra ID sign-in (the Graph `signIn` resource, any sign-in event type).

Sign-ins are the bulk of Entra ID traffic (tens of thousands a minute in large
tenants), so this reads each field once, builds the nested dicts directly and
leaves lists from the record shared rather than copied.
"""

from __future__ import annotations

from typing import Any

from forwarder.modules.entraid_ecs_values import (
    code_text,
    flag_text,
    put_geo,
    put_service,
    put_source_address,
    put_user,
    text,
    text_list,
)

# Copied under `azure.entraid.properties` with their own names when they hold text.
_PROPERTY_KEYS = (
    "clientAppUsed",
    "conditionalAccessStatus",
    "resourceId",
    "riskDetail",
    "riskLevelAggregated",
    "riskLevelDuringSignIn",
    "riskState",
    # Not in the mapping table: they name the principal of sign-ins that have no user.
    "servicePrincipalId",
    "servicePrincipalName",
)
# Read-only stand-in for an object the record lacks, so a missing one costs no allocation.
_NO_OBJECT: dict[str, Any] = {}


def signin_fields(record: dict[str, Any], envelope: dict[str, Any]) -> dict[str, Any]:
    """The sign-in rows of the mapping; `envelope` (Event Hub) fills in what `properties` lacks.

    Fields that are nearly always strings are tested inline and only handed to
    `text` when they are not, which saves a call per field on the common path.
    """
    get = record.get
    event: dict[str, Any] = {"category": ["authentication"], "type": ["start"]}
    fields: dict[str, Any] = {"event": event}

    status = get("status")
    if type(status) is not dict:
        status = _NO_OBJECT
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

    value = get("resourceDisplayName")
    if type(value) is not str and value is not None:
        value = text(value)
    if value:
        event["provider"] = value
    put_service(fields, get("appId"), get("appDisplayName"))

    address = get("ipAddress")
    if not (type(address) is str and address) and text(address) is None:
        address = envelope.get("callerIpAddress")
    put_source_address(fields, address)
    location = get("location")
    if type(location) is dict and location:
        put_geo(fields, location)

    user_id = get("userId")
    display_name = get("userDisplayName")
    if not (type(display_name) is str and display_name) and text(display_name) is None and text(user_id) is not None:
        display_name = envelope.get("identity")
    put_user(fields, user_id, display_name, get("userPrincipalName"))

    device = get("deviceDetail")
    if type(device) is not dict:
        device = _NO_OBJECT
    value = device.get("operatingSystem")
    if type(value) is not str and value is not None:
        value = text(value)
    if value:
        fields["host"] = {"os": {"name": value}}
    value = get("userAgent")
    if type(value) is not str and value is not None:
        value = text(value)
    if not value:
        value = text(device.get("browser"))
    if value:
        fields["user_agent"] = {"original": value}

    properties: dict[str, Any] = {}
    policies = get("appliedConditionalAccessPolicies")
    if type(policies) is list:
        properties["appliedConditionalAccessPolicies"] = [policy for policy in policies if type(policy) is dict]
    for key in _PROPERTY_KEYS:
        value = get(key)
        if type(value) is not str and value is not None:
            value = text(value)
        if value:
            properties[key] = value
    interactive = flag_text(get("isInteractive"))
    if interactive is not None:
        properties["isInteractive"] = interactive
    for key in ("riskEventTypes", "signInEventTypes"):
        values = text_list(get(key))
        if values is not None:
            properties[key] = values
    if properties:
        fields["azure"] = {"entraid": {"properties": properties}}
    return fields
