"""The CSV columns of each `entraid` fileset, close to what the Entra admin center's "Download" gives.

Fixed columns per fileset, so a spreadsheet or script built on one export reads
the next. Cells hold the record's own values: times as Microsoft wrote them (UTC),
lists of plain values joined with "; ", a few nested lists summarised (policies,
authentication steps, modified properties), anything else nested as compact JSON,
and an empty cell where the record has no value. The identity_protection fileset
lists two record types (risk detections and risky users) in one table; its
"Record type" column tells them apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

# A record and the Graph record type it was read as (`risk_detection`, `risky_user`, …).
Extractor = Callable[[dict[str, Any], str], Any]
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Column:
    header: str
    extract: Extractor


def cell(value: Any) -> str:
    """One CSV cell: text for scalars, "; "-joined plain lists, compact JSON for the rest, "" for none."""
    text = _text(value)
    return text if isinstance(value, (bool, int, float)) else _inert(text)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    if isinstance(value, list) and all(isinstance(item, (str, int, float)) for item in value):
        return "; ".join(str(item) for item in value)
    return orjson.dumps(value).decode()


def _inert(text: str) -> str:
    """Text a spreadsheet would run as a formula (a user agent or display name is attacker-chosen) gets a `'`."""
    return f"'{text}" if text[:1] in _FORMULA_STARTS else text


def row(record: dict[str, Any], stream: str, columns: list[Column]) -> list[str]:
    return [cell(column.extract(record, stream)) for column in columns]


def value_at(record: Any, path: str) -> Any:
    """The value at a dotted path, None when any step is missing or not an object."""
    node = record
    for part in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def at(header: str, path: str) -> Column:
    return Column(header, lambda record, _stream: value_at(record, path))


def _items(record: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = record.get(key)
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def location(record: dict[str, Any], _stream: str = "") -> str:
    """"City, State, CC" from the parts present, as the portal shows a location."""
    place = record.get("location")
    if not isinstance(place, dict):
        return ""
    return ", ".join(str(place[key]) for key in ("city", "state", "countryOrRegion") if place.get(key))


def sign_in_status(record: dict[str, Any], _stream: str) -> str:
    code = value_at(record, "status.errorCode")
    if code is None:
        return ""
    return "Success" if code == 0 else "Failure"


def authentication_methods(record: dict[str, Any], _stream: str) -> str:
    """Each step as "Method (result)", in order: what the portal's MFA columns are read from."""
    steps = []
    for step in _items(record, "authenticationDetails"):
        method = step.get("authenticationMethod") or "unknown method"
        result = step.get("authenticationStepResultDetail")
        if not result and isinstance(step.get("succeeded"), bool):
            result = "succeeded" if step["succeeded"] else "failed"
        steps.append(f"{method} ({result})" if result else str(method))
    return "; ".join(steps)


def applied_policies(record: dict[str, Any], _stream: str) -> str:
    """Conditional Access policies that took part ("Name: success|failure"); not-applied ones are left out."""
    return "; ".join(
        f"{policy.get('displayName') or policy.get('id')}: {policy.get('result')}"
        for policy in _items(record, "appliedConditionalAccessPolicies")
        if policy.get("result") in ("success", "failure")
    )


def key_values(key: str, name_field: str, value_field: str) -> Extractor:
    """A list of {name, value} pairs as "name=value; …" (additionalDetails, authenticationProcessingDetails)."""
    return lambda record, _stream: "; ".join(
        f"{item.get(name_field)}={_text(item.get(value_field))}" for item in _items(record, key)
    )


def changes(properties: list[dict[str, Any]]) -> str:
    """Modified properties as "Name: old -> new"; Graph's JSON-encoded values are kept as written."""
    return "; ".join(
        f"{item.get('displayName')}: {_text(item.get('oldValue'))} -> {_text(item.get('newValue'))}"
        for item in properties if isinstance(item, dict)
    )


