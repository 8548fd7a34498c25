"""The ECS fields of each Advanced Hunting table family, as Elastic's `m365_defender` `event` pipelines map them.

The family is read from the table name as Elastic's pipeline dispatches it:
`Alert*` → alert, `Device*` → device, `Email*` and `UrlClickEvents` → e-mail,
`Identity*` and `CloudAppEvents` → identity. Each mapper adds to the generic
fields (microsoft_m365_event_ecs) from the row's columns and writes no nulls.

Device tables: `host.id`/`host.name` ← `DeviceId`/`DeviceName`, `event.action`
← `ActionType` (lower case), `process.*` ← the row's process (`ProcessId`,
`ProcessCommandLine`, …; for `DeviceProcessEvents` also its image `FileName`,
`FolderPath`, hashes), `process.parent.*` ← `InitiatingProcess*`, `file.*` ←
`FileName`, `FolderPath`, `SHA1`/`SHA256`/`MD5`, `FileSize` (other tables),
`source.*` ← `LocalIP`/`LocalPort` and `destination.*` ← `RemoteIP`/`RemotePort`
(network tables; logons: `source.ip` ← `RemoteIP`), `registry.*` ←
`RegistryKey`, `RegistryValueName`, `RegistryValueData`, `RegistryValueType`,
`user.*` ← `AccountName`, `AccountDomain`, `AccountSid`, `event.category` per
table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from forwarder.modules.entraid_ecs_values import text

FamilyMapper = Callable[[dict[str, Any], dict[str, Any], str], None]

# Device table → ECS event.category, as Elastic's device pipeline sets it.
_DEVICE_CATEGORIES = {
    "DeviceLogonEvents": ["authentication"],
    "DeviceProcessEvents": ["process"],
    "DeviceNetworkEvents": ["network"],
    "DeviceRegistryEvents": ["registry"],
    "DeviceImageLoadEvents": ["library"],
    "DeviceFileEvents": ["file"],
    "DeviceFileCertificateInfo": ["file"],
}
_HASHES = (("SHA1", "sha1"), ("SHA256", "sha256"), ("MD5", "md5"))
_SEVERITIES = {"informational": 1, "low": 2, "medium": 3, "high": 4}


def family_mapper(table: str) -> FamilyMapper:
    """The mapper of a table's family; tables of no known family get none (the generic fields only)."""
    if table.startswith("Alert"):
        return alert_fields
    if table.startswith("Device"):
        return device_fields
    if table.startswith("Email") or table == "UrlClickEvents":
        return email_fields
    if table.startswith("Identity") or table == "CloudAppEvents":
        return identity_fields
    return _no_fields


def _no_fields(fields: dict[str, Any], row: dict[str, Any], table: str) -> None:
    return None


def _put(target: dict[str, Any], path: str, value: Any) -> None:
    """Sets a dotted path when the value is present (not None, not empty text)."""
    if value is None or value == "":
        return
    *parents, leaf = path.split(".")
    for name in parents:
        target = target.setdefault(name, {})
    target[leaf] = value


def _number(value: Any) -> int | None:
    """Process ids and ports: Microsoft writes numbers, sometimes as text."""
    if type(value) is int:
        return value
    if type(value) is str and value.isdigit():
        return int(value)
    return None


def _add_related(fields: dict[str, Any], kind: str, value: Any) -> None:
    if value is None or value == "":
        return
    values = fields.setdefault("related", {}).setdefault(kind, [])
    if value not in values:
        values.append(value)


def _put_action(fields: dict[str, Any], row: dict[str, Any]) -> None:
    action = text(row.get("ActionType"))
    if action is not None:
        fields["event"]["action"] = action.lower()


def _put_user(fields: dict[str, Any], row: dict[str, Any]) -> None:
    _put(fields, "user.name", text(row.get("AccountName")))
    _put(fields, "user.domain", text(row.get("AccountDomain")))
    _put(fields, "user.id", text(row.get("AccountObjectId")) or text(row.get("AccountSid")))
    _put(fields, "user.email", text(row.get("AccountUpn")))
    _add_related(fields, "user", fields.get("user", {}).get("name"))


