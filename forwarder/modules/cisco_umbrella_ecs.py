"""One Cisco Umbrella CSV row mapped onto ECS, as Elastic's `cisco_umbrella` integration maps it.

The integration's ingest pipeline is the reference: the same column names,
`@timestamp` from the record's UTC time, addresses split into `.ip` (an IP)
or `.domain` (anything else), `source.nat.ip` only when it is an IP, the DNS
name without its trailing dot, identities split on commas (keeping a first
identity that itself contains commas, an e-mail display name), identity types
turned into `user.name` / `host.name` / `network.name`, `event.action` /
`event.type` / `event.category` / `event.kind` per log type, `related.*`, and
the audit log's `before`/`after` text split into lines and `key: value`
pairs. Two things are this forwarder's own: `event.outcome` (`success` for an
allowed request, `failure` for a blocked one) and `cisco.umbrella.extra_columns`
(columns a newer schema appends). Not done here, as they need data files:
GeoIP, the registered domain, `user_agent` parsing, community ID.

The mapping runs once per row on the publishing thread, so per log type the
work is precomputed: which columns are copied to which nested key, and which
are converted. IP checks and timestamps are cached (a file repeats both).
"""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from forwarder.modules.cisco_umbrella_columns import ACTION, TIME, LogType

INTEGER_COLUMNS = frozenset((
    "source.port", "destination.port", "source.bytes", "http.response.status_code", "http.request.bytes",
    "http.response.bytes", "http.response.body.bytes", "file.size",
))
# Split into lists, as the integration does; `categories`/`blocked_categories` only for DNS rows.
LIST_COLUMNS = frozenset(("cisco.umbrella.identity_types", "cisco.umbrella.fqdns"))
DNS_LIST_COLUMNS = frozenset(("cisco.umbrella.categories", "cisco.umbrella.blocked_categories"))
# Columns the mapping reads itself instead of copying.
SPECIAL_COLUMNS = frozenset((
    TIME, ACTION, "direction", "severity", "source.address", "destination.address", "source.nat.ip",
    "dns.question.name", "url.original", "cisco.umbrella.identity", "cisco.umbrella.identities",
    "cisco.umbrella.audit.before", "cisco.umbrella.audit.after", "user.name", "user.email",
))
OBSERVER_TYPES = {
    "dnslogs": "dns", "iplogs": "firewall", "proxylogs": "proxy", "cloudfirewalllogs": "firewall",
    "firewalllogs": "firewall", "intrusionlogs": "idps", "dlplogs": "dlp",
}
ACTION_PREFIXES = {
    "dnslogs": "dns-request-", "cloudfirewalllogs": "fw-connection-", "firewalllogs": "fw-connection-",
    "intrusionlogs": "ips-", "dlplogs": "dlp-",
}
ALLOWED = frozenset(("Allowed", "ALLOWED", "ALLOW", "Would-Block"))
BLOCKED = frozenset(("Blocked", "BLOCKED", "BLOCK"))
SEVERITIES = {"LOW": 1, "MEDIUM": 2, "HIGH": 3, "CRITICAL": 4}
AUDIT_TYPES = {"create": "creation", "update": "change", "delete": "deletion"}
USER_IDENTITY_TYPES = frozenset(("AD Users",))
HOST_IDENTITY_TYPES = frozenset(("AD Computers", "Roaming Computers", "Anyconnect Roaming Client", "Mobile Devices"))
NETWORK_IDENTITY_TYPES = frozenset((
    "Sites", "Internal Networks", "Networks", "Network Devices", "Network Tunnels", "CDFW Tunnel Device",
))
_CACHE_LIMIT = 65536


