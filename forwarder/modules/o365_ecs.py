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
from functools import lru_cache
from typing import Any

from forwarder.modules.entraid_ecs_values import millisecond_time, obj, parse_time, split_address, text
from forwarder.modules.o365_ecs_alerts import dlp_fields, put_path, security_alert_fields
from forwarder.modules.o365_record_types import record_type_name

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

# Values Microsoft writes into IP fields when there is no address.
_UNSET_ADDRESSES = frozenset({"null", "<null>"})
# Of these, the first one that holds an address is the client's (Filebeat takes the last).
_CLIENT_ADDRESS_KEYS = ("ClientIP", "ClientIPAddress", "ActorIpAddress")
_SERVER_ADDRESS_KEYS = ("OriginatingServer",)
_SHAREPOINT_FILE_KEYS = (("SourceRelativeUrl", "directory"), ("SourceFileName", "name"),
                         ("SourceFileExtension", "extension"))
_WEB_INFO = (["web"], ["info"])
_RELATED_IPS = (("client", "ip"), ("server", "ip"))


def normalize(record: dict[str, Any], tenant_name: str | None) -> tuple[dict[str, Any], float | None]:
    """Maps one audit record onto ECS; returns the event fields and `CreationTime` as epoch seconds (or None).

    `tenant_name` is the name the module's tenant list gives the record's
    tenant. The record itself is not modified; `o365.audit` is a shallow copy.
    A backfill maps tens of thousands of records a second in a process whose
    every stage shares one interpreter lock, so the fields every record gets
    are written into their objects directly; the dotted-path `put_path` is kept
    for the rarer record types.
    """
    if type(record) is not dict:
        return {}, None
    get = record.get
    code = record_type_name(get("RecordType"))
    action = text(get("Operation"))
    event: dict[str, Any] = {"kind": "event"}
    fields: dict[str, Any] = {"o365": {"audit": dict(record)}, "event": event}
    value = text(get("Id"))
    if value is not None:
        event["id"] = value
    if action is not None:
        event["action"] = action
    if code is not None:
        event["code"] = code
    value = text(get("Workload"))
    if value is not None:
        event["provider"] = value
    value = outcome(get("ResultStatus"))
    if value is not None:
        event["outcome"] = value
    category, event_type = _RECORD_TYPE_CATEGORIES.get(code or "", _WEB_INFO)
    event["category"] = list(category)
    event["type"] = list(event_type)
    value = text(get("UserId"))
    if value is not None:
        fields["user"] = {"id": value}
    organization_id = text(get("OrganizationId"))
    if organization_id is not None:
        fields["organization"] = {"id": organization_id}
    value = text(get("UserAgent")) or _extended_property(record, "UserAgent")
    if value is not None:
        fields["user_agent"] = {"original": value}
    client_address = _address(record, _CLIENT_ADDRESS_KEYS)
    if client_address is not None:
        fields["client"] = {"address": client_address}

    specific = _WORKLOAD_MAPPERS.get(code or "")
    if specific is not None:
        specific(record, fields)
    conversion = _ACTION_CONVERSIONS.get(code or "", {}).get(action or "")
    if conversion is not None:
        _apply_conversion(record, fields, conversion)

    _put_addresses(fields, client_address)
    _split_emails(fields)
    _put_organization(fields, record, tenant_name, organization_id)
    _put_related(fields, record, code)
    created = get("CreationTime")
    return fields, _creation_time(created) if type(created) is str else _timestamp(created)


@lru_cache(maxsize=1024)
def _creation_time(value: str) -> float | None:
    """Cached: `CreationTime` has whole seconds, so neighbouring records of a busy tenant share it."""
    return _timestamp(value)


def _timestamp(value: Any) -> float | None:
    timestamp = parse_time(value)
    return None if timestamp is None else millisecond_time(timestamp)


def outcome(result_status: Any) -> str | None:
    """`event.outcome` of a `ResultStatus` (any case); None when the record has none."""
    if type(result_status) is bool:
        return "success" if result_status else "failure"
    status = text(result_status)
    if status is None:
        return None
    return _OUTCOMES.get(status.strip().lower(), "unknown")


def _child(fields: dict[str, Any], key: str) -> dict[str, Any]:
    """The object at `key`, created (or replacing a non-object) when missing: `put_path` for a two-part path."""
    child = fields.get(key)
    if type(child) is not dict:
        child = fields[key] = {}
    return child


