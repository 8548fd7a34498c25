"""One Sophos Firewall (SFOS/XG) record, already split into its `key=value` pairs, mapped onto ECS.

The field choices follow Elastic's `sophos.xg` integration: addresses, ports,
MACs, byte and packet counts and countries into `source.*`/`destination.*`,
translated addresses into `source.nat.*`/`destination.nat.*`, interfaces and
zones into `observer.ingress/egress.*`, the device serial into
`observer.serial_number`, the firewall rule into `rule.*`, and every pair not
moved to ECS under `sophos.xg.*` with its Sophos name. Both payload
generations are read: up to SFOS 18.5 the record has `date`, `time`, a zone
abbreviation and `priority`; from 19 on an ISO `timestamp` with an offset and
`severity`.

`log_id` is the record's type in twelve digits: log type (2), component (2),
subtype (2), severity (1, 0 emergency … 7 debug) and message id (5); they
become `sophos.xg.log_type_id`/`log_component_id`/`log_subtype_id`/
`message_id`, `event.severity`/`log.level` and `event.code`.

A record without a well-formed `log_id`, without `log_type`, or without a
readable time is not a Sophos record: `SophosRecordError`, raised before the
event is changed.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

# Values that mean "no value" in Sophos records; such pairs are left out.
EMPTY_VALUES = frozenset(("", "-", "N/A"))
LOG_LEVELS = ("emergency", "alert", "critical", "error", "warning", "notification", "information", "debug")
# log_type → (event.kind, event.category); `Heartbeat`, `SD-WAN` and `SSL` are the SFOS 19+ additions.
LOG_TYPES: dict[str, tuple[str, list[str]]] = {
    "Firewall": ("event", ["network"]),
    "IDP": ("alert", ["network", "intrusion_detection"]),
    "ATP": ("alert", ["network", "malware", "intrusion_detection"]),
    "Anti-Virus": ("alert", ["malware"]),
    "Sandbox": ("alert", ["malware"]),
    "Content Filtering": ("event", ["network", "web"]),
    "Event": ("event", ["host"]),
    "WAF": ("event", ["network", "web"]),
    "Anti-Spam": ("event", ["email"]),
    "System Health": ("metric", ["host"]),
    "Wireless Protection": ("event", ["network"]),
    "Heartbeat": ("event", ["host"]),
    "SD-WAN": ("event", ["network"]),
    "SSL": ("event", ["network"]),
}
FAILURE_STATUSES = frozenset(("fail", "failed", "failure", "error", "timeout", "expired", "invalid"))
DENIED_STATUSES = frozenset(("deny", "denied", "block", "blocked", "drop", "dropped", "reject", "rejected",
                             "quarantine", "quarantined", "disallow", "disallowed"))
AUTHENTICATION_WORDS = ("authentication", "login", "logon", "logout")
# How a pair moved to ECS is converted: kept as written, an integer (else the pair stays under sophos.xg),
# seconds → nanoseconds, a name trimmed (Sophos pads some inside the quotes: `" LAN"`), lowercased.
TEXT, INTEGER, SECONDS, NAME, LOWER, TIME = "text", "integer", "seconds", "name", "lower", "time"
# Sophos keys (of either generation) → ECS field and conversion; a pair not listed stays under sophos.xg.
FIELD_TARGETS = (
    (("src_ip", "sourceip"), "source.ip", TEXT),
    (("dst_ip", "destinationip"), "destination.ip", TEXT),
    (("src_port",), "source.port", INTEGER),
    (("dst_port",), "destination.port", INTEGER),
    (("src_mac",), "source.mac", TEXT),
    (("dst_mac",), "destination.mac", TEXT),
    (("sent_bytes", "bytes_sent"), "source.bytes", INTEGER),
    (("recv_bytes", "bytes_received", "rcvd_bytes"), "destination.bytes", INTEGER),
    (("sent_pkts", "packets_sent"), "source.packets", INTEGER),
    (("recv_pkts", "packets_received"), "destination.packets", INTEGER),
    (("src_country_code", "src_country"), "source.geo.country_iso_code", TEXT),
    (("dst_country_code", "dst_country"), "destination.geo.country_iso_code", TEXT),
    (("tran_src_ip", "src_trans_ip"), "source.nat.ip", TEXT),
    (("tran_src_port", "src_trans_port"), "source.nat.port", INTEGER),
    (("tran_dst_ip", "dst_trans_ip"), "destination.nat.ip", TEXT),
    (("tran_dst_port", "dst_trans_port"), "destination.nat.port", INTEGER),
    (("protocol",), "network.transport", LOWER),
    (("application",), "network.protocol", TEXT),
    (("fw_rule_id", "signature_id"), "rule.id", TEXT),
    (("fw_rule_name", "signature_msg"), "rule.name", TEXT),
    (("policy_type",), "rule.ruleset", TEXT),
    (("classification",), "rule.category", TEXT),
    (("user_name", "src_user"), "user.name", TEXT),
    (("user_gp", "user_group", "usergroupname"), "user.group.name", TEXT),
    (("device_serial_id", "device_id"), "observer.serial_number", TEXT),
    (("in_interface",), "observer.ingress.interface.name", NAME),
    (("out_interface",), "observer.egress.interface.name", NAME),
    (("srczonetype", "src_zone_type"), "observer.ingress.zone", NAME),
    (("dstzonetype", "dst_zone_type"), "observer.egress.zone", NAME),
    (("duration", "con_duration"), "event.duration", SECONDS),
    (("url",), "url.original", TEXT),
    (("domain", "domainname"), "url.domain", TEXT),
    (("http_status", "status_code", "httpstatus"), "http.response.status_code", INTEGER),
    (("useragent", "user_agent"), "user_agent.original", TEXT),
    (("filename",), "file.name", TEXT),
    (("filesize", "file_size"), "file.size", INTEGER),
    (("sha1sum",), "file.hash.sha1", TEXT),
    (("sha256",), "file.hash.sha256", TEXT),
    (("from_email_address",), "email.from.address", TEXT),
    (("to_email_address",), "email.to.address", TEXT),
    (("subject", "email_subject"), "email.subject", TEXT),
    # Read into @timestamp and event.code before the pairs are moved.
    (("timestamp", "date", "time", "log_id"), "", TIME),
)
_TARGETS = {name: (conversion, tuple(path.split("."))) for names, path, conversion in FIELD_TARGETS
            for name in names}


class SophosRecordError(ValueError):
    """The text is not a Sophos record (the message says which part is missing or malformed)."""


class XgMapping:
    """Maps records of one fileset; `local_zone` (None: the host's) places the zone-less times of SFOS ≤ 18.5."""

    def __init__(self, local_zone: tzinfo | None, known_devices: dict[str, str], default_host_name: str | None):
        self.local_zone = local_zone
        self.known_devices = known_devices
        self.default_host_name = default_host_name

    def map(self, pairs: dict[str, str]) -> tuple[float, dict[str, Any]]:
        """(epoch seconds, ECS fields) of one record's pairs."""
        log_id = pairs.get("log_id", "")
        if len(log_id) != 12 or not log_id.isdigit():
            raise SophosRecordError(f"no 12-digit log_id (got {log_id[:40]!r})" if log_id else "no log_id")
        log_type = pairs.get("log_type")
        if log_type in EMPTY_VALUES or log_type is None:
            raise SophosRecordError("no log_type")
        timestamp = self._timestamp(pairs)
        severity = int(log_id[6])
        kind, categories = LOG_TYPES.get(log_type, ("event", []))
        fields: dict[str, Any] = {
            "event": {"kind": kind, "code": log_id, "severity": severity},
            "log": {"level": LOG_LEVELS[severity]},
            "observer": {"vendor": "Sophos", "product": "XG", "type": "firewall"},
        }
        xg = _move_to_ecs(pairs, fields)
        xg["log_type_id"] = log_id[0:2]
        xg["log_component_id"] = log_id[2:4]
        xg["log_subtype_id"] = log_id[4:6]
        xg["message_id"] = log_id[7:]
        self._host(fields)
        self._event(xg, fields, log_type, categories)
        self._related(fields)
        fields["sophos"] = {"xg": xg}
        return timestamp, fields

    def _timestamp(self, pairs: dict[str, str]) -> float:
        """SFOS 19+ `timestamp` (ISO, with offset), else ≤ 18.5 `date` + `time` in the configured zone."""
        stamp = pairs.get("timestamp")
        if stamp is None:
            date, time = pairs.get("date"), pairs.get("time")
            if not date or not time:
                raise SophosRecordError("no time: neither timestamp nor date and time")
            stamp = f"{date}T{time}"
            if self.local_zone is None and pairs.get("timezone", "").upper() in ("UTC", "GMT"):
                stamp += "Z"
        try:
            moment = datetime.fromisoformat(stamp)
        except ValueError:
            raise SophosRecordError(f"unreadable time {stamp[:40]!r}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self.local_zone) if self.local_zone else moment.astimezone()
        return moment.timestamp()

    def _host(self, fields: dict[str, Any]) -> None:
        """`host.name` of a record naming its serial: its `known_devices` entry, else `default_host_name`."""
        serial = fields["observer"].get("serial_number")
        name = self.known_devices.get(serial, self.default_host_name) if serial else None
        if name:
            fields["host"] = {"name": name}

    def _event(self, xg: dict[str, str], fields: dict[str, Any], log_type: str, categories: list[str]) -> None:
        """`event.action`/`outcome` from `status` (an HTTP code there: the subtype), `category`/`type` by log type.

        A denied connection is `outcome: success` (the firewall did what it was told, as in ECS and Elastic's
        mapping) with `type: denied`; a failed login or SLA check is `failure`.
        """
        event = fields["event"]
        status = xg.get("status")
        if status is None or status.isdigit():
            status = xg.get("action") or xg.get("log_subtype")
        word = status.lower() if status else ""
        types: list[str] = []
        if word:
            event["action"] = word
            event["outcome"] = "failure" if word in FAILURE_STATUSES else "success"
            if word in DENIED_STATUSES:
                types.append("denied")
            elif word.startswith("allow"):
                types.append("allowed")
        else:
            event["outcome"] = "unknown"
        component = xg.get("log_component", "").lower()
        if log_type == "Event" and any(part in component for part in AUTHENTICATION_WORDS):
            categories = ["authentication"]
            types.append("start" if "logout" not in component else "end")
        if "network" in categories and ("source" in fields or "destination" in fields):
            connection_event = xg.get("connevent") or xg.get("con_event")
            if connection_event in ("Start", "Interim"):
                types.append("start")
            elif connection_event == "Stop":
                types.append("end")
            types.append("connection")
        if "web" in categories:
            types.append("access")
        event["category"] = list(categories)
        event["type"] = types or ["info"]

    def _related(self, fields: dict[str, Any]) -> None:
        """`related.ip`/`user`/`hosts`: every address, the user and the host of the record, for pivoting."""
        addresses = []
        for side in ("source", "destination"):
            part = fields.get(side)
            if part is not None:
                for address in (part.get("ip"), part.get("nat", {}).get("ip")):
                    if address and address not in addresses:
                        addresses.append(address)
        related: dict[str, Any] = {}
        if addresses:
            related["ip"] = addresses
        user = fields.get("user", {}).get("name")
        if user:
            related["user"] = [user]
        host = fields.get("host", {}).get("name")
        if host:
            related["hosts"] = [host]
        if related:
            fields["related"] = related


def _move_to_ecs(pairs: dict[str, str], fields: dict[str, Any]) -> dict[str, str]:
    """Puts the pairs `FIELD_TARGETS` names into `fields`; returns the others (empty values left out)."""
    rest = {}
    for key, value in pairs.items():
        if value in EMPTY_VALUES:
            continue
        target = _TARGETS.get(key)
        if target is None:
            rest[key] = value
            continue
        conversion, path = target
        if conversion is TEXT:
            converted: Any = value
        elif conversion is INTEGER or conversion is SECONDS:
            if not value.isdigit():
                rest[key] = value
                continue
            converted = int(value) if conversion is INTEGER else int(value) * 1_000_000_000
        elif conversion is NAME:
            converted = value.strip()
            if not converted:
                continue
        elif conversion is LOWER:
            converted = value.lower()
        else:
            continue
        node = fields
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = converted
    return rest
