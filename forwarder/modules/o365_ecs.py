"""ECS normalization of Office 365 Management Activity API audit records.

Filebeat's o365 module does its mapping on the Beat side (a script processor),
so the documents a SIEM holds today were shaped on the host; a drop-in has to
shape them the same way or detection rules and dashboards stop matching. The
mapping follows that script (the README's o365 section has the full table) and
keeps every raw field, unchanged, under `o365.audit`.

Where it deliberately differs from Filebeat: no outcome is invented when
`ResultStatus` is absent (Filebeat writes success); `user.id` is always the
record's `UserId` (Filebeat puts `LogonUserSid` there for Exchange items); of
`ClientIP`, `ClientIPAddress` and `ActorIpAddress` the first one set wins
(Filebeat: the last); `organization.name` is the tenant's name (Filebeat writes
the tenant id there); the common record types get their ECS categories (email,
file, iam, configuration) instead of Filebeat's blanket web/info; and the
name/value lists (`ExtendedProperties`, `Parameters`, `ModifiedProperties`)
stay lists under `o365.audit` rather than being turned into objects.

Normalizing never raises on odd input and writes no nulls outside `o365.audit`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from forwarder.modules.entraid_ecs_values import millisecond_time, parse_time, split_address, text

# Microsoft's AuditLogRecordType enumeration (the common members).
RECORD_TYPE_NAMES: dict[int, str] = {
    1: "ExchangeAdmin", 2: "ExchangeItem", 3: "ExchangeItemGroup", 4: "SharePoint",
    6: "SharePointFileOperation", 7: "OneDrive", 8: "AzureActiveDirectory", 9: "AzureActiveDirectoryAccountLogon",
    10: "DataCenterSecurityCmdlet", 11: "ComplianceDLPSharePoint", 12: "Sway", 13: "ComplianceDLPExchange",
    14: "SharePointSharingOperation", 15: "AzureActiveDirectoryStsLogon", 16: "SkypeForBusinessPSTNUsage",
    17: "SkypeForBusinessUsersBlocked", 18: "SecurityComplianceCenterEOPCmdlet", 19: "ExchangeAggregatedOperation",
    20: "PowerBIAudit", 21: "CRM", 22: "Yammer", 23: "SkypeForBusinessCmdlets", 24: "Discovery",
    25: "MicrosoftTeams", 28: "ThreatIntelligence", 29: "MailSubmission", 30: "MicrosoftFlow", 31: "AeD",
    32: "MicrosoftStream", 33: "ComplianceDLPSharePointClassification", 34: "ThreatFinder", 35: "Project",
    36: "SharePointListOperation", 37: "SharePointCommentOperation", 38: "DataGovernance", 39: "Kaizala",
    40: "SecurityComplianceAlerts", 41: "ThreatIntelligenceUrl", 42: "SecurityComplianceInsights",
    43: "MIPLabel", 44: "WorkplaceAnalytics", 45: "PowerAppsApp", 46: "PowerAppsPlan",
    47: "ThreatIntelligenceAtpContent", 48: "LabelContentExplorer", 49: "TeamsHealthcare",
    50: "ExchangeItemAggregated", 51: "HygieneEvent", 52: "DataInsightsRestApiAudit",
    53: "InformationBarrierPolicyApplication",
    54: "SharePointListItemOperation", 55: "SharePointContentTypeOperation", 56: "SharePointFieldOperation",
    57: "MicrosoftTeamsAdmin", 58: "HRSignal", 59: "MicrosoftTeamsDevice", 60: "MicrosoftTeamsAnalytics",
    61: "InformationWorkerProtection", 62: "Campaign", 63: "DLPEndpoint", 64: "AirInvestigation", 65: "Quarantine",
    66: "MicrosoftForms", 67: "ApplicationAudit", 68: "ComplianceSupervisionExchange",
    69: "CustomerKeyServiceEncryption", 70: "OfficeNative", 71: "MipAutoLabelSharePointItem",
    72: "MipAutoLabelSharePointPolicyLocation", 73: "MicrosoftTeamsShifts", 75: "MipAutoLabelExchangeItem",
    76: "CortanaBriefing", 78: "WDATPAlerts", 82: "SensitivityLabelPolicyMatch", 83: "SensitivityLabelAction",
    84: "SensitivityLabeledFileAction", 85: "AttackSim", 86: "AirManualInvestigation", 87: "SecurityComplianceRBAC",
    88: "UserTraining", 89: "AirAdminActionInvestigation", 90: "MSTIC", 93: "AipDiscover",
    94: "AipSensitivityLabelAction", 95: "AipProtectionAction", 96: "AipFileDeleted", 97: "AipHeartBeat",
    98: "MCASAlerts", 99: "OnPremisesFileShareScannerDlp", 100: "OnPremisesSharePointScannerDlp",
    101: "ExchangeSearch", 102: "SharePointSearch", 103: "PrivacyInsights", 105: "MyAnalyticsSettings",
    106: "SecurityComplianceUserChange", 107: "ComplianceDLPExchangeClassification", 109: "MipExactDataMatch",
    113: "MS365DCustomDetection", 147: "CoreReportingSettings", 148: "ComplianceConnector",
    216: "AzureActiveDirectoryRiskDetection", 261: "CopilotInteraction",
}

_OUTCOMES = {
    "succeeded": "success", "success": "success", "partiallysucceeded": "success", "true": "success",
    "failed": "failure", "failure": "failure", "false": "failure",
}

# (category, type) for whole record types, before any operation-specific table applies.
_RECORD_TYPE_CATEGORIES: dict[str, tuple[list[str], list[str]]] = {
    "ExchangeAdmin": (["configuration"], ["change"]),
    "SecurityComplianceCenterEOPCmdlet": (["configuration"], ["change"]),
    "DataCenterSecurityCmdlet": (["configuration"], ["change"]),
    "SkypeForBusinessCmdlets": (["configuration"], ["change"]),
    "ExchangeItem": (["email"], ["info"]),
    "ExchangeItemGroup": (["email"], ["info"]),
    "ExchangeItemAggregated": (["email"], ["info"]),
    "ThreatIntelligence": (["email"], ["info"]),
    "SharePointFileOperation": (["file"], ["info"]),
    "SharePointSharingOperation": (["file"], ["info"]),
    "AzureActiveDirectory": (["iam"], ["info"]),
}

_EXCHANGE_MAILBOX_TYPES = frozenset({"ExchangeItem", "ExchangeItemGroup", "ExchangeItemAggregated"})
_LOGON_TYPES = frozenset({"AzureActiveDirectoryStsLogon", "AzureActiveDirectoryAccountLogon"})
_DLP_TYPES = frozenset({"ComplianceDLPSharePoint", "ComplianceDLPExchange"})

# Filebeat renames these operations and files them under IAM; `copy` names (record key, ECS path) pairs.
_ACTION_CONVERSIONS: dict[str, dict[str, dict[str, Any]]] = {
    "AzureActiveDirectory": {
        "Add user.": {"action": "added-user-account", "type": ["user", "creation"], "target": "ObjectId"},
        "Update user.": {"action": "modified-user-account", "type": ["user", "change"], "target": "ObjectId"},
        "Delete user.": {"action": "deleted-user-account", "type": ["user", "deletion"], "target": "ObjectId"},
    },
    "MicrosoftTeams": {
        "TeamCreated": {"action": "added-group-account-to", "type": ["group", "creation"], "group": "TeamName"},
        "MemberAdded": {"action": "added-users-to-group", "type": ["group", "change"]},
        "Delete user.": {"action": "deleted-user-account", "type": ["user", "deletion"], "target": "ObjectId"},
    },
}

_SHAREPOINT_FILE_OPERATIONS: dict[str, tuple[str, str]] = {
    "ComplianceSettingChanged": ("configuration", "change"),
    "FileAccessed": ("file", "access"), "FileDownloaded": ("file", "access"),
    "FileDeleted": ("file", "deletion"), "FolderDeleted": ("file", "deletion"),
    "FileModified": ("file", "change"), "FileMoved": ("file", "change"), "FileRenamed": ("file", "change"),
    "FileRestored": ("file", "change"), "FolderModified": ("file", "change"), "FolderMoved": ("file", "change"),
    "FolderRenamed": ("file", "change"), "FolderRestored": ("file", "change"),
    "FileUploaded": ("file", "creation"), "FolderCopied": ("file", "creation"), "FolderCreated": ("file", "creation"),
}

_SEVERITIES = {"informational": 1, "low": 2, "medium": 3, "high": 4}

_ALERT_CATEGORIES = {
    "accessgovernance": "authentication",
    "datagovernance": "file",
    "datalossprevention": "file",
    "threatmanagement": "malware",
}

# Values Microsoft writes into IP fields when there is no address.
_UNSET_ADDRESSES = frozenset({"null", "<null>"})


def normalize(record: dict[str, Any], tenant_name: str | None) -> tuple[dict[str, Any], float | None]:
    """Maps one audit record onto ECS; returns the event fields and `CreationTime` as epoch seconds (or None).

    `tenant_name` is the name the module's tenant list gives the record's
    tenant. The record itself is not modified; `o365.audit` is a shallow copy.
    """
    if type(record) is not dict:
        return {}, None
    fields: dict[str, Any] = {"o365": {"audit": dict(record)}}
    code = record_type_name(record.get("RecordType"))
    action = text(record.get("Operation"))
    _put(fields, "event.kind", "event")
    _put(fields, "event.id", text(record.get("Id")))
    _put(fields, "event.action", action)
    _put(fields, "event.code", code)
    _put(fields, "event.provider", text(record.get("Workload")))
    _put(fields, "event.outcome", outcome(record.get("ResultStatus")))
    category, event_type = _RECORD_TYPE_CATEGORIES.get(code or "", (["web"], ["info"]))
    _put(fields, "event.category", list(category))
    _put(fields, "event.type", list(event_type))
    _put(fields, "user.id", text(record.get("UserId")))
    _put(fields, "organization.id", text(record.get("OrganizationId")))
    _put(fields, "user_agent.original", text(record.get("UserAgent")) or _extended_property(record, "UserAgent"))
    _put(fields, "client.address", _address(record, "ClientIP", "ClientIPAddress", "ActorIpAddress"))

    specific = _WORKLOAD_MAPPERS.get(code or "")
    if specific is not None:
        specific(record, fields)
    conversion = _ACTION_CONVERSIONS.get(code or "", {}).get(action or "")
    if conversion is not None:
        _apply_conversion(record, fields, conversion)

    _put_addresses(fields)
    for prefix in ("user", "user.target", "source.user", "destination.user"):
        _split_email(fields, prefix)
    _put_organization(fields, record, tenant_name)
    _put_related(fields, record)
    timestamp = parse_time(record.get("CreationTime"))
    return fields, None if timestamp is None else millisecond_time(timestamp)


def record_type_name(value: Any) -> str | None:
    """The AuditLogRecordType name of a `RecordType` number; an unknown number as its text; None when absent."""
    if isinstance(value, bool):
        return None
    if type(value) is str and value.strip().isdigit():
        value = int(value)
    if type(value) is int:
        return RECORD_TYPE_NAMES.get(value, str(value))
    return text(value)


def outcome(result_status: Any) -> str | None:
    """`event.outcome` of a `ResultStatus` (any case); None when the record has none."""
    if type(result_status) is bool:
        return "success" if result_status else "failure"
    status = text(result_status)
    if status is None:
        return None
    return _OUTCOMES.get(status.strip().lower(), "unknown")


def _put(fields: dict[str, Any], path: str, value: Any) -> None:
    """Sets a dotted ECS path, creating the objects on the way; a None value is left out."""
    if value is None:
        return
    *parents, leaf = path.split(".")
    target = fields
    for key in parents:
        child = target.get(key)
        if type(child) is not dict:
            child = target[key] = {}
        target = child
    target[leaf] = value


def _get(fields: dict[str, Any], path: str) -> Any:
    value: Any = fields
    for key in path.split("."):
        if type(value) is not dict:
            return None
        value = value.get(key)
    return value


def _obj(value: Any) -> dict[str, Any]:
    return value if type(value) is dict else {}


def _address(record: dict[str, Any], *keys: str) -> str | None:
    """The first of the record's IP fields that holds an address (`<null>` and blanks do not count)."""
    for key in keys:
        value = text(record.get(key))
        if value is not None and value.strip() and value.strip().lower() not in _UNSET_ADDRESSES:
            return value.strip()
    return None


