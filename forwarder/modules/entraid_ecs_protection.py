"""ECS fields of the smaller Entra ID record families: provisioning, identity protection, Defender alerts and incidents.

These map the common core (source address, user, outcome) where the record
has one and keep their own fields under `azure.entraid.<dataset>` with
snake_case names, as the audit fields are. Nested objects whose members vary
by subtype (alert evidence, provisioning steps) are kept as Microsoft wrote them.
"""

from __future__ import annotations

from typing import Any

from forwarder.modules.entraid_ecs_values import (
    as_json_text,
    code_text,
    copy_present,
    obj,
    put_geo,
    put_service,
    put_source_address,
    put_user,
    text,
    text_list,
    text_values,
    without_nulls,
)

_PROVISIONING_OUTCOMES = {"success": "success", "warning": "success", "failure": "failure"}

_PROVISIONING_KEYS = (
    ("jobId", "job_id"),
    ("cycleId", "cycle_id"),
    ("changeId", "change_id"),
    ("tenantId", "tenant_id"),
)
_PROVISIONING_OBJECTS = (
    ("initiatedBy", "initiated_by"),
    ("servicePrincipal", "service_principal"),
    ("sourceIdentity", "source_identity"),
    ("targetIdentity", "target_identity"),
    ("sourceSystem", "source_system"),
    ("targetSystem", "target_system"),
)

_RISK_DETECTION_KEYS = (
    ("id", "id"),
    ("riskEventType", "risk_event_type"),
    ("riskState", "risk_state"),
    ("riskLevel", "risk_level"),
    ("riskDetail", "risk_detail"),
    ("source", "source"),
    ("detectionTimingType", "detection_timing_type"),
    ("activity", "activity"),
    ("tokenIssuerType", "token_issuer_type"),
    ("requestId", "request_id"),
    ("activityDateTime", "activity_date_time"),
    ("lastUpdatedDateTime", "last_updated_date_time"),
)

_RISKY_USER_KEYS = (
    ("id", "id"),
    ("riskLevel", "risk_level"),
    ("riskState", "risk_state"),
    ("riskDetail", "risk_detail"),
)

_ALERT_KEYS = (
    ("id", "id"),
    ("providerAlertId", "provider_alert_id"),
    ("incidentId", "incident_id"),
    ("status", "status"),
    ("severity", "severity"),
    ("classification", "classification"),
    ("determination", "determination"),
    ("serviceSource", "service_source"),
    ("detectionSource", "detection_source"),
    ("detectorId", "detector_id"),
    ("title", "title"),
    ("description", "description"),
    ("category", "category"),
    ("assignedTo", "assigned_to"),
    ("alertWebUrl", "alert_web_url"),
    ("firstActivityDateTime", "first_activity_date_time"),
    ("lastActivityDateTime", "last_activity_date_time"),
    ("lastUpdateDateTime", "last_update_date_time"),
)

_INCIDENT_KEYS = (
    ("id", "id"),
    ("displayName", "display_name"),
    ("status", "status"),
    ("severity", "severity"),
    ("classification", "classification"),
    ("determination", "determination"),
    ("assignedTo", "assigned_to"),
    ("incidentWebUrl", "incident_web_url"),
    ("redirectIncidentId", "redirect_incident_id"),
    ("tenantId", "tenant_id"),
    ("description", "description"),
    ("summary", "summary"),
    ("lastUpdateDateTime", "last_update_date_time"),
)


def provisioning_fields(record: dict[str, Any], envelope: dict[str, Any]) -> dict[str, Any]:
    """A `provisioningObjectSummary`: action, outcome and error, actor, provisioned identity, systems."""
    fields: dict[str, Any] = {}
    event: dict[str, Any] = {}
    fields["event"] = event
    own: dict[str, Any] = {}

    action = text(record.get("provisioningAction")) or text(record.get("action"))
    if action is not None:
        event["action"] = action
    status_info = obj(record.get("provisioningStatusInfo")) or obj(record.get("statusInfo"))
    status = text(status_info.get("status"))
    event["outcome"] = _PROVISIONING_OUTCOMES.get(status.lower(), "unknown") if status is not None else "unknown"
    if status is not None:
        own["status"] = status
    error = obj(status_info.get("errorInformation"))
    code = code_text(error.get("errorCode"))
    if code is not None:
        event["code"] = code
    reason = text(error.get("reason"))
    if reason is not None and event["outcome"] == "failure":
        fields["error"] = {"message": reason}

    initiated_by = obj(record.get("initiatedBy"))
    if text(initiated_by.get("initiatorType")) == "user":
        put_user(fields, initiated_by.get("id"), initiated_by.get("displayName"), None)
    put_service(fields, None, obj(record.get("servicePrincipal")).get("displayName"))
    target = obj(record.get("targetIdentity"))
    target_user: dict[str, Any] = {}
    copy_present(target_user, target, (("id", "id"), ("displayName", "name")))
    if target_user:
        fields.setdefault("user", {})["target"] = target_user

    copy_present(own, record, _PROVISIONING_KEYS)
    duration = record.get("durationInMilliseconds")
    if type(duration) is int:
        own["duration_ms"] = duration
    for source_key, target_key in _PROVISIONING_OBJECTS:
        value = obj(record.get(source_key))
        if value:
            own[target_key] = without_nulls(value)
    steps = record.get("provisioningSteps")
    if type(steps) is list:
        own["provisioning_steps"] = [without_nulls(step) for step in steps if type(step) is dict]
    modified = record.get("modifiedProperties")
    if type(modified) is list:
        own["modified_properties"] = [text_values(item) for item in modified if type(item) is dict]
    if own:
        fields["azure"] = {"entraid": {"provisioning": own}}
    return fields


