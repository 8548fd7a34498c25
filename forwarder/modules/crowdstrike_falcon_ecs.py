"""ECS for one CrowdStrike Falcon SIEM Connector event, as Elastic's `crowdstrike.falcon` pipeline maps it.

An event is `{"metadata": {customerIDString, offset, eventType,
eventCreationTime, …}, "event": {…}}`. Every event gets `@timestamp` from
`eventCreationTime`, `event.outcome` from `Success`, the user and host it
names, and `related.*`; the event types Elastic maps (detections, incidents,
the two audit streams, remote response sessions, firewall matches) get their
own fields on top. Fields moved to ECS leave `crowdstrike.event`, the rest
stays there; empty values (`""`, `-`, `N/A`, `NA`, `0` in `event`) are dropped
as Elastic drops them. Epoch times are seconds or milliseconds, told apart by
magnitude (the connector writes both), and are written back as ISO-8601.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from forwarder.pipeline.event import format_timestamp

# A count of seconds this large is a date after year 5138: the value is in milliseconds.
MILLISECONDS_FROM = 100_000_000_000
EPOCH_FIELDS = ("ProcessStartTime", "ProcessEndTime", "IncidentStartTime", "IncidentEndTime", "StartTimestamp",
                "EndTimestamp", "UTCTimestamp")
EMPTY_VALUES = ("", "-", "N/A", "NA")
AUTHENTICATION_OPERATIONS = ("twoFactorAuthenticate", "userAuthenticate")
USER_CHANGE_OPERATIONS = ("activateUser", "changePassword", "confirmResetPassword", "deactivateUser",
                          "grantUserRoles", "grantCustomerSubscriptions", "revokeUserRoles",
                          "revokeCustomerSubscriptions", "updateUser", "updateUserRoles")


@dataclass
class FalconEvent:
    """The mapped event: ECS fields (with `crowdstrike`), `@timestamp` and the replay-stable id."""

    fields: dict[str, Any]
    timestamp: float | None
    event_id: str | None


def epoch_seconds(value: Any) -> float | None:
    """Seconds since the epoch from a count of seconds or milliseconds (a number or digits)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value) if value.strip() else None
        except ValueError:
            return None
    if not isinstance(value, int | float) or value <= 0:
        return None
    return value / 1000 if value >= MILLISECONDS_FROM else float(value)


def map_falcon(record: Any) -> FalconEvent:
    """Maps one decoded connector event; raises ValueError for one that is not an event at all."""
    if not isinstance(record, dict) or not isinstance(record.get("metadata"), dict):
        raise ValueError("not a Falcon SIEM Connector event: no `metadata` object")
    source = record.get("event", {})
    if not isinstance(source, dict):
        raise ValueError(f"`event` is a {type(source).__name__}, not an object")
    metadata = {k: v for k, v in record["metadata"].items() if not _empty(v)}
    event = {k: v for k, v in source.items() if not _empty(v) and (v != 0 or isinstance(v, bool))}
    event_type = str(metadata.get("eventType", ""))
    created = epoch_seconds(metadata.get("eventCreationTime"))
    if created is not None:
        metadata["eventCreationTime"] = format_timestamp(created)
    for name in EPOCH_FIELDS:
        seconds = epoch_seconds(event.get(name))
        if seconds is not None:
            event[name] = format_timestamp(seconds)
    fields: dict[str, Any] = {"event": {"kind": "event"}}
    if isinstance(event.get("Success"), bool):
        fields["event"]["outcome"] = "success" if event["Success"] else "failure"
    mapper = _mapper_for(event_type)
    mapper(event, fields)
    _generic(event, fields)
    _put(fields, "crowdstrike", {"metadata": metadata, "event": event})
    _related(fields)
    return FalconEvent(fields, created, _event_id(metadata))


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value in EMPTY_VALUES)


