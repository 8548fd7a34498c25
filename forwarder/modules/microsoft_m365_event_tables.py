"""The ECS fields of each Advanced Hunting table family, as Elastic's `m365_defender` `event` pipelines map them.

The family is read from the table name as Elastic's pipeline dispatches it:
`Alert*` → alert, `Device*` → device, `Email*` and `UrlClickEvents` → e-mail,
`Identity*` and `CloudAppEvents` → identity. Each mapper adds to the generic
fields (microsoft_m365_event_ecs) from the row's columns and writes no nulls.
Most of it is column → ECS path tables (`COLUMNS`), copied by one loop: a
device row has some seventy columns and the streams are busy.

Device tables: `host.id`/`host.name` ← `DeviceId`/`DeviceName`, `event.action`
← `ActionType` (lower case), `process.*` ← the row's process (`ProcessId`,
`ProcessCommandLine`, …; for `DeviceProcessEvents` also its image `FileName`,
`FolderPath`, hashes), `process.parent.*` ← `InitiatingProcess*`, `file.*` ←
`FileName`, `FolderPath`, `SHA1`/`SHA256`/`MD5`, `FileSize` (other tables),
`source.*` ← `LocalIP`/`LocalPort` and `destination.*` ← `RemoteIP`/`RemotePort`
(network tables; logons: `source.ip` ← `RemoteIP`), `registry.*` ←
`RegistryKey`, `RegistryValueName`, `RegistryValueData`, `RegistryValueType`,
`user.*` ← `AccountName`, `AccountDomain`, `AccountObjectId`/`AccountSid`,
`AccountUpn`, `event.category` per table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from forwarder.modules.entraid_ecs_values import text

# (ECS fields to add to, row, table) → the columns it mapped onto ECS.
FamilyMapper = Callable[[dict[str, Any], dict[str, Any], str], set[str]]
Convert = Callable[[Any], Any]


def _text(value: Any) -> str | None:
    return value if type(value) is str else text(value)


def _number(value: Any) -> int | None:
    """Process ids, ports and sizes: Microsoft writes numbers, sometimes as text."""
    if type(value) is int:
        return value
    if type(value) is str and value.isdigit():
        return int(value)
    return None


def _lower(value: Any) -> str | None:
    value = _text(value)
    return value.lower() if value else None


def _one(value: Any) -> list[str] | None:
    value = _text(value)
    return [value] if value else None


Columns = tuple[tuple[str, tuple[str, ...], str, Convert | None], ...]


def _columns(*rows: tuple[str, str, Convert]) -> Columns:
    """(column, parent path, leaf, converter) rows from (column, dotted ECS path, converter); text passes as is."""
    return tuple((column, tuple(path.split(".")[:-1]), path.rsplit(".", 1)[-1], None if convert is _text else convert)
                 for column, path, convert in rows)


def _copy(fields: dict[str, Any], row: dict[str, Any], columns: Columns, used: set[str]) -> None:
    """Each present column's converted value at its path (a path already set is kept); adds the columns to `used`."""
    for column, parents, leaf, convert in columns:
        value = row.get(column)
        if value is None or value == "":
            continue
        if convert is not None or type(value) is not str:
            value = (convert or text)(value)
            if value is None:
                continue
        target = fields
        for name in parents:
            inner = target.get(name)
            if inner is None:
                inner = target[name] = {}
            target = inner
        if leaf not in target:
            target[leaf] = value
            used.add(column)


def _hashes(prefix: str, column_prefix: str = "") -> tuple[tuple[str, str, Convert], ...]:
    return tuple((f"{column_prefix}{column}", f"{prefix}.hash.{name}", _text)
                 for column, name in (("SHA1", "sha1"), ("SHA256", "sha256"), ("MD5", "md5")))


_USER = (
    ("AccountName", "user.name", _text), ("AccountDomain", "user.domain", _text),
    ("AccountObjectId", "user.id", _text), ("AccountSid", "user.id", _text), ("AccountUpn", "user.email", _text),
)
_DEVICE = _columns(
    ("DeviceId", "host.id", _text), ("DeviceName", "host.name", _text), ("ActionType", "event.action", _lower),
    *_USER,
    ("ProcessId", "process.pid", _number), ("ProcessCommandLine", "process.command_line", _text),
    ("ProcessCreationTime", "process.start", _text),
    ("InitiatingProcessFileName", "process.parent.name", _text),
    ("InitiatingProcessFolderPath", "process.parent.executable", _text),
    ("InitiatingProcessId", "process.parent.pid", _number),
    ("InitiatingProcessCommandLine", "process.parent.command_line", _text),
    ("InitiatingProcessCreationTime", "process.parent.start", _text),
    *_hashes("process.parent", "InitiatingProcess"),
)
_PROCESS_IMAGE = _columns(
    ("FileName", "process.name", _text), ("FolderPath", "process.executable", _text), *_hashes("process"),
)
_FILE = _columns(
    ("FileName", "file.name", _text), ("FolderPath", "file.path", _text), ("FileSize", "file.size", _number),
    *_hashes("file"),
)
_NETWORK = _columns(
    ("LocalIP", "source.ip", _text), ("LocalPort", "source.port", _number),
    ("RemoteIP", "destination.ip", _text), ("RemotePort", "destination.port", _number),
    ("RemoteUrl", "destination.domain", _text), ("Protocol", "network.transport", _lower),
)
_LOGON_SOURCE = _columns(("RemoteIP", "source.ip", _text), ("RemotePort", "source.port", _number))
_EMAIL = _columns(
    ("ActionType", "event.action", _lower), ("DeliveryAction", "event.action", _lower),
    ("InternetMessageId", "email.message_id", _text), ("Subject", "email.subject", _text),
    ("EmailDirection", "email.direction", _text), ("SenderFromAddress", "email.from.address", _one),
    ("SenderMailFromAddress", "email.sender.address", _text), ("RecipientEmailAddress", "email.to.address", _one),
    ("Url", "url.original", _text), ("UrlDomain", "url.domain", _text),
    ("SenderIPv4", "source.ip", _text), ("SenderIPv6", "source.ip", _text), ("IPAddress", "source.ip", _text),
    ("AccountUpn", "user.email", _text), ("RecipientEmailAddress", "user.email", _text),
)
_ATTACHMENT = _columns(
    ("FileName", "file.name", _text), ("FileType", "file.mime_type", _text), ("FileSize", "file.size", _number),
    *_hashes("file"),
)
_IDENTITY = _columns(
    ("ActionType", "event.action", _lower), *_USER,
    ("IPAddress", "source.ip", _text), ("Port", "source.port", _number),
    ("CountryCode", "source.geo.country_iso_code", _text), ("City", "source.geo.city_name", _text),
    ("DestinationIPAddress", "destination.ip", _text), ("DestinationPort", "destination.port", _number),
    ("DeviceName", "host.name", _text), ("UserAgent", "user_agent.original", _text),
    ("Protocol", "network.protocol", _lower),
)
_ALERT = _columns(
    ("AlertId", "event.id", _text), ("ServiceSource", "event.provider", _text), ("Title", "rule.name", _text),
    ("Category", "threat.tactic.name", _one), ("DeviceId", "host.id", _text), ("DeviceName", "host.name", _text),
    *_USER, ("FileName", "file.name", _text), ("FolderPath", "file.path", _text), *_hashes("file"),
    ("RemoteUrl", "url.original", _text),
)
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
_IDENTITY_CATEGORIES = {"IdentityLogonEvents": ["authentication"], "IdentityDirectoryEvents": ["iam"]}
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