SIGN_IN_COLUMNS = [
    at("Date (UTC)", "createdDateTime"),
    at("Request ID", "id"),
    at("Sign-in event types", "signInEventTypes"),
    at("User agent", "userAgent"),
    at("Correlation ID", "correlationId"),
    at("User ID", "userId"),
    at("User", "userDisplayName"),
    at("Username", "userPrincipalName"),
    at("User type", "userType"),
    at("Service principal ID", "servicePrincipalId"),
    at("Service principal name", "servicePrincipalName"),
    at("Managed identity type", "managedServiceIdentity.msiType"),
    at("Cross tenant access type", "crossTenantAccessType"),
    at("Incoming token type", "incomingTokenType"),
    at("Authentication protocol", "authenticationProtocol"),
    at("Unique token identifier", "uniqueTokenIdentifier"),
    at("Application", "appDisplayName"),
    at("Application ID", "appId"),
    at("Resource", "resourceDisplayName"),
    at("Resource ID", "resourceId"),
    at("Resource tenant ID", "resourceTenantId"),
    at("Home tenant ID", "homeTenantId"),
    at("IP address", "ipAddress"),
    Column("Location", location),
    Column("Status", sign_in_status),
    at("Sign-in error code", "status.errorCode"),
    at("Failure reason", "status.failureReason"),
    at("Additional details", "status.additionalDetails"),
    at("Client app", "clientAppUsed"),
    at("Device ID", "deviceDetail.deviceId"),
    at("Device name", "deviceDetail.displayName"),
    at("Operating System", "deviceDetail.operatingSystem"),
    at("Browser", "deviceDetail.browser"),
    at("Compliant", "deviceDetail.isCompliant"),
    at("Managed", "deviceDetail.isManaged"),
    at("Join type", "deviceDetail.trustType"),
    at("Authentication requirement", "authenticationRequirement"),
    Column("Authentication methods", authentication_methods),
    at("Conditional Access", "conditionalAccessStatus"),
    Column("Conditional Access policies applied", applied_policies),
    at("Risk level (aggregated)", "riskLevelAggregated"),
    at("Risk level (during sign-in)", "riskLevelDuringSignIn"),
    at("Risk state", "riskState"),
    at("Risk detail", "riskDetail"),
    Column("Risk event types", lambda record, _stream: record.get("riskEventTypes_v2") or record.get("riskEventTypes")),
    at("Autonomous system number", "autonomousSystemNumber"),
    at("Token issuer type", "tokenIssuerType"),
    at("Flagged for review", "flaggedForReview"),
    at("Latency (ms)", "processingTimeInMilliseconds"),
]