def _put_hashes(target: dict[str, Any], prefix: str, row: dict[str, Any], column_prefix: str = "") -> None:
    for column, name in _HASHES:
        value = text(row.get(column_prefix + column))
        _put(target, f"{prefix}.hash.{name}", value)


def device_fields(fields: dict[str, Any], row: dict[str, Any], table: str) -> None:
    _put(fields, "host.id", text(row.get("DeviceId")))
    _put(fields, "host.name", text(row.get("DeviceName")))
    _add_related(fields, "hosts", fields.get("host", {}).get("name"))
    _put_action(fields, row)
    category = _DEVICE_CATEGORIES.get(table)
    if category is not None:
        fields["event"]["category"] = category
    _put_user(fields, row)
    _put(fields, "process.pid", _number(row.get("ProcessId")))
    _put(fields, "process.command_line", text(row.get("ProcessCommandLine")))
    _put(fields, "process.start", text(row.get("ProcessCreationTime")))
    if table == "DeviceProcessEvents":
        _put(fields, "process.name", text(row.get("FileName")))
        _put(fields, "process.executable", text(row.get("FolderPath")))
        _put_hashes(fields, "process", row)
    else:
        _put(fields, "file.name", text(row.get("FileName")))
        _put(fields, "file.path", text(row.get("FolderPath")))
        _put(fields, "file.size", _number(row.get("FileSize")))
        _put_hashes(fields, "file", row)
    _put(fields, "process.parent.name", text(row.get("InitiatingProcessFileName")))
    _put(fields, "process.parent.executable", text(row.get("InitiatingProcessFolderPath")))
    _put(fields, "process.parent.pid", _number(row.get("InitiatingProcessId")))
    _put(fields, "process.parent.command_line", text(row.get("InitiatingProcessCommandLine")))
    _put(fields, "process.parent.start", text(row.get("InitiatingProcessCreationTime")))
    _put_hashes(fields, "process.parent", row, "InitiatingProcess")
    _put_endpoints(fields, row, table)
    _put_registry(fields, row)
    for column, _ in _HASHES:
        _add_related(fields, "hash", text(row.get(column)))


def _put_endpoints(fields: dict[str, Any], row: dict[str, Any], table: str) -> None:
    if table == "DeviceLogonEvents":
        _put(fields, "source.ip", text(row.get("RemoteIP")))
        _put(fields, "source.port", _number(row.get("RemotePort")))
    elif "RemoteIP" in row or "LocalIP" in row:
        _put(fields, "source.ip", text(row.get("LocalIP")))
        _put(fields, "source.port", _number(row.get("LocalPort")))
        _put(fields, "destination.ip", text(row.get("RemoteIP")))
        _put(fields, "destination.port", _number(row.get("RemotePort")))
        _put(fields, "destination.domain", text(row.get("RemoteUrl")))
        protocol = text(row.get("Protocol"))
        if protocol is not None:
            fields.setdefault("network", {})["transport"] = protocol.lower()
    for side in ("source", "destination"):
        _add_related(fields, "ip", fields.get(side, {}).get("ip"))


def _put_registry(fields: dict[str, Any], row: dict[str, Any]) -> None:
    key = text(row.get("RegistryKey"))
    if key is None:
        return
    registry: dict[str, Any] = {"key": key}
    hive, _, rest = key.partition("\\")
    if rest:
        registry["hive"] = hive
    value_name = text(row.get("RegistryValueName"))
    if value_name is not None:
        registry["value"] = value_name
        registry["path"] = f"{key}\\{value_name}"
    else:
        registry["path"] = key
    data = text(row.get("RegistryValueData"))
    if data is not None:
        registry["data"] = {"strings": [data]}
    data_type = text(row.get("RegistryValueType"))
    if data_type is not None:
        registry.setdefault("data", {})["type"] = data_type
    fields["registry"] = registry


