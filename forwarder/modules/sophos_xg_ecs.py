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
# Pairs moved to a string ECS field: Sophos key → dotted ECS path (the first present of several wins).
STRING_FIELDS = (
    (("src_ip", "sourceip"), "source.ip"),
    (("dst_ip", "destinationip"), "destination.ip"),
    (("src_mac",), "source.mac"),
    (("dst_mac",), "destination.mac"),
    (("src_country_code", "src_country"), "source.geo.country_iso_code"),
    (("dst_country_code", "dst_country"), "destination.geo.country_iso_code"),
    (("tran_src_ip", "src_trans_ip"), "source.nat.ip"),
    (("tran_dst_ip", "dst_trans_ip"), "destination.nat.ip"),
    (("fw_rule_id", "signature_id"), "rule.id"),
    (("fw_rule_name", "signature_msg"), "rule.name"),
    (("policy_type",), "rule.ruleset"),
    (("classification", "category"), "rule.category"),
    (("user_name", "src_user"), "user.name"),
    (("user_gp", "user_group", "usergroupname"), "user.group.name"),
    (("application",), "network.protocol"),
    (("url",), "url.original"),
    (("domain", "domainname"), "url.domain"),
    (("useragent", "user_agent"), "user_agent.original"),
    (("filename",), "file.name"),
    (("sha1sum",), "file.hash.sha1"),
    (("sha256",), "file.hash.sha256"),
    (("from_email_address",), "email.from.address"),
    (("to_email_address",), "email.to.address"),
    (("subject", "email_subject"), "email.subject"),
)
# Counters and ports moved to a number; a value that is not an integer stays under sophos.xg.
INTEGER_FIELDS = (
    (("src_port",), "source.port"),
    (("dst_port",), "destination.port"),
    (("tran_src_port", "src_trans_port"), "source.nat.port"),
    (("tran_dst_port", "dst_trans_port"), "destination.nat.port"),
    (("sent_bytes", "bytes_sent"), "source.bytes"),
    (("recv_bytes", "bytes_received", "rcvd_bytes"), "destination.bytes"),
    (("sent_pkts", "packets_sent"), "source.packets"),
    (("recv_pkts", "packets_received"), "destination.packets"),
    (("http_status", "status_code", "httpstatus"), "http.response.status_code"),
    (("filesize", "file_size"), "file.size"),
)
# Interface and zone names: Sophos sometimes pads them inside the quotes (`" LAN"`).
OBSERVER_FIELDS = (
    (("in_interface",), "ingress", "interface"),
    (("out_interface",), "egress", "interface"),
    (("srczonetype", "src_zone_type"), "ingress", "zone"),
    (("dstzonetype", "dst_zone_type"), "egress", "zone"),
)


_STRING_PATHS = tuple((names, tuple(path.split("."))) for names, path in STRING_FIELDS)
_INTEGER_PATHS = tuple((names, tuple(path.split("."))) for names, path in INTEGER_FIELDS)


class SophosRecordError(ValueError):
    """The text is not a Sophos record (the message says which part is missing or malformed)."""


class XgMapping:
    """Maps records of one fileset; `local_zone` (None: the host's) places the zone-less times of SFOS ≤ 18.5."""

    def __init__(self, local_zone: tzinfo | None, known_devices: dict[str, str], default_host_name: str | None):
        self.local_zone = local_zone
        self.known_devices = known_devices
        self.default_host_name = default_host_name

    def map(self, pairs: dict[str, str]) -> tuple[float, dict[str, Any]]:
        """(epoch seconds, ECS fields) of one record's pairs; the pairs dict is consumed."""
        xg = {key: value for key, value in pairs.items() if value not in EMPTY_VALUES}
        log_id = xg.get("log_id", "")
        if len(log_id) != 12 or not log_id.isdigit():
            raise SophosRecordError(f"no 12-digit log_id (got {log_id[:40]!r})" if log_id else "no log_id")
        log_type = xg.get("log_type")
        if log_type is None:
            raise SophosRecordError("no log_type")
        timestamp = self._timestamp(xg)
        severity = int(log_id[6])
        xg["log_type_id"] = log_id[0:2]
        xg["log_component_id"] = log_id[2:4]
        xg["log_subtype_id"] = log_id[4:6]
        xg["message_id"] = log_id[7:]
        del xg["log_id"]
        kind, categories = LOG_TYPES.get(log_type, ("event", []))
        fields: dict[str, Any] = {
            "event": {"kind": kind, "code": log_id, "severity": severity},
            "log": {"level": LOG_LEVELS[severity]},
            "observer": {"vendor": "Sophos", "product": "XG", "type": "firewall"},
        }
        for names, path in _STRING_PATHS:
            for name in names:
                value = xg.pop(name, None)
                if value is not None:
                    _put(fields, path, value)
                    break
        for names, path in _INTEGER_PATHS:
            for name in names:
                value = xg.get(name)
                if value is not None and value.isdigit():
                    _put(fields, path, int(xg.pop(name)))
                    break
        self._observer(xg, fields["observer"])
        self._host(fields)
        self._network(xg, fields)
        self._event(xg, fields, log_type, categories)
        self._related(fields)
        fields["sophos"] = {"xg": xg}
        return timestamp, fields

    def _timestamp(self, xg: dict[str, str]) -> float:
        """SFOS 19+ `timestamp` (ISO, with offset), else ≤ 18.5 `date` + `time` in the configured zone."""
        stamp = xg.pop("timestamp", None)
        if stamp is None:
            date, time = xg.pop("date", None), xg.pop("time", None)
            if date is None or time is None:
                raise SophosRecordError("no time: neither timestamp nor date and time")
            stamp = f"{date}T{time}"
            if self.local_zone is None and xg.get("timezone", "").upper() in ("UTC", "GMT"):
                stamp += "Z"
        try:
            moment = datetime.fromisoformat(stamp)
        except ValueError:
            raise SophosRecordError(f"unreadable time {stamp[:40]!r}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self.local_zone) if self.local_zone else moment.astimezone()
        return moment.timestamp()

    def _observer(self, xg: dict[str, str], observer: dict[str, Any]) -> None:
        serial = xg.pop("device_serial_id", None) or xg.pop("device_id", None)
        if serial is not None:
            observer["serial_number"] = serial
        for names, direction, part in OBSERVER_FIELDS:
            value = next((xg.pop(name) for name in names if name in xg), "").strip()
            if value:
                side = observer.setdefault(direction, {})
                if part == "interface":
                    side["interface"] = {"name": value}
                else:
                    side["zone"] = value

    def _host(self, fields: dict[str, Any]) -> None:
        """`host.name` of a record naming its serial: its `known_devices` entry, else `default_host_name`."""
        serial = fields["observer"].get("serial_number")
        name = self.known_devices.get(serial, self.default_host_name) if serial else None
        if name:
            fields["host"] = {"name": name}

    def _network(self, xg: dict[str, str], fields: dict[str, Any]) -> None:
        transport = xg.pop("protocol", None)
        if transport is not None:
            fields.setdefault("network", {})["transport"] = transport.lower()
        for name in ("duration", "con_duration"):
            duration = xg.get(name)
            if duration is not None and duration.isdigit():
                fields["event"]["duration"] = int(xg.pop(name)) * 1_000_000_000
                break

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


def _put(fields: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = fields
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value