def _no_fields(fields: dict[str, Any], row: dict[str, Any], table: str) -> set[str]:
    return set()


def _put_related(fields: dict[str, Any], hashes: tuple[str, ...] = ()) -> None:
    """`related.ip`, `related.user`, `related.hosts`, `related.hash` from what the mapping placed."""
    related: dict[str, list[Any]] = {}
    ips = [ip for side in ("source", "destination") if (ip := fields.get(side, {}).get("ip")) is not None]
    if ips:
        related["ip"] = list(dict.fromkeys(ips))
    user = fields.get("user", {}).get("name")
    if user is not None:
        related["user"] = [user]
    host = fields.get("host", {}).get("name")
    if host is not None:
        related["hosts"] = [host]
    if hashes:
        related["hash"] = list(dict.fromkeys(hashes))
    if related:
        fields["related"] = related


def device_fields(fields: dict[str, Any], row: dict[str, Any], table: str) -> set[str]:
    used: set[str] = set()
    category = _DEVICE_CATEGORIES.get(table)
    if category is not None:
        fields["event"]["category"] = category
    _copy(fields, row, _DEVICE, used)
    _copy(fields, row, _PROCESS_IMAGE if table == "DeviceProcessEvents" else _FILE, used)
    if table == "DeviceLogonEvents":
        _copy(fields, row, _LOGON_SOURCE, used)
    elif "RemoteIP" in row or "LocalIP" in row:
        _copy(fields, row, _NETWORK, used)
    registry = _registry(row)
    if registry is not None:
        fields["registry"] = registry
        used.update(("RegistryKey", "RegistryValueName", "RegistryValueData", "RegistryValueType"))
    hashes = tuple(value for column in ("SHA1", "SHA256", "MD5") if type(value := row.get(column)) is str and value)
    _put_related(fields, hashes)
    return used


def _registry(row: dict[str, Any]) -> dict[str, Any] | None:
    key = _text(row.get("RegistryKey"))
    if not key:
        return None
    registry: dict[str, Any] = {"key": key}
    hive, _, rest = key.partition("\\")
    if rest:
        registry["hive"] = hive
    value_name = _text(row.get("RegistryValueName"))
    registry["path"] = f"{key}\\{value_name}" if value_name else key
    if value_name:
        registry["value"] = value_name
    data = _text(row.get("RegistryValueData"))
    if data:
        registry["data"] = {"strings": [data]}
    data_type = _text(row.get("RegistryValueType"))
    if data_type:
        registry.setdefault("data", {})["type"] = data_type
    return registry


def email_fields(fields: dict[str, Any], row: dict[str, Any], table: str) -> set[str]:
    used: set[str] = set()
    fields["event"]["category"] = ["email"]
    _copy(fields, row, _EMAIL, used)
    if table == "EmailAttachmentInfo" and _text(row.get("FileName")):
        attachment: dict[str, Any] = {}
        _copy(attachment, row, _ATTACHMENT, used)
        fields.setdefault("email", {})["attachments"] = [attachment]
    _put_related(fields)
    return used


def identity_fields(fields: dict[str, Any], row: dict[str, Any], table: str) -> set[str]:
    used: set[str] = set()
    category = _IDENTITY_CATEGORIES.get(table)
    if category is not None:
        fields["event"]["category"] = category
    _copy(fields, row, _IDENTITY, used)
    _put_related(fields)
    return used


def alert_fields(fields: dict[str, Any], row: dict[str, Any], table: str) -> set[str]:
    used: set[str] = set()
    fields["event"]["kind"] = "alert"
    severity = _SEVERITIES.get((_text(row.get("Severity")) or "").lower())
    if severity is not None:
        fields["event"]["severity"] = severity
    _copy(fields, row, _ALERT, used)
    remote_ip = _text(row.get("RemoteIP"))
    if remote_ip:
        fields["related"] = {"ip": [remote_ip]}
    return used
