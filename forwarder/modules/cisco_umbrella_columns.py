"""Cisco Umbrella's S3 log export: which log type a file holds, and its CSV columns by position.

Umbrella writes one folder per log type (`<prefix>/dnslogs/2024-06-10/….csv.gz`);
every row is a CSV line whose columns are positional and whose later schema
versions only append columns. So the column list of each type below is the
newest one known (names as Elastic's `cisco_umbrella` integration uses them,
and Umbrella's documented web-log columns after those), `minimum` is the
oldest schema's column count, and whatever a newer schema appends past the
list is kept as `cisco.umbrella.extra_columns` instead of being an error.

Rows are parsed with Python's `csv` (quoted commas, `""` escapes, a stray
space after a comma, newlines inside a quoted audit `before`/`after`).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field

TIME = "time"
ACTION = "action"

_DNS = (
    TIME, "cisco.umbrella.identity", "cisco.umbrella.identities", "source.address", "source.nat.ip", ACTION,
    "dns.question.type", "dns.response_code", "dns.question.name", "cisco.umbrella.categories",
    "cisco.umbrella.policy_identity_type", "cisco.umbrella.identity_types", "cisco.umbrella.blocked_categories",
)
_IP = (
    TIME, "cisco.umbrella.identity", "source.address", "source.port", "destination.address", "destination.port",
    "cisco.umbrella.categories",
)
_PROXY = (
    TIME, "cisco.umbrella.identity", "source.address", "source.nat.ip", "destination.address",
    "http.request.mime_type", ACTION, "url.original", "http.request.referrer", "user_agent.original",
    "http.response.status_code", "http.request.bytes", "http.response.bytes", "http.response.body.bytes",
    "cisco.umbrella.sha_sha256", "cisco.umbrella.categories", "cisco.umbrella.av_detections", "cisco.umbrella.puas",
    "cisco.umbrella.amp_disposition", "cisco.umbrella.amp_malware_name", "cisco.umbrella.amp_score",
    "cisco.umbrella.policy_identity_type", "cisco.umbrella.blocked_categories", "cisco.umbrella.identities",
    "cisco.umbrella.identity_types", "http.request.method", "cisco.umbrella.dlp_status",
    "cisco.umbrella.certificate_errors", "file.name", "cisco.umbrella.ruleset_id", "rule.id",
    "cisco.umbrella.destination_lists_id", "cisco.umbrella.isolate_action", "cisco.umbrella.file_action",
    "cisco.umbrella.warn_status",
    # Umbrella's later web-log columns (docs.umbrella.com web-log-formats), which Elastic does not name.
    "cisco.umbrella.forwarding_method", "cisco.umbrella.producer", "cisco.umbrella.msp_organization_id",
    "cisco.umbrella.blocked_destination_countries", "cisco.umbrella.application_ids", "cisco.umbrella.hostname",
    "cisco.umbrella.datacenter", "cisco.umbrella.egress", "cisco.umbrella.server_name",
    "cisco.umbrella.time_based_rule", "cisco.umbrella.security_overridden",
    "cisco.umbrella.detected_response_file_type", "cisco.umbrella.warn_categories",
    "cisco.umbrella.organization_id",
)
_FIREWALL = (
    TIME, "cisco.umbrella.origin_id", "cisco.umbrella.identities", "cisco.umbrella.identity_types", "direction",
    "network.transport", "source.bytes", "source.address", "source.port", "destination.address",
    "destination.port", "cisco.umbrella.datacenter", "rule.id", ACTION, "cisco.umbrella.fqdns",
    "cisco.umbrella.destination_lists_id",
)
_INTRUSION = (
    TIME, "cisco.umbrella.identities", "cisco.umbrella.identity_types", "cisco.umbrella.gid", "cisco.umbrella.sid",
    "cisco.umbrella.message", "cisco.umbrella.signature_list_id", "severity", "cisco.umbrella.classification",
    "cisco.umbrella.cves", "network.protocol", "event.id", "source.address", "source.port", "destination.address",
    "destination.port", ACTION,
)
_DLP = (
    TIME, "event.provider", "event.id", "severity", "network.name", "file.owner", "file.name",
    "network.application", "url.original", ACTION, "rule.name", "cisco.umbrella.data_classification",
    "cisco.umbrella.data_identifier", "file.mime_type", "file.size", "file.hash.sha256", "cisco.umbrella.file_label",
)
_AUDIT = (
    "event.id", TIME, "user.email", "user.name", "cisco.umbrella.audit.type", ACTION, "source.address",
    "cisco.umbrella.audit.before", "cisco.umbrella.audit.after",
)


@dataclass(frozen=True)
class LogType:
    """One Umbrella log type: its folder name, its columns in order, and the oldest schema's column count."""

    folder: str
    columns: tuple[str, ...]
    minimum: int
    index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", {name: position for position, name in enumerate(self.columns)})


# The oldest schemas: DNS v1 had 10 columns, web (proxy) v2 23, cloud firewall 14 (Filebeat's module lists).
LOG_TYPES: dict[str, LogType] = {log_type.folder: log_type for log_type in (
    LogType("dnslogs", _DNS, 10),
    LogType("proxylogs", _PROXY, 23),
    LogType("iplogs", _IP, 7),
    LogType("cloudfirewalllogs", _FIREWALL, 14),
    LogType("firewalllogs", _FIREWALL, 14),
    LogType("intrusionlogs", _INTRUSION, 17),
    LogType("dlplogs", _DLP, 17),
    LogType("auditlogs", _AUDIT, 9),
)}


def log_type_of(key: str) -> LogType | None:
    """The log type whose folder the object key (or object URL) names; None when no folder is a known type.

    The last matching path segment wins, so a bucket prefix that happens to contain a type's name
    does not hide the real folder (`dnslogs-archive/proxylogs/2024-06-10/…` is proxylogs).
    """
    for segment in reversed(key.split("/")):
        log_type = LOG_TYPES.get(segment)
        if log_type is not None:
            return log_type
    return None


# csv refuses a field longer than this; the fast path below must refuse the same lines.
_CSV_FIELD_LIMIT = csv.field_size_limit()


def parse_row(line: str) -> list[str]:
    """The values of one CSV record (which may span lines inside quotes); ValueError when it is not one record.

    Umbrella quotes every field, so most rows are `"a","b",…` with no quote inside a value. For exactly
    those (every `"` is a field's opening or closing quote) splitting on `","` gives what csv gives, at a
    fraction of the cost of a csv reader per row; any other row goes through csv.
    """
    if len(line) >= 2 and line[0] == '"' and line[-1] == '"' and len(line) <= _CSV_FIELD_LIMIT and \
            "\n" not in line and "\r" not in line and "\0" not in line:
        values = line[1:-1].split('","')
        # Two quotes per field means none is inside a value.
        if line.count('"') == 2 * len(values):
            return values
    try:
        rows = list(csv.reader((line,), skipinitialspace=True, strict=True))
    except csv.Error as error:
        raise ValueError(f"not a CSV record: {error}") from None
    if len(rows) != 1:
        raise ValueError(f"expected one CSV record, found {len(rows)}")
    return rows[0]