def _event_id(metadata: dict[str, Any]) -> str | None:
    customer, offset = metadata.get("customerIDString"), metadata.get("offset")
    if customer is None or offset is None or isinstance(offset, bool):
        return None
    return f"{customer}-{offset}"


def _mapper_for(event_type: str) -> Callable[[dict[str, Any], dict[str, Any]], None]:
    name = event_type.lower()
    if name in _MAPPERS:
        return _MAPPERS[name]
    if name.endswith("detectionsummaryevent"):
        return _detection
    return lambda event, fields: None


# ----- helpers ----------------------------------------------------------------


def _put(fields: dict[str, Any], path: str, value: Any) -> None:
    """Sets a dotted path unless the value is empty."""
    if value is None or value == "" or value == []:
        return
    *parents, last = path.split(".")
    node = fields
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


def _move(event: dict[str, Any], key: str, fields: dict[str, Any], path: str) -> None:
    """Moves `crowdstrike.event.<key>` to the ECS field `path` (when the ECS field is not set yet)."""
    if key in event and not _has(fields, path):
        _put(fields, path, event.pop(key))


def _has(fields: dict[str, Any], path: str) -> bool:
    node: Any = fields
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _user(fields: dict[str, Any], value: Any) -> None:
    """`user.name` (and `user.domain`, `user.email` for `name@domain`)."""
    if not isinstance(value, str) or not value or _has(fields, "user.name"):
        return
    name, at, domain = value.partition("@")
    if at and name and domain:
        _put(fields, "user.email", value)
        _put(fields, "user.domain", domain)
        _put(fields, "user.name", name)
    else:
        _put(fields, "user.name", value)


def _mac(value: Any) -> str | None:
    """ECS writes MAC addresses upper case with dashes."""
    return value.replace(":", "-").upper() if isinstance(value, str) and value else None


def _kind(fields: dict[str, Any], kind: str, category: list[str], types: list[str], action: str | None) -> None:
    event = fields["event"]
    event["kind"] = kind
    event["category"] = category
    event["type"] = types
    if action:
        event["action"] = action


# ----- one function per event type -----------------------------------------------


def _detection(event: dict[str, Any], fields: dict[str, Any]) -> None:
    _kind(fields, "alert", ["malware"], ["info"], None)
    _move(event, "PatternDispositionDescription", fields, "event.action")
    _move(event, "FalconHostLink", fields, "event.reference")
    _move(event, "CompositeId", fields, "event.id")
    severity = _number(event.get("Severity"))
    if severity is not None:
        fields["event"]["severity"] = severity
    _user(fields, event.pop("UserName", None))
    _move(event, "LogonDomain", fields, "user.domain")
    for key in ("ComputerName", "Hostname"):
        _move(event, key, fields, "host.name")
    _move(event, "MachineDomain", fields, "host.domain")
    for key in ("AgentId", "SensorId"):
        _move(event, key, fields, "host.id")
    ips = [ip for ip in (event.get("LocalIP"), event.get("LocalIPv6")) if isinstance(ip, str) and ip]
    _put(fields, "host.ip", ips)
    if ips:
        _put(fields, "source.ip", event.pop("LocalIP", None) or ips[0])
    mac = _mac(event.pop("MACAddress", None) or event.pop("MacAddress", None))
    _put(fields, "host.mac", [mac] if mac else None)
    _process(event, fields)
    for algorithm, key in (("sha256", "SHA256String"), ("sha1", "SHA1String"), ("md5", "MD5String")):
        _move(event, key, fields, f"file.hash.{algorithm}")
    file_name, file_path = event.get("FileName"), event.get("FilePath")
    _put(fields, "file.name", file_name)
    if isinstance(file_path, str) and isinstance(file_name, str) and file_name and not file_path.endswith(file_name):
        file_path = file_path.rstrip("\\/") + ("\\" if "\\" in file_path else "/") + file_name
    _put(fields, "file.path", file_path)
    for key in ("DetectName", "Name"):
        _move(event, key, fields, "rule.name")
    for key in ("DetectId", "PatternId"):
        _move(event, key, fields, "rule.id")
    for key in ("DetectDescription", "Description"):
        _move(event, key, fields, "rule.description")
    _put(fields, "message", fields.get("rule", {}).get("description"))
    _threat(event, fields)