def email_fields(fields: dict[str, Any], row: dict[str, Any], table: str) -> None:
    fields["event"]["category"] = ["email"]
    _put_action(fields, row)
    if "action" not in fields["event"]:
        _put(fields, "event.action", text(row.get("DeliveryAction")))
    _put(fields, "email.message_id", text(row.get("InternetMessageId")))
    _put(fields, "email.subject", text(row.get("Subject")))
    _put(fields, "email.direction", text(row.get("EmailDirection")))
    _put(fields, "email.from.address", [a] if (a := text(row.get("SenderFromAddress"))) else None)
    _put(fields, "email.sender.address", text(row.get("SenderMailFromAddress")))
    _put(fields, "email.to.address", [a] if (a := text(row.get("RecipientEmailAddress"))) else None)
    name = text(row.get("FileName"))
    if name is not None and table == "EmailAttachmentInfo":
        attachment: dict[str, Any] = {"file": {"name": name}}
        _put(attachment, "file.mime_type", text(row.get("FileType")))
        _put(attachment, "file.size", _number(row.get("FileSize")))
        _put_hashes(attachment, "file", row)
        fields.setdefault("email", {})["attachments"] = [attachment]
    _put(fields, "url.original", text(row.get("Url")))
    _put(fields, "url.domain", text(row.get("UrlDomain")))
    _put(fields, "source.ip", text(row.get("SenderIPv4")) or text(row.get("SenderIPv6")) or text(row.get("IPAddress")))
    _put(fields, "user.email", text(row.get("AccountUpn")) or text(row.get("RecipientEmailAddress")))
    _add_related(fields, "ip", fields.get("source", {}).get("ip"))


def identity_fields(fields: dict[str, Any], row: dict[str, Any], table: str) -> None:
    if table == "IdentityLogonEvents":
        fields["event"]["category"] = ["authentication"]
    elif table == "IdentityDirectoryEvents":
        fields["event"]["category"] = ["iam"]
    _put_action(fields, row)
    _put_user(fields, row)
    _put(fields, "source.ip", text(row.get("IPAddress")))
    _put(fields, "source.port", _number(row.get("Port")))
    _put(fields, "source.geo.country_iso_code", text(row.get("CountryCode")))
    _put(fields, "source.geo.city_name", text(row.get("City")))
    _put(fields, "destination.ip", text(row.get("DestinationIPAddress")))
    _put(fields, "destination.port", _number(row.get("DestinationPort")))
    _put(fields, "host.name", text(row.get("DeviceName")))
    _put(fields, "user_agent.original", text(row.get("UserAgent")))
    _put(fields, "network.protocol", (text(row.get("Protocol")) or "").lower() or None)
    for side in ("source", "destination"):
        _add_related(fields, "ip", fields.get(side, {}).get("ip"))


def alert_fields(fields: dict[str, Any], row: dict[str, Any], table: str) -> None:
    fields["event"]["kind"] = "alert"
    _put(fields, "event.id", text(row.get("AlertId")))
    _put(fields, "event.provider", text(row.get("ServiceSource")))
    _put(fields, "rule.name", text(row.get("Title")))
    severity = _SEVERITIES.get((text(row.get("Severity")) or "").lower())
    _put(fields, "event.severity", severity)
    _put(fields, "threat.tactic.name", [c] if (c := text(row.get("Category"))) else None)
    _put(fields, "host.id", text(row.get("DeviceId")))
    _put(fields, "host.name", text(row.get("DeviceName")))
    _put_user(fields, row)
    _put(fields, "file.name", text(row.get("FileName")))
    _put(fields, "file.path", text(row.get("FolderPath")))
    _put_hashes(fields, "file", row)
    _put(fields, "url.original", text(row.get("RemoteUrl")))
    _add_related(fields, "ip", text(row.get("RemoteIP")))