def _extended_property(record: dict[str, Any], name: str) -> str | None:
    properties = record.get("ExtendedProperties")
    if type(properties) is not list:
        return None
    for item in properties:
        if type(item) is dict and item.get("Name") == name:
            return text(item.get("Value"))
    return None


def _exchange_mailbox_fields(record: dict[str, Any], fields: dict[str, Any]) -> None:
    _put(fields, "user.email", text(record.get("MailboxOwnerUPN")))
    _put(fields, "user.full_name", text(record.get("LogonUserDisplayName")))
    _put(fields, "process.name", text(record.get("ClientProcessName")))
    _put(fields, "server.address", _address(record, "OriginatingServer"))


def _exchange_admin_fields(record: dict[str, Any], fields: dict[str, Any]) -> None:
    _put(fields, "server.address", _address(record, "OriginatingServer"))


def _logon_fields(record: dict[str, Any], fields: dict[str, Any]) -> None:
    result = _get(fields, "event.outcome")
    types = ["start"]
    if result in ("success", "failure"):
        types.append(f"authentication_{result}")
    _put(fields, "event.category", ["authentication"])
    _put(fields, "event.type", types)


def _sharepoint_file_fields(record: dict[str, Any], fields: dict[str, Any]) -> None:
    _put(fields, "url.original", text(record.get("ObjectId")))
    _put(fields, "file.directory", text(record.get("SourceRelativeUrl")))
    _put(fields, "file.name", text(record.get("SourceFileName")))
    _put(fields, "file.extension", text(record.get("SourceFileExtension")))
    category_type = _SHAREPOINT_FILE_OPERATIONS.get(text(record.get("Operation")) or "")
    if category_type is not None:
        _put(fields, "event.category", [category_type[0]])
        _put(fields, "event.type", [category_type[1]])