class UmbrellaMapping:
    """The ECS mapping of one log type's rows: `map(values)` → (epoch seconds, fields to add)."""

    def __init__(self, log_type: LogType) -> None:
        self.log_type = log_type
        folder = log_type.folder
        self.known = known = len(log_type.columns)
        self.is_audit = folder == "auditlogs"
        self.is_proxy = folder == "proxylogs"
        lists = LIST_COLUMNS | (DNS_LIST_COLUMNS if folder == "dnslogs" else frozenset())
        umbrella_columns, other_columns = [], []
        for position, name in enumerate(log_type.columns):
            if name in SPECIAL_COLUMNS:
                continue
            conversion = "int" if name in INTEGER_COLUMNS else "list" if name in lists else ""
            if name.startswith("cisco.umbrella.") and name.count(".") == 2:
                umbrella_columns.append((position, name.rpartition(".")[2], conversion))
            else:
                other_columns.append((position, tuple(name.split(".")), conversion))
        # (position, key in cisco.umbrella / nested key path, conversion) of the columns copied as they are.
        self.umbrella_columns = tuple(umbrella_columns)
        self.other_columns = tuple(other_columns)
        # Where each column the mapping reads itself sits; `known` (an always-empty slot) when this type has none.
        self.position = {name: log_type.index.get(name, known) for name in (*SPECIAL_COLUMNS, "http.request.method")}
        self.action_prefix = ACTION_PREFIXES.get(folder)
        self.observer = {"vendor": "Cisco", "product": "Umbrella"}
        if folder in OBSERVER_TYPES:
            self.observer["type"] = OBSERVER_TYPES[folder]
        self.category = ("configuration",) if self.is_audit else (
            ("network", "file") if folder == "dlplogs" else
            ("network", "intrusion_detection") if folder == "intrusionlogs" else ("network",))
        self.kind = "alert" if folder == "intrusionlogs" else "event"
        self.has_severity = folder in ("intrusionlogs", "dlplogs")

    def map(self, values: list[str]) -> tuple[float, dict[str, Any]]:
        """The record's time and its ECS fields; ValueError for a row that cannot be this log type's."""
        count = len(values)
        known = self.known
        if count < self.log_type.minimum:
            raise ValueError(f"{self.log_type.folder} row has {count} columns, "
                             f"expected at least {self.log_type.minimum}")
        # Padded to every known column plus one always-empty slot, where absent special columns point.
        row = [*values[:known], *[""] * (known + 1 - min(count, known))]
        position = self.position
        timestamp = parse_time(row[position[TIME]])
        umbrella: dict[str, Any] = {}
        fields: dict[str, Any] = {"cisco": {"umbrella": umbrella}}
        for index, key, conversion in self.umbrella_columns:
            value = row[index]
            if value:
                umbrella[key] = _split(value) if conversion == "list" else value
        for index, path, conversion in self.other_columns:
            value = row[index]
            if value:
                _put(fields, path, _integer(value, ".".join(path)) if conversion == "int" else value)
        if count > known and any(values[known:]):
            umbrella["extra_columns"] = values[known:]
        related_ips: list[str] = []
        related_hosts: list[str] = []
        for side in ("source", "destination"):
            address = row[position[f"{side}.address"]]
            if address:
                kind = "ip" if is_ip(address) else "domain"
                node = fields.get(side)
                if node is None:
                    node = fields[side] = {}
                node["address"] = address
                node[kind] = address
                (related_ips if kind == "ip" else related_hosts).append(address)
        nat = row[position["source.nat.ip"]]
        if nat and is_ip(nat):
            fields.setdefault("source", {})["nat"] = {"ip": nat}
            related_ips.append(nat)
        name = row[position["dns.question.name"]]
        if name:
            name = name[:-1] if name.endswith(".") else name
            dns = fields.setdefault("dns", {})
            dns.setdefault("question", {})["name"] = name
            dns["type"] = "query"
            related_hosts.append(name)
        direction = row[position["direction"]]
        if direction:
            fields.setdefault("network", {})["direction"] = direction.lower()
        url = row[position["url.original"]]
        if url:
            fields["url"] = _url_parts(url)
        self._identities(row, fields, umbrella)
        fields["event"] = self._event(row, fields.get("event"), umbrella)
        if self.is_audit:
            _audit_text(row[position["cisco.umbrella.audit.before"]], row[position["cisco.umbrella.audit.after"]],
                        umbrella)
        fields["observer"] = dict(self.observer)
        related = _related(fields, umbrella, related_ips, related_hosts)
        if related:
            fields["related"] = related
        if not umbrella:
            del fields["cisco"]
        return timestamp, fields

    def _identities(self, row: list[str], fields: dict[str, Any], umbrella: dict[str, Any]) -> None:
        """`identities` as a list, and each identity named by its type as user, host or network."""
        position = self.position
        identity = row[position["cisco.umbrella.identity"]]
        if identity:
            umbrella["identity"] = identity
        identities = row[position["cisco.umbrella.identities"]]
        if identities:
            if "," in identity and identities.startswith(identity):
                umbrella["identities"] = [identity, *_split(identities[len(identity):])]
            else:
                umbrella["identities"] = _split(identities)
        user_name = row[position["user.name"]]
        if user_name and user_name != "null":
            fields["user"] = {"name": user_name}
        email = row[position["user.email"]]
        if email and email != "null":
            fields.setdefault("user", {})["email"] = email
        names = umbrella.get("identities")
        kinds = umbrella.get("identity_types")
        if names and kinds and len(names) == len(kinds):
            for name, kind in zip(names, kinds, strict=True):
                if kind in USER_IDENTITY_TYPES:
                    fields.setdefault("user", {}).setdefault("name", name)
                elif kind in HOST_IDENTITY_TYPES:
                    fields.setdefault("host", {}).setdefault("name", name)
                elif kind in NETWORK_IDENTITY_TYPES:
                    networks = fields.setdefault("network", {}).setdefault("name", [])
                    if name not in networks:
                        networks.append(name)
        host = fields.get("host")
        if host:
            host["name"] = host_name = host["name"].lower()
            if "." in host_name:
                host["hostname"], host["domain"] = host_name.split(".", 1)
        user = fields.get("user")
        if user and "@" in user.get("name", ""):
            _user_from_display_name(user)

    def _event(self, row: list[str], event: dict[str, Any] | None, umbrella: dict[str, Any]) -> dict[str, Any]:
        event = {} if event is None else event
        event["kind"] = self.kind
        event["category"] = list(self.category)
        types: list[str] = []
        action = row[self.position[ACTION]].replace(" ", "-")
        if self.is_audit:
            if action:
                event["action"] = action
                if action.lower() in AUDIT_TYPES:
                    types.append(AUDIT_TYPES[action.lower()])
        else:
            if action in ALLOWED:
                types.append("allowed")
                event["outcome"] = "success"
            elif action in BLOCKED:
                types.append("denied")
                event["outcome"] = "failure"
            types.append("connection")
            if self.action_prefix and action:
                event["action"] = self.action_prefix + action
            elif self.is_proxy:
                method = row[self.position["http.request.method"]]
                if method:
                    event["action"] = "proxy-request-" + method
        if self.has_severity:
            types.append("info")
            severity = row[self.position["severity"]]
            if severity:
                umbrella["severity"] = severity
            event["severity"] = SEVERITIES.get(severity, 0)
        if types:
            event["type"] = types
        return event