def _initiator(record: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """("User" | "App" | "", the initiating object) of a directory audit."""
    initiated = record.get("initiatedBy")
    if isinstance(initiated, dict):
        for kind, label in (("user", "User"), ("app", "App")):
            if isinstance(initiated.get(kind), dict):
                return label, initiated[kind]
    return "", {}


def actor(*keys: str) -> Extractor:
    """The first of `keys` the initiating user or app has (users and apps name their ids differently)."""

    def extract(record: dict[str, Any], _stream: str) -> Any:
        _, who = _initiator(record)
        return next((who[key] for key in keys if who.get(key) is not None), None)

    return extract


def target(position: int, *keys: str) -> Extractor:
    """A field of the `position`th target resource (Graph writes `type`, some records `Type`)."""

    def extract(record: dict[str, Any], _stream: str) -> Any:
        targets = _items(record, "targetResources")
        if position >= len(targets):
            return None
        return next((targets[position][key] for key in keys if targets[position].get(key) is not None), None)

    return extract


def _target_columns(position: int) -> list[Column]:
    label = f"Target {position + 1}"
    return [
        Column(f"{label} type", target(position, "type", "Type")),
        Column(f"{label} display name", target(position, "displayName")),
        Column(f"{label} object ID", target(position, "id")),
        Column(f"{label} user principal name", target(position, "userPrincipalName")),
    ]


AUDIT_COLUMNS = [
    at("Date (UTC)", "activityDateTime"),
    at("ID", "id"),
    at("Correlation ID", "correlationId"),
    at("Service", "loggedByService"),
    at("Category", "category"),
    at("Activity", "activityDisplayName"),
    at("Operation type", "operationType"),
    at("Result", "result"),
    at("Result reason", "resultReason"),
    Column("Actor type", lambda record, _stream: _initiator(record)[0]),
    Column("Actor display name", actor("displayName")),
    Column("Actor object ID", actor("id", "servicePrincipalId")),
    Column("Actor user principal name", actor("userPrincipalName", "servicePrincipalName")),
    Column("Actor app ID", actor("appId")),
    Column("IP address", actor("ipAddress")),
    at("User agent", "userAgent"),
    *_target_columns(0),
    *_target_columns(1),
    Column("Modified properties", lambda record, _stream: "; ".join(
        text for text in (changes(item.get("modifiedProperties") or []) for item in _items(record, "targetResources"))
        if text)),
    Column("Additional details", key_values("additionalDetails", "key", "value")),
]


def provisioning_steps(record: dict[str, Any], _stream: str) -> str:
    return "; ".join(f"{step.get('name')}: {step.get('status')}" for step in _items(record, "provisioningSteps"))


PROVISIONING_COLUMNS = [
    at("Date (UTC)", "activityDateTime"),
    at("ID", "id"),
    at("Job ID", "jobId"),
    at("Cycle ID", "cycleId"),
    at("Change ID", "changeId"),
    at("Action", "provisioningAction"),
    at("Status", "provisioningStatusInfo.status"),
    at("Source system", "sourceSystem.displayName"),
    at("Target system", "targetSystem.displayName"),
    at("Source identity", "sourceIdentity.displayName"),
    at("Source identity ID", "sourceIdentity.id"),
    at("Source identity type", "sourceIdentity.identityType"),
    at("Target identity", "targetIdentity.displayName"),
    at("Target identity ID", "targetIdentity.id"),
    at("Service principal", "servicePrincipal.displayName"),
    at("Service principal ID", "servicePrincipal.id"),
    at("Initiated by", "initiatedBy.displayName"),
    at("Error code", "provisioningStatusInfo.errorInformation.errorCode"),
    at("Error reason", "provisioningStatusInfo.errorInformation.reason"),
    at("Error category", "provisioningStatusInfo.errorInformation.errorCategory"),
    at("Recommended action", "provisioningStatusInfo.errorInformation.recommendedAction"),
    at("Duration (ms)", "durationInMilliseconds"),
    Column("Steps", provisioning_steps),
    Column("Modified properties", lambda record, _stream: changes(_items(record, "modifiedProperties"))),
]

_RECORD_TYPE_NAMES = {"risk_detection": "riskDetection", "risky_user": "riskyUser"}


def risk_only(path: str, stream: str) -> Extractor:
    """A field that only one of the two identity-protection record types has under this meaning."""
    return lambda record, record_stream: value_at(record, path) if record_stream == stream else None


IDENTITY_PROTECTION_COLUMNS = [
    Column("Record type", lambda _record, stream: _RECORD_TYPE_NAMES.get(stream, stream)),
    Column("Date (UTC)", lambda record, stream: record.get(
        "riskLastUpdatedDateTime" if stream == "risky_user" else "lastUpdatedDateTime")),
    at("Detection time (UTC)", "detectedDateTime"),
    at("Activity time (UTC)", "activityDateTime"),
    at("ID", "id"),
    at("Request ID", "requestId"),
    at("Correlation ID", "correlationId"),
    at("User", "userDisplayName"),
    at("Username", "userPrincipalName"),
    Column("User ID", lambda record, stream: record.get("id" if stream == "risky_user" else "userId")),
    at("Risk event type", "riskEventType"),
    at("Risk level", "riskLevel"),
    at("Risk state", "riskState"),
    at("Risk detail", "riskDetail"),
    at("Source", "source"),
    at("Detection timing", "detectionTimingType"),
    at("Activity", "activity"),
    at("Token issuer type", "tokenIssuerType"),
    at("IP address", "ipAddress"),
    Column("Location", location),
    Column("Deleted", risk_only("isDeleted", "risky_user")),
    Column("Processing", risk_only("isProcessing", "risky_user")),
    at("Additional info", "additionalInfo"),
]


def evidence(odata_type: str, path: str) -> Extractor:
    """Distinct values of `path` over an alert's evidence of one type, in order."""

    def extract(record: dict[str, Any], _stream: str) -> list[str]:
        found: list[str] = []
        for item in _items(record, "evidence"):
            if item.get("@odata.type") == f"#microsoft.graph.security.{odata_type}":
                value = value_at(item, path)
                if value is not None and str(value) not in found:
                    found.append(str(value))
        return found

    return extract


ALERT_COLUMNS = [
    at("Last updated (UTC)", "lastUpdateDateTime"),
    at("Created (UTC)", "createdDateTime"),
    at("ID", "id"),
    at("Title", "title"),
    at("Severity", "severity"),
    at("Status", "status"),
    at("Classification", "classification"),
    at("Determination", "determination"),
    at("Category", "category"),
    at("Service source", "serviceSource"),
    at("Detection source", "detectionSource"),
    at("Incident ID", "incidentId"),
    at("Assigned to", "assignedTo"),
    at("First activity (UTC)", "firstActivityDateTime"),
    at("Last activity (UTC)", "lastActivityDateTime"),
    at("Resolved (UTC)", "resolvedDateTime"),
    at("MITRE techniques", "mitreTechniques"),
    Column("Users", evidence("userEvidence", "userAccount.userPrincipalName")),
    Column("IP addresses", evidence("ipEvidence", "ipAddress")),
    at("Description", "description"),
    at("Recommended actions", "recommendedActions"),
    at("Alert URL", "alertWebUrl"),
]

INCIDENT_COLUMNS = [
    at("Last updated (UTC)", "lastUpdateDateTime"),
    at("Created (UTC)", "createdDateTime"),
    at("ID", "id"),
    at("Name", "displayName"),
    at("Severity", "severity"),
    at("Status", "status"),
    at("Classification", "classification"),
    at("Determination", "determination"),
    at("Assigned to", "assignedTo"),
    at("Custom tags", "customTags"),
    at("System tags", "systemTags"),
    Column("Alert IDs", lambda record, _stream: [
        alert["id"] for alert in _items(record, "alerts") if isinstance(alert.get("id"), str)]),
    Column("Comments", lambda record, _stream: [
        f"{comment.get('createdByDisplayName')}: {comment.get('comment')}" for comment in _items(record, "comments")]),
    at("Description", "description"),
    at("Summary", "summary"),
    at("Redirect incident ID", "redirectIncidentId"),
    at("Incident URL", "incidentWebUrl"),
]

COLUMNS: dict[str, list[Column]] = {
    "signinlogs": SIGN_IN_COLUMNS,
    "auditlogs": AUDIT_COLUMNS,
    "provisioning": PROVISIONING_COLUMNS,
    "identity_protection": IDENTITY_PROTECTION_COLUMNS,
    "alerts": ALERT_COLUMNS,
    "incidents": INCIDENT_COLUMNS,
}