def risk_detection_fields(record: dict[str, Any], envelope: dict[str, Any]) -> dict[str, Any]:
    """A `riskDetection` (user) or `servicePrincipalRiskDetection`: who, from where, which risk."""
    fields: dict[str, Any] = {}
    event_action = text(record.get("riskEventType"))
    if event_action is not None:
        fields["event"] = {"action": event_action}
    put_source_address(fields, record.get("ipAddress"))
    put_geo(fields, record.get("location"))
    put_user(fields, record.get("userId"), record.get("userDisplayName"), record.get("userPrincipalName"))
    put_service(fields, record.get("appId"), record.get("servicePrincipalDisplayName"))

    own: dict[str, Any] = {}
    copy_present(own, record, _RISK_DETECTION_KEYS)
    additional_info = record.get("additionalInfo")
    if additional_info is not None:
        own["additional_info"] = as_json_text(additional_info)
    if own:
        fields["azure"] = {"entraid": {"risk_detection": own}}
    return fields


def risky_user_fields(record: dict[str, Any], envelope: dict[str, Any]) -> dict[str, Any]:
    """A `riskyUser`, or a `riskyServicePrincipal` (which has an appId and a displayName instead of a user)."""
    fields: dict[str, Any] = {}
    if text(record.get("appId")) is not None:
        put_service(fields, record.get("appId"), record.get("displayName"))
    else:
        put_user(fields, record.get("id"), record.get("userDisplayName"), record.get("userPrincipalName"))
    own: dict[str, Any] = {}
    copy_present(own, record, _RISKY_USER_KEYS)
    for source_key, target_key in (("isDeleted", "is_deleted"), ("isProcessing", "is_processing")):
        value = record.get(source_key)
        if type(value) is bool:
            own[target_key] = value
    if own:
        fields["azure"] = {"entraid": {"risky_user": own}}
    return fields


def alert_fields(record: dict[str, Any], envelope: dict[str, Any]) -> dict[str, Any]:
    """A Defender `alert` (alerts_v2): the first user and IP evidence become `user.*` and `source.*`."""
    fields: dict[str, Any] = {}
    evidence = record.get("evidence")
    evidence = [without_nulls(item) for item in evidence if type(item) is dict] if type(evidence) is list else None
    for item in evidence or ():
        kind = item.get("@odata.type")
        if kind == "#microsoft.graph.security.userEvidence" and "user" not in fields:
            account = obj(item.get("userAccount"))
            name = text(account.get("displayName")) or text(account.get("accountName"))
            put_user(fields, account.get("azureAdUserId"), name, account.get("userPrincipalName"))
        elif kind == "#microsoft.graph.security.ipEvidence" and "source" not in fields:
            put_source_address(fields, item.get("ipAddress"))

    own: dict[str, Any] = {}
    copy_present(own, record, _ALERT_KEYS)
    techniques = text_list(record.get("mitreTechniques"))
    if techniques is not None:
        own["mitre_techniques"] = techniques
    if evidence is not None:
        own["evidence"] = evidence
    if own:
        fields["azure"] = {"entraid": {"alert": own}}
    return fields


def incident_fields(record: dict[str, Any], envelope: dict[str, Any]) -> dict[str, Any]:
    """A Defender `incident`: its own fields, tags, comments, and the ids of its alerts when expanded."""
    own: dict[str, Any] = {}
    copy_present(own, record, _INCIDENT_KEYS)
    for source_key, target_key in (("customTags", "custom_tags"), ("systemTags", "system_tags")):
        tags = text_list(record.get(source_key))
        if tags is not None:
            own[target_key] = tags
    comments = record.get("comments")
    if type(comments) is list:
        own["comments"] = [text_values(comment) for comment in comments if type(comment) is dict]
    alerts = record.get("alerts")
    if type(alerts) is list:
        own["alert_ids"] = [alert_id for alert in alerts if (alert_id := text(obj(alert).get("id"))) is not None]
    return {"azure": {"entraid": {"incident": own}}} if own else {}