def parse_time(text: str) -> float:
    """Epoch seconds of Umbrella's UTC `YYYY-MM-DD HH:MM:SS` (ISO 8601 also taken); ValueError otherwise."""
    cached = _TIMES.get(text)
    if cached is not None:
        return cached
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"bad timestamp {text!r}: expected UTC YYYY-MM-DD HH:MM:SS") from None
    if len(text) < 10 or text[4] != "-":
        raise ValueError(f"bad timestamp {text!r}: expected UTC YYYY-MM-DD HH:MM:SS")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    seconds = parsed.timestamp()
    if len(_TIMES) >= _CACHE_LIMIT:
        _TIMES.clear()
    _TIMES[text] = seconds
    return seconds


def is_ip(text: str) -> bool:
    """Whether `text` is an IPv4/IPv6 address (cached: a file names the same few addresses again and again)."""
    known = _IPS.get(text)
    if known is None and _PLAIN_IPV4.fullmatch(text):
        return True
    if known is None:
        try:
            ipaddress.ip_address(text)
            known = True
        except ValueError:
            known = False
        if len(_IPS) >= _CACHE_LIMIT:
            _IPS.clear()
        _IPS[text] = known
    return known


_OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
# A dotted quad of decimals 0-255 without leading zeros: exactly what ipaddress accepts as IPv4, found without
# building an address object; anything else (IPv6, a name, a leading zero) is left to ipaddress.
_PLAIN_IPV4 = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}")
_TIMES: dict[str, float] = {}
_IPS: dict[str, bool] = {}
_SPLITS: dict[str, tuple[str, ...]] = {}