def _dlp_fields(record: dict[str, Any], fields: dict[str, Any]) -> None:
    _put(fields, "event.kind", "alert")
    _put(fields, "event.category", ["file"])
    _put(fields, "event.type", ["access"])
    sharepoint = _obj(record.get("SharePointMetaData"))
    _put(fields, "user.id", text(sharepoint.get("From")))
    _put(fields, "file.name", text(sharepoint.get("FileName")))
    _put(fields, "url.original", text(sharepoint.get("FilePathUrl")))
    _put(fields, "file.inode", text(sharepoint.get("UniqueId")) or text(sharepoint.get("UniqueID")))
    _put(fields, "file.owner", text(sharepoint.get("FileOwner")))
    exchange = _obj(record.get("ExchangeMetaData"))
    _put(fields, "source.user.email", text(exchange.get("From")))
    recipients: list[str] = []
    for key in ("To", "CC", "BCC"):
        value = exchange.get(key)
        recipients.extend(item for item in (value if type(value) is list else [value]) if type(item) is str and item)
    _put(fields, "destination.user.email", _one_or_list(recipients))
    _put(fields, "rule.id", text(record.get("PolicyId")))
    _put(fields, "rule.name", text(record.get("PolicyName")))
    _put_dlp_rules(record, fields)


def _put_dlp_rules(record: dict[str, Any], fields: dict[str, Any]) -> None:
    """Rules matched, the highest severity, and whether access went ahead (nothing blocked it, or it was overridden)."""
    policies = record.get("PolicyDetails")
    if type(policies) is not list:
        return
    ids: list[str] = []
    names: list[str] = []
    severity = -1
    blocked = False
    for policy in policies:
        rules = _obj(policy).get("Rules")
        for rule in rules if type(rules) is list else []:
            rule = _obj(rule)
            rule_id, name = text(rule.get("RuleId")), text(rule.get("RuleName"))
            if rule_id is not None and name is not None:
                ids.append(rule_id)
                names.append(name)
            severity = max(severity, _severity(rule.get("Severity")) or -1)
            actions = rule.get("Actions")
            blocked = blocked or (type(actions) is list and "BlockAccess" in actions)
    _put(fields, "rule.id", _one_or_list(ids))
    _put(fields, "rule.name", _one_or_list(names))
    if severity >= 0:
        _put(fields, "event.severity", severity)
    _put(fields, "event.outcome", "failure" if blocked and not _block_overridden(record) else "success")


