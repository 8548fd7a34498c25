"""A Cisco Secure Endpoint event (one `data[]` item of `GET /v1/events`) mapped onto ECS.

The mapping follows Elastic's `cisco_secure_endpoint` integration (which
extended Filebeat's `cisco.amp` pipeline): `event.code` from `event_type_id`,
`event.action` from `event_type`, the severity word as a number, the computer
as `host.*` (the host name split at its first dot), its user as `user.*`, the
file and its parent process as `file.*` and `process.*`, network information
as `source.*`/`destination.*`/`network.*`, MITRE ids as `threat.*`. Everything
else of the event stays under `cisco.amp.*` (Filebeat's namespace), less what
the integration drops (`computer.links` and the times already in ECS).
"""

from __future__ import annotations

import datetime
import shlex
from dataclasses import dataclass
from typing import Any

SEVERITY = {"low": 1, "medium": 2, "high": 3, "critical": 4}
HASHES = ("sha256", "sha1", "md5")
# Top-level event fields that are wholly in ECS, so not repeated under cisco.amp.
MOVED = ("id", "event_type", "event_type_id", "timestamp", "timestamp_nanoseconds", "date", "start_date",
         "start_timestamp", "severity", "tactics", "techniques")


class UnmappableEvent(ValueError):
    """The record is not a Secure Endpoint event this mapping understands."""


@dataclass
class Mapped:
    fields: dict[str, Any]
    timestamp: float


def normalize(record: Any) -> Mapped:
    if not isinstance(record, dict):
        raise UnmappableEvent(f"a Secure Endpoint event is a JSON object, not {type(record).__name__}")
    type_id = record.get("event_type_id")
    if type(type_id) is not int:
        raise UnmappableEvent("the event has no numeric event_type_id")
    timestamp = _timestamp(record)
    event: dict[str, Any] = {"kind": "alert", "code": str(type_id),
                             "severity": SEVERITY.get(str(record.get("severity", "")).lower(), 0)}
    _put(event, "id", str(record["id"]) if "id" in record else None)
    _put(event, "action", record.get("event_type"))
    start = record.get("start_timestamp")
    if type(start) in (int, float):
        event["start"] = _iso(start)
    fields: dict[str, Any] = {"event": event}
    related: dict[str, list[str]] = {"ip": [], "mac": [], "hash": [], "user": [], "hosts": [], "cve": []}
    _computer(fields, record.get("computer"), related)
    _file(fields, event, record.get("file"), related)
    _network(fields, record.get("network_info"), related)
    _command_line(fields, record.get("command_line"))
    _threat(fields, record)
    related["cve"] += [v["cve"] for v in _list(record.get("vulnerabilities")) if isinstance(v, dict) and "cve" in v]
    fields["related"] = {name: list(dict.fromkeys(values)) for name, values in related.items() if values}
    fields["cisco"] = {"amp": _rest(record)}
    return Mapped({name: value for name, value in fields.items() if value}, timestamp)