def _process(event: dict[str, Any], fields: dict[str, Any]) -> None:
    for key in ("ProcessId", "PID"):
        pid = _number(event.get(key))
        if pid is not None and not _has(fields, "process.pid"):
            fields.setdefault("process", {})["pid"] = pid
            event.pop(key)
    _put(fields, "process.name", event.get("FileName"))
    _move(event, "ProcessStartTime", fields, "process.start")
    _move(event, "ProcessEndTime", fields, "process.end")
    command_line = event.get("CommandLine")
    if isinstance(command_line, str) and command_line.strip():
        args = command_line.split()
        _put(fields, "process.command_line", command_line.strip())
        _put(fields, "process.args", args)
        _put(fields, "process.executable", args[0])
    parent_pid = _number(event.get("ParentProcessId"))
    if parent_pid is not None:
        event.pop("ParentProcessId")
        _put(fields, "process.parent.pid", parent_pid)
    _move(event, "ParentImageFileName", fields, "process.parent.executable")
    _move(event, "ParentCommandLine", fields, "process.parent.command_line")
    parent = fields.get("process", {}).get("parent", {}).get("executable")
    if isinstance(parent, str):
        _put(fields, "process.parent.name", parent.replace("\\", "/").rsplit("/", 1)[-1])


def _threat(event: dict[str, Any], fields: dict[str, Any]) -> None:
    for key, path in (("Tactic", "threat.tactic.name"), ("TacticId", "threat.tactic.id"),
                      ("Technique", "threat.technique.name"), ("TechniqueId", "threat.technique.id")):
        value = event.get(key)
        if isinstance(value, str) and value:
            _put(fields, path, [value])
    if "threat" in fields:
        fields["threat"]["framework"] = "MITRE ATT&CK"


def _incident(event: dict[str, Any], fields: dict[str, Any]) -> None:
    _kind(fields, "alert", ["malware"], ["info"], "incident")
    _user(fields, event.pop("UserId", None))
    _move(event, "IncidentStartTime", fields, "event.start")
    _move(event, "IncidentEndTime", fields, "event.end")
    _move(event, "FalconHostLink", fields, "event.reference")
    _move(event, "HostID", fields, "host.id")
    _move(event, "IncidentID", fields, "event.id")
    if "FineScore" in event:
        _put(fields, "message", f"Incident score {event['FineScore']}")


def _user_activity(event: dict[str, Any], fields: dict[str, Any]) -> None:
    operation = event.get("OperationName")
    action = operation if isinstance(operation, str) else "user_activity_audit_event"
    _kind(fields, "event", ["iam"], ["change"], action)
    _user(fields, event.pop("UserId", None))
    _put(fields, "message", operation)
    _move(event, "UserIp", fields, "source.ip")


def _auth_activity(event: dict[str, Any], fields: dict[str, Any]) -> None:
    operation = event.get("OperationName")
    operation = operation if isinstance(operation, str) else ""
    authentication = operation in AUTHENTICATION_OPERATIONS
    types = (["user", "change"] if operation in USER_CHANGE_OPERATIONS else
             ["creation"] if operation == "createUser" else ["deletion"] if operation == "deleteUser" else
             ["start"] if authentication else ["info"])
    _kind(fields, "event", ["authentication"] if authentication else ["iam"], types,
          operation or "AuthActivityAuditEvent")
    _user(fields, event.pop("UserId", None))
    _put(fields, "message", event.get("ServiceName"))
    _move(event, "UserIp", fields, "source.ip")