def _block_overridden(record: dict[str, Any]) -> bool:
    operation = (text(record.get("Operation")) or "").lower()
    if operation == "dlpruleundo":
        return True
    if operation == "dlpinfo":
        return False
    exception = record.get("ExceptionInfo")
    return exception is not None and exception != ""


def _security_alert_fields(record: dict[str, Any], fields: dict[str, Any]) -> None:
    _put(fields, "event.kind", "alert")
    category = text(record.get("Category"))
    _put(fields, "event.category", [_ALERT_CATEGORIES.get((category or "").lower(), "authentication")])
    _put(fields, "event.type", ["info"])
    _put(fields, "event.severity", _severity(record.get("Severity")))
    _put(fields, "rule.name", text(record.get("Name")))
    _put(fields, "rule.id", text(record.get("PolicyId")))
    _put(fields, "rule.category", category)
    _put(fields, "rule.ruleset", text(record.get("EntityType")))
    entity = text(record.get("AlertEntityId"))
    _put(fields, "rule.description", entity)
    links = record.get("AlertLinks")
    hrefs = [text(_obj(link).get("AlertLinkHref")) for link in links] if type(links) is list else []
    _put(fields, "rule.reference", _one_or_list([href for href in hrefs if href is not None]))
    entity_type = text(record.get("EntityType"))
    if entity_type == "User":
        _put(fields, "user.id", entity)
    elif entity_type in ("Recipients", "Sender"):
        _put(fields, "user.email", entity)