def _timestamp(record: dict[str, Any]) -> float:
    seconds = record.get("timestamp")
    if type(seconds) in (int, float) and seconds > 0:
        nanos = record.get("timestamp_nanoseconds")
        return seconds + (nanos / 1e9 if type(nanos) is int and 0 <= nanos < 1_000_000_000 else 0.0)
    date = record.get("date")
    try:
        return datetime.datetime.fromisoformat(str(date).replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise UnmappableEvent("the event has neither timestamp nor a readable date") from None


def _computer(fields: dict[str, Any], computer: Any, related: dict[str, list[str]]) -> None:
    if not isinstance(computer, dict):
        return
    host: dict[str, Any] = {}
    name = computer.get("hostname")
    if isinstance(name, str) and name:
        host["name"] = name
        short, _, domain = name.partition(".")
        host["hostname"] = short
        _put(host, "domain", domain or None)
        related["hosts"].append(name)
    addresses = [a for a in _list(computer.get("network_addresses")) if isinstance(a, dict)]
    ips = [a["ip"] for a in addresses if isinstance(a.get("ip"), str)]
    macs = [a["mac"] for a in addresses if isinstance(a.get("mac"), str)]
    _put(host, "ip", ips or None)
    _put(host, "mac", macs or None)
    related["ip"] += ips
    related["mac"] += macs
    if isinstance(computer.get("external_ip"), str):
        related["ip"].append(computer["external_ip"])
    fields["host"] = host
    user = computer.get("user")
    if isinstance(user, str) and user:
        user_name, _, user_domain = user.partition("@")
        fields["user"] = {"name": user_name}
        _put(fields["user"], "domain", user_domain or None)
        related["user"].append(user_name)


def _file(fields: dict[str, Any], event: dict[str, Any], file: Any, related: dict[str, list[str]]) -> None:
    if not isinstance(file, dict):
        return
    mapped: dict[str, Any] = {}
    _put(mapped, "name", file.get("file_name"))
    _put(mapped, "path", file.get("file_path"))
    _put(mapped, "hash", _hashes(file.get("identity"), related))
    fields["file"] = mapped
    if "name" in mapped:
        event["category"] = ["file"] + (["malware"] if file.get("disposition") == "Malicious" else [])
    parent = file.get("parent")
    if isinstance(parent, dict):
        process: dict[str, Any] = {}
        _put(process, "pid", parent.get("process_id"))
        _put(process, "name", parent.get("file_name"))
        _put(process, "hash", _hashes(parent.get("identity"), related))
        fields["process"] = process


def _hashes(identity: Any, related: dict[str, list[str]]) -> dict[str, str] | None:
    if not isinstance(identity, dict):
        return None
    found = {name: identity[name] for name in HASHES if isinstance(identity.get(name), str)}
    related["hash"] += found.values()
    return found or None


def _network(fields: dict[str, Any], info: Any, related: dict[str, list[str]]) -> None:
    if not isinstance(info, dict):
        return
    for side, prefix in (("source", "local"), ("destination", "remote")):
        endpoint: dict[str, Any] = {}
        _put(endpoint, "ip", info.get(f"{prefix}_ip"))
        _put(endpoint, "port", info.get(f"{prefix}_port"))
        if "ip" in endpoint:
            related["ip"].append(endpoint["ip"])
        _put(fields, side, endpoint or None)
    nfm = info.get("nfm")
    if isinstance(nfm, dict):
        network: dict[str, Any] = {}
        protocol = nfm.get("protocol")
        _put(network, "transport", protocol.lower() if isinstance(protocol, str) else None)
        direction = nfm.get("direction")
        if isinstance(direction, str):
            network["direction"] = "egress" if direction == "Outgoing connection from" else "ingress"
        _put(fields, "network", network or None)
    _put(fields, "url", {"full": info["dirty_url"]} if isinstance(info.get("dirty_url"), str) else None)


def _command_line(fields: dict[str, Any], command_line: Any) -> None:
    arguments = command_line.get("arguments") if isinstance(command_line, dict) else None
    if not isinstance(arguments, str) or not arguments:
        return
    process = fields.setdefault("process", {})
    process["command_line"] = arguments
    try:
        args = shlex.split(arguments, posix=False)
    except ValueError:
        args = arguments.split()
    process["args"] = args
    if args:
        process["executable"] = args[0].strip('"')


def _threat(fields: dict[str, Any], record: dict[str, Any]) -> None:
    threat: dict[str, Any] = {}
    tactics = [t for t in _list(record.get("tactics")) if isinstance(t, str)]
    techniques = [t for t in _list(record.get("techniques")) if isinstance(t, str)]
    _put(threat, "tactic", {"id": tactics} if tactics else None)
    _put(threat, "technique", {"id": techniques} if techniques else None)
    if threat:
        threat["framework"] = "MITRE ATT&CK"
        fields["threat"] = threat


def _rest(record: dict[str, Any]) -> dict[str, Any]:
    rest = {name: value for name, value in record.items() if name not in MOVED}
    computer = rest.get("computer")
    if isinstance(computer, dict):
        rest["computer"] = {name: value for name, value in computer.items() if name != "links"}
    return rest


def _put(target: dict[str, Any], name: str, value: Any) -> None:
    if value is not None and value != "":
        target[name] = value


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _iso(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).isoformat().replace("+00:00", "Z")