def _put(fields: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = fields
    for part in path[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        node = child
    node[path[-1]] = value


def _integer(value: str, column: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"column {column} is not a number: {value!r}") from None


def _split(value: str) -> list[str]:
    """A comma list as the integration splits it (`,\\s*`, no empty items); cached, as rows repeat their lists."""
    parts = _SPLITS.get(value)
    if parts is None:
        parts = tuple(part for part in (piece.strip() for piece in value.split(",")) if part)
        if len(_SPLITS) >= _CACHE_LIMIT:
            _SPLITS.clear()
        _SPLITS[value] = parts
    return list(parts)


def _url_parts(url: str) -> dict[str, Any]:
    """`url.*` from `url.original`, as the ingest `uri_parts` processor fills them (kept as is when unparsable)."""
    parts: dict[str, Any] = {"original": url}
    try:
        split = urlsplit(url)
        port = split.port
    except ValueError:
        return parts
    if split.scheme:
        parts["scheme"] = split.scheme
    if split.hostname:
        parts["domain"] = split.hostname
    if port is not None:
        parts["port"] = port
    if split.path:
        parts["path"] = split.path
        name = split.path.rsplit("/", 1)[-1]
        if "." in name:
            parts["extension"] = name.rsplit(".", 1)[-1]
    if split.query:
        parts["query"] = split.query
    if split.fragment:
        parts["fragment"] = split.fragment
    if split.username:
        parts["username"] = split.username
    if split.password:
        parts["password"] = split.password
    if split.scheme and split.netloc:
        parts["full"] = url
    return parts


def _user_from_display_name(user: dict[str, Any]) -> None:
    """`Full Name (name@domain)` → user.full_name, user.email, user.name, user.domain, user.id (the e-mail)."""
    text = user["name"]
    if text.endswith(")") and " (" in text:
        full_name, _, email = text[:-1].rpartition(" (")
        name, _, domain = email.partition("@")
        if full_name and name and domain:
            user.update(full_name=full_name, email=email, name=name, domain=domain)
    if "email" in user:
        user["id"] = user["email"]


def _audit_text(before: str, after: str, umbrella: dict[str, Any]) -> None:
    """The audit record's `before`/`after` settings text: kept as lines, and read as `key: value` pairs."""
    audit = umbrella.setdefault("audit", {})
    plain = audit.get("type") == "global_settings"
    for side, text in (("before", before), ("after", after)):
        if not text:
            continue
        if plain:
            audit[side] = text
            continue
        lines = text.split("\n")
        audit[side] = lines
        pairs = {}
        for line in lines:
            key, colon, value = line.partition(":")
            if colon and key.strip():
                pairs[key.strip()] = value.lstrip()
        if pairs:
            audit[f"{side}_values"] = pairs


def _related(fields: dict[str, Any], umbrella: dict[str, Any], ips: list[str], hosts: list[str]) -> dict[str, Any]:
    """`related.*`: the addresses, host and DNS names, user and hashes the row names, each once."""
    related: dict[str, list[Any]] = {}
    user = fields.get("user")
    if user and "name" in user:
        related["user"] = [user["name"]]
    if ips:
        related["ip"] = list(dict.fromkeys(ips))
    host = fields.get("host")
    if host:
        hosts.insert(0, host["name"])
    if "fqdns" in umbrella:
        hosts.extend(umbrella["fqdns"])
    if hosts:
        related["hosts"] = list(dict.fromkeys(hosts))
    file_hash = fields["file"].get("hash", {}).get("sha256") if "file" in fields else None
    hashes = [value for value in (umbrella.get("sha_sha256"), file_hash) if value]
    if hashes:
        related["hash"] = list(dict.fromkeys(hashes))
    return related