def _severity(value: Any) -> int | None:
    return _SEVERITIES.get(value.lower()) if type(value) is str else None


def _one_or_list(values: list[str]) -> str | list[str] | None:
    if not values:
        return None
    return values[0] if len(values) == 1 else values


def _apply_conversion(record: dict[str, Any], fields: dict[str, Any], conversion: dict[str, Any]) -> None:
    _put(fields, "event.action", conversion["action"])
    _put(fields, "event.category", ["iam"])
    _put(fields, "event.type", list(conversion["type"]))
    if "target" in conversion:
        _put(fields, "user.target.id", text(record.get(conversion["target"])))
    if "group" in conversion:
        _put(fields, "group.name", text(record.get(conversion["group"])))


def _put_addresses(fields: dict[str, Any]) -> None:
    """`client.ip`/`.port`, `source.*`, `server.ip`, `destination.ip` and `network.type` from the addresses found."""
    client_address = _get(fields, "client.address")
    if client_address is not None:
        ip, port = split_address(client_address)
        _put(fields, "client.ip", ip)
        _put(fields, "client.port", port)
        _put(fields, "source.ip", ip)
        _put(fields, "source.port", port)
        if ip is not None:
            _put(fields, "network.type", "ipv6" if ":" in ip else "ipv4")
    server_address = _get(fields, "server.address")
    if server_address is not None:
        ip, _ = split_address(server_address)
        _put(fields, "server.ip", ip)
        _put(fields, "destination.ip", ip)


def _split_email(fields: dict[str, Any], prefix: str) -> None:
    """`<prefix>.email`/`.name`/`.domain` from an id that is an address; an email already set is kept."""
    user_id = _get(fields, f"{prefix}.id")
    if type(user_id) is not str or "@" not in user_id:
        return
    name, _, domain = user_id.partition("@")
    if _get(fields, f"{prefix}.email") is None:
        _put(fields, f"{prefix}.email", user_id)
    _put(fields, f"{prefix}.name", name or None)
    _put(fields, f"{prefix}.domain", domain or None)


def _put_organization(fields: dict[str, Any], record: dict[str, Any], tenant_name: str | None) -> None:
    """Names the tenant in `organization.name` and `host.name`, so a SIEM groups events by tenant, not by collector."""
    organization_id = _get(fields, "organization.id")
    if organization_id is not None:
        _put(fields, "host.id", organization_id.lower())
    name = text(tenant_name) or text(record.get("OrganizationName"))
    _put(fields, "organization.name", name)
    _put(fields, "host.name", name or _get(fields, "user.domain"))


def _put_related(fields: dict[str, Any], record: dict[str, Any]) -> None:
    ips = [ip for ip in (_get(fields, "client.ip"), _get(fields, "server.ip")) if ip is not None]
    users = [user for user in (_get(fields, "user.name"), _get(fields, "user.target.name"), _get(fields, "file.owner"))
             if type(user) is str]
    members = record.get("Members")
    if record_type_name(record.get("RecordType")) == "MicrosoftTeams" and type(members) is list:
        users.extend(upn for upn in (text(_obj(member).get("UPN")) for member in members) if upn is not None)
    _put(fields, "related.ip", list(dict.fromkeys(ips)) or None)
    _put(fields, "related.user", list(dict.fromkeys(users)) or None)


_WORKLOAD_MAPPERS: dict[str, Callable[[dict[str, Any], dict[str, Any]], None]] = {
    "ExchangeAdmin": _exchange_admin_fields,
    **{name: _exchange_mailbox_fields for name in _EXCHANGE_MAILBOX_TYPES},
    **{name: _logon_fields for name in _LOGON_TYPES},
    "SharePointFileOperation": _sharepoint_file_fields,
    **{name: _dlp_fields for name in _DLP_TYPES},
    "SecurityComplianceAlerts": _security_alert_fields,
}