def _remote_response(started: bool) -> Callable[[dict[str, Any], dict[str, Any]], None]:
    def remote_response(event: dict[str, Any], fields: dict[str, Any]) -> None:
        word = "start" if started else "end"
        _kind(fields, "event", ["network", "session"], [word], f"remote_response_session_{word}_event")
        _user(fields, event.pop("UserName", None))
        _move(event, "StartTimestamp" if started else "EndTimestamp", fields, f"event.{word}")
        _put(fields, "message", f"Remote response session {'started' if started else 'ended'}.")
        _move(event, "HostnameField", fields, "host.name")
        _move(event, "SessionId", fields, "event.id")
    return remote_response


def _firewall(event: dict[str, Any], fields: dict[str, Any]) -> None:
    action = str(event.get("RuleAction", ""))
    types = ["start", "connection"] + (["allowed"] if action == "1" else ["denied"] if action == "2" else [])
    _kind(fields, "event", ["network"], types, "firewall_match_event")
    verdict = {"1": "Allowed", "2": "Blocked"}.get(action, "Unknown")
    if "RuleName" in event:
        _put(fields, "message", f"Firewall Rule: '{event['RuleName']}' triggered - Action: '{verdict}'")
    _move(event, "Ipv", fields, "network.type")
    _process(event, fields)
    _move(event, "ImageFileName", fields, "process.executable")
    for key, path in (("RuleId", "rule.id"), ("RuleName", "rule.name"), ("RuleGroupName", "rule.ruleset"),
                      ("RuleDescription", "rule.description"), ("RuleFamilyID", "rule.category"),
                      ("HostName", "host.name"), ("EventType", "event.code")):
        _move(event, key, fields, path)
    direction = {"1": "ingress", "2": "egress"}.get(str(event.get("ConnectionDirection", "")))
    if direction is None:
        return
    _put(fields, "network.direction", direction)
    local, remote = ("destination", "source") if direction == "ingress" else ("source", "destination")
    _move(event, "LocalAddress", fields, f"{local}.ip")
    _move(event, "RemoteAddress", fields, f"{remote}.ip")
    for key, side in (("LocalPort", local), ("RemotePort", remote)):
        port = _number(event.get(key))
        if port is not None:
            event.pop(key)
            _put(fields, f"{side}.port", port)


_MAPPERS: dict[str, Callable[[dict[str, Any], dict[str, Any]], None]] = {
    "detectionsummaryevent": _detection,
    "incidentsummaryevent": _incident,
    "useractivityauditevent": _user_activity,
    "authactivityauditevent": _auth_activity,
    "remoteresponsesessionstartevent": _remote_response(True),
    "remoteresponsesessionendevent": _remote_response(False),
    "firewallmatchevent": _firewall,
}


def _generic(event: dict[str, Any], fields: dict[str, Any]) -> None:
    """What any event type names: its user, host and client address, when a mapper above did not take them."""
    for key in ("UserName", "UserId"):
        _user(fields, event.get(key))
    for key in ("Hostname", "ComputerName", "HostnameField", "HostName"):
        if isinstance(event.get(key), str) and not _has(fields, "host.name"):
            _put(fields, "host.name", event[key])
    if isinstance(event.get("UserIp"), str) and not _has(fields, "source.ip"):
        _put(fields, "source.ip", event["UserIp"])


def _related(fields: dict[str, Any]) -> None:
    related: dict[str, list[Any]] = {}
    for path, group in (("user.name", "user"), ("source.ip", "ip"), ("destination.ip", "ip"),
                        ("host.name", "hosts"), ("file.hash.sha256", "hash"), ("file.hash.sha1", "hash"),
                        ("file.hash.md5", "hash")):
        node: Any = fields
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, str) and node and node not in related.setdefault(group, []):
            related[group].append(node)
    for ip in fields.get("host", {}).get("ip", []):
        if ip not in related.setdefault("ip", []):
            related["ip"].append(ip)
    related = {group: values for group, values in related.items() if values}
    if related:
        fields["related"] = related