def _address(record: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    """The first of the record's IP fields that holds an address (`<null>` and blanks do not count)."""
    for key in keys:
        value = text(record.get(key))
        if value is not None:
            value = value.strip()
            if value and value.lower() not in _UNSET_ADDRESSES:
                return value
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
    get = record.get
    value = text(get("MailboxOwnerUPN"))
    if value is not None:
        _child(fields, "user")["email"] = value
    value = text(get("LogonUserDisplayName"))
    if value is not None:
        _child(fields, "user")["full_name"] = value
    value = text(get("ClientProcessName"))
    if value is not None:
        _child(fields, "process")["name"] = value
    _exchange_admin_fields(record, fields)


def _exchange_admin_fields(record: dict[str, Any], fields: dict[str, Any]) -> None:
    value = _address(record, _SERVER_ADDRESS_KEYS)
    if value is not None:
        _child(fields, "server")["address"] = value


def _logon_fields(record: dict[str, Any], fields: dict[str, Any]) -> None:
    event = fields["event"]
    result = event.get("outcome")
    types = ["start"]
    if result in ("success", "failure"):
        types.append(f"authentication_{result}")
    event["category"] = ["authentication"]
    event["type"] = types


def _sharepoint_file_fields(record: dict[str, Any], fields: dict[str, Any]) -> None:
    get = record.get
    value = text(get("ObjectId"))
    if value is not None:
        _child(fields, "url")["original"] = value
    for key, ecs_key in _SHAREPOINT_FILE_KEYS:
        value = text(get(key))
        if value is not None:
            _child(fields, "file")[ecs_key] = value
    category_type = _SHAREPOINT_FILE_OPERATIONS.get(text(get("Operation")) or "")
    if category_type is not None:
        event = fields["event"]
        event["category"] = [category_type[0]]
        event["type"] = [category_type[1]]


def _apply_conversion(record: dict[str, Any], fields: dict[str, Any], conversion: dict[str, Any]) -> None:
    put_path(fields, "event.action", conversion["action"])
    put_path(fields, "event.category", ["iam"])
    put_path(fields, "event.type", list(conversion["type"]))
    if "target" in conversion:
        put_path(fields, "user.target.id", text(record.get(conversion["target"])))
    if "group" in conversion:
        put_path(fields, "group.name", text(record.get(conversion["group"])))


def _put_addresses(fields: dict[str, Any], client_address: str | None) -> None:
    """`client.ip`/`.port`, `source.*`, `server.ip`, `destination.ip` and `network.type` from the addresses found."""
    if client_address is not None:
        ip, port = split_address(client_address)
        if ip is not None:
            client = fields["client"]
            client["ip"] = ip
            if port is not None:
                client["port"] = port
            source = _child(fields, "source")
            source["ip"] = ip
            if port is not None:
                source["port"] = port
            _child(fields, "network")["type"] = "ipv6" if ":" in ip else "ipv4"
    server = fields.get("server")
    server_address = server.get("address") if type(server) is dict else None
    if server_address is not None:
        ip, _ = split_address(server_address)
        if ip is not None:
            server["ip"] = ip
            _child(fields, "destination")["ip"] = ip


def _split_emails(fields: dict[str, Any]) -> None:
    """`user`, `user.target`, `source.user` and `destination.user` get their address split where the id is one."""
    user = fields.get("user")
    if type(user) is dict:
        _split_email(user)
        target = user.get("target")
        if type(target) is dict:
            _split_email(target)
    for side in ("source", "destination"):
        holder = fields.get(side)
        if type(holder) is dict:
            inner = holder.get("user")
            if type(inner) is dict:
                _split_email(inner)


def _split_email(user: dict[str, Any]) -> None:
    """`email`/`name`/`domain` from an id that is an address; an email already set is kept."""
    user_id = user.get("id")
    if type(user_id) is not str or "@" not in user_id:
        return
    name, _, domain = user_id.partition("@")
    if user.get("email") is None:
        user["email"] = user_id
    if name:
        user["name"] = name
    if domain:
        user["domain"] = domain


def _put_organization(fields: dict[str, Any], record: dict[str, Any], tenant_name: str | None,
                      organization_id: str | None) -> None:
    """Names the tenant in `organization.name` and `host.name`, so a SIEM groups events by tenant, not by collector."""
    if organization_id is not None:
        _child(fields, "host")["id"] = organization_id.lower()
    name = text(tenant_name) or text(record.get("OrganizationName"))
    if name is not None:
        _child(fields, "organization")["name"] = name
    else:
        user = fields.get("user")
        name = user.get("domain") if type(user) is dict else None
    if name is not None:
        _child(fields, "host")["name"] = name


def _put_related(fields: dict[str, Any], record: dict[str, Any], code: str | None) -> None:
    ips = []
    users = []
    for group, key in _RELATED_IPS:
        holder = fields.get(group)
        if type(holder) is dict and holder.get(key) is not None:
            ips.append(holder[key])
    user = fields.get("user")
    if type(user) is dict:
        if type(user.get("name")) is str:
            users.append(user["name"])
        target = user.get("target")
        if type(target) is dict and type(target.get("name")) is str:
            users.append(target["name"])
    file = fields.get("file")
    if type(file) is dict and type(file.get("owner")) is str:
        users.append(file["owner"])
    members = record.get("Members")
    if code == "MicrosoftTeams" and type(members) is list:
        users.extend(upn for upn in (text(obj(member).get("UPN")) for member in members) if upn is not None)
    if ips or users:
        related = _child(fields, "related")
        if ips:
            related["ip"] = list(dict.fromkeys(ips))
        if users:
            related["user"] = list(dict.fromkeys(users))


_WORKLOAD_MAPPERS: dict[str, Callable[[dict[str, Any], dict[str, Any]], None]] = {
    "ExchangeAdmin": _exchange_admin_fields,
    **{name: _exchange_mailbox_fields for name in _EXCHANGE_MAILBOX_TYPES},
    **{name: _logon_fields for name in _LOGON_TYPES},
    "SharePointFileOperation": _sharepoint_file_fields,
    **{name: dlp_fields for name in _DLP_TYPES},
    "SecurityComplianceAlerts": security_alert_fields,
}
