"""Fields of one Cisco Secure Email (ESA) log message, by log type, as Elastic's cisco_secure_email_gateway has them.

Input is the message body after the time stamp and level (`MID 6 ICID 5
From: <a@b>`); output is a flat dict of dotted ECS names. Each log type is a
list of rules (a regular expression whose named groups are fields), tried in
order; the first that matches wins, and in mail_logs and bounces the
MID/ICID/DCID/RID found anywhere in the line are always added, so a line no
rule knows still carries its message and connection ids. Names under `L.`
live under `cisco_secure_email_gateway.log.`. Ids are integers (as Elastic
types them), except `email.message_id`, a keyword in ECS.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

PREFIX = "cisco_secure_email_gateway.log."
IP = r"[0-9A-Fa-f:.]+"
INTEGER_FIELDS = frozenset({
    "L.injection_connection_id", "L.delivery_connection_id", "L.recipient_id", "L.read_bytes", "L.risk_factor",
    "L.analysis_score", "file.size", "destination.port", "source.port", "http.response.status_code",
    "L.process_id", "L.sbrs_score",
})
# Group name → field name, for the names a regular expression group cannot spell.
GROUP_FIELDS = {
    "mid": "email.message_id", "icid": "L.injection_connection_id", "dcid": "L.delivery_connection_id",
    "rid": "L.recipient_id", "sender": "email.from.address", "recipient": "email.to.address",
    "subject": "email.subject", "src_ip": "source.ip", "dst_ip": "destination.ip", "dst_port": "destination.port",
    "dns_name": "dns.question.name", "user": "user.name", "file_name": "file.name", "file_size": "file.size",
    "file_type": "file.mime_type", "sha256": "file.hash.sha256", "status": "http.response.status_code",
    "method": "http.request.method", "url_path": "url.path", "http_version": "http.version",
    "agent": "user_agent.original", "tls_version": "tls.version", "tls_cipher": "tls.cipher",
}
Rule = tuple[re.Pattern[str], dict[str, Any]]


def _rule(pattern: str, **constants: Any) -> Rule:
    return re.compile(pattern), {f"L.{key}" if "." not in key else key: value for key, value in constants.items()}


MAIL_RULES: list[Rule] = [
    _rule(rf"^New SMTP ICID (?P<icid>\d+) interface (?P<interface>\S+) \((?P<dst_ip>{IP})\) address (?P<src_ip>{IP})"
          r" reverse dns host (?P<dns_name>\S+) verified (?P<verified>\S+)", connection_status="new",
          **{"network.protocol": "smtp"}),
    _rule(rf"^New SMTP DCID (?P<dcid>\d+) interface (?P<src_ip>{IP}) address (?P<dst_ip>{IP})"
          r"(?: port (?P<dst_port>\d+))?", connection_status="new", **{"network.protocol": "smtp"}),
    _rule(r"^Start MID (?P<mid>\d+) ICID (?P<icid>\d+)", message_status="start"),
    _rule(r"^MID (?P<mid>\d+) ICID (?P<icid>\d+) From: <(?P<sender>[^>]*)>"),
    _rule(r"^MID (?P<mid>\d+) ICID (?P<icid>\d+) RID (?P<rid>\d+) To: <(?P<recipient>[^>]*)>"),
    _rule(r"^MID (?P<mid>\d+) ready (?P<read_bytes>\d+) bytes from <(?P<sender>[^>]*)>", message_status="ready"),
    _rule(r"^(?:ICID|DCID) \d+ close", connection_status="close"),
    _rule(r"^(?P<message_status>Delivery start|Message done) DCID (?P<dcid>\d+) MID (?P<mid>\d+) to RID "
          r"\[(?P<rid>\d+)[^\]]*\](?: \[(?P<email_participants>[^\]]*)\])?"),
    _rule(r"^MID (?P<mid>\d+) RID \[(?P<rid>\d+)\] Response '?(?P<response>.*?)'?$"),
    _rule(r"^MID (?P<mid>\d+) Subject [\"'](?P<subject>.*)[\"']$"),
    _rule(r"^MID (?P<mid>\d+) Message-ID '(?P<email>.*)'$"),
    _rule(r"^MID (?P<mid>\d+) (?P<engine>SPF): (?P<identity_type>\w+) identity (?P<identity>\S+) (?P<verified>\w+)"),
    _rule(r"^MID (?P<mid>\d+) (?P<engine>DKIM): (?P<verified>\w+)"),
    _rule(r"^MID (?P<mid>\d+) (?P<engine>DMARC)(?::| Message from domain \S+,) (?P<verified>.*)$"),
    _rule(r"^MID (?P<mid>\d+) interim (?:AV )?verdict using (?P<engine>\S+) (?P<verdict>\S+)"),
    _rule(r"^MID (?P<mid>\d+) using engine: (?P<engine>\S+) (?P<verdict>.+)$"),
    _rule(r"^MID (?P<mid>\d+) (?P<engine>antivirus|Outbreak Filters|graymail):? (?:verdict )?(?P<verdict>\S+)"),
    _rule(r"^MID (?P<mid>\d+) DLP violation\. Severity: (?P<severity>\w+) \(Risk Factor: (?P<risk_factor>\d+)\)\."
          r"(?: DLP policy match: '(?P<dlp_policy>[^']*)')?"),
    _rule(r"^MID (?P<mid>\d+) matched all recipients for per-recipient policy (?P<policy>\S+) in the "
          r"(?P<policy_direction>\w+) table"),
    _rule(r"^MID (?P<mid>\d+) queued for delivery", message_status="queued for delivery"),
    _rule(r"^Message finished MID (?P<mid>\d+) (?P<message_status>\w+)"),
    _rule(r"^ICID (?P<icid>\d+) (?P<action>ACCEPT|RELAY|REJECT|TCPREFUSE|CONTINUE) SG (?P<sender_group>\S+) match "
          r"(?P<sender_group_match>.*?) SBRS (?P<sbrs_score>-?[\d.]+|None|rfc1918)(?: country (?P<country>.+))?$"),
    _rule(r"^(?:ICID|DCID) \d+ TLS success protocol (?P<tls_version>\S+) cipher (?P<tls_cipher>\S+)"),
    _rule(rf"^Internal SMTP Error: .* to host (?P<dst_ip>{IP}):(?P<dst_port>\d+) for recipient "
          r"(?P<recipient>[^\s:]+)"),
]
BOUNCE_RULES: list[Rule] = [
    _rule(r"^(?P<bounce_type>Bounced|Delayed): DCID (?P<dcid>\d+) MID (?P<mid>\d+) From:<(?P<sender>[^>]*)> "
          r"To:<(?P<recipient>[^>]*)> RID (?P<rid>\d+) - (?P<error_code>[\d.]+) - (?P<reason>.*?)"
          r"(?: \((?P<response>.*)\))?$"),
]
AUTHENTICATION_RULES: list[Rule] = [
    _rule(rf"^The user (?P<user>\S+) successfully logged on from (?P<src_ip>{IP})(?: using an? (?P<protocol>\S+) "
          r"connection)?", **{"event.outcome": "success", "event.action": "logged-on"}),
    _rule(rf"^An authentication attempt by the user (?P<user>\S+) from (?P<src_ip>{IP}) failed",
          **{"event.outcome": "failure", "event.action": "authentication-failed"}),
    _rule(r"^User (?P<user>\S+) was authenticated successfully", **{"event.outcome": "success"}),
    _rule(r"^User (?P<user>\S+) failed authentication", **{"event.outcome": "failure"}),
    _rule(rf"^The user (?P<user>\S+) logged out from (?P<src_ip>{IP})", **{"event.action": "logged-out"}),
]
ENGINE_RULES: list[Rule] = [
    _rule(r"^(?P<engine>\S+) (?:antispam|antivirus|graymail) - (?P<engine_subsystem>\S+) \((?P<process_id>\d+)\) "
          r": (?P<message>.*)$"),
    _rule(r"^(?P<engine>[\w ]+?) (?:antispam|antivirus): (?P<message>.*)$"),
]
AMP_RULES: list[Rule] = [
    _rule(r"^(?P<amp_action>File reputation query initiating|Response received for file reputation query from "
          r"\w+|File analysis upload initiating|Retrospective verdict received)\. (?P<detail>.*)$"),
]
GUI_RULES: list[Rule] = [
    _rule(rf"^req:(?P<src_ip>{IP}) user:(?P<user>\S+) id:(?P<session_id>\S+) (?P<status>\d{{3}}) (?P<method>[A-Z]+) "
          r"(?P<url_path>\S+) HTTP/(?P<http_version>[\d.]+)(?: (?P<agent>.*))?$"),
]
ID_TOKENS = re.compile(r"\b(MID|ICID|DCID|RID) \[?(\d+)")
AMP_DETAIL = re.compile(r"(File Name|MID|File Size|File Type|Disposition|Malware|Analysis Score|sha256|"
                        r"upload_action|verdict_source|suspected_categories) = ('[^']*'|[^,]*)")
AMP_DETAIL_FIELDS = {
    "File Name": "file_name", "MID": "mid", "File Size": "file_size", "File Type": "file_type",
    "Disposition": "disposition", "Malware": "threat_name", "Analysis Score": "analysis_score",
    "sha256": "sha256", "upload_action": "upload_action", "verdict_source": "verdict_source",
    "suspected_categories": "suspected_categories",
}


def _field(name: str) -> str:
    return GROUP_FIELDS.get(name) or f"L.{name}"


def _typed(field: str, value: str) -> Any:
    if field in INTEGER_FIELDS:
        try:
            return int(value.split()[0])
        except (ValueError, IndexError):
            return value
    return value


def apply_rules(rules: list[Rule], body: str) -> dict[str, Any] | None:
    for pattern, constants in rules:
        match = pattern.search(body)
        if match is None:
            continue
        fields = dict(constants)
        for name, value in match.groupdict().items():
            if value is not None and value != "":
                field = _field(name)
                fields[field] = _typed(field, value)
        return fields
    return None


def _with_ids(fields: dict[str, Any], body: str) -> dict[str, Any]:
    """MID/ICID/DCID/RID found anywhere in the line, unless a rule already set them."""
    for token, number in ID_TOKENS.findall(body):
        field = {"MID": "email.message_id", "ICID": "L.injection_connection_id",
                 "DCID": "L.delivery_connection_id", "RID": "L.recipient_id"}[token]
        fields.setdefault(field, number if token == "MID" else int(number))
    return fields


def mail_fields(body: str) -> dict[str, Any]:
    fields = apply_rules(MAIL_RULES, body) or apply_rules(BOUNCE_RULES, body) or {"L.message": body}
    return _with_ids(fields, body)


def bounce_fields(body: str) -> dict[str, Any]:
    return _with_ids(apply_rules(BOUNCE_RULES, body) or {"L.message": body}, body)


def amp_fields(body: str) -> dict[str, Any]:
    fields = apply_rules(AMP_RULES, body)
    if fields is None:
        return _with_ids({"L.message": body}, body)
    detail = fields.pop("L.detail", "")
    for key, value in AMP_DETAIL.findall(detail):
        field = _field(AMP_DETAIL_FIELDS[key])
        fields[field] = _typed(field, value.strip().strip("'"))
    return fields


def _rules_or_message(rules: list[Rule]) -> Callable[[str], dict[str, Any]]:
    def fields(body: str) -> dict[str, Any]:
        return apply_rules(rules, body) or {"L.message": body}

    return fields


def _message_only(body: str) -> dict[str, Any]:
    return {"L.message": body}


# Log type (the subscription name) → the parser of its message bodies, and its ECS categorisation.
PARSERS: dict[str, tuple[Callable[[str], dict[str, Any]], list[str]]] = {
    "mail_logs": (mail_fields, ["email"]),
    "bounces": (bounce_fields, ["email"]),
    "authentication": (_rules_or_message(AUTHENTICATION_RULES), ["authentication"]),
    "antispam": (_rules_or_message(ENGINE_RULES), ["email"]),
    "antivirus": (_rules_or_message(ENGINE_RULES), ["malware"]),
    "amp": (amp_fields, ["malware"]),
    "content_scanner": (_message_only, ["email"]),
    "system": (_message_only, ["host"]),
    "gui_logs": (_rules_or_message(GUI_RULES), ["web"]),
}
# The names a site may give the same subscriptions.
ALIASES = {"gui": "gui_logs", "http": "gui_logs", "mail": "mail_logs", "textmail": "mail_logs", "bounce": "bounces",
           "amp_logs": "amp", "scanning": "content_scanner"}


def expand_prefix(fields: dict[str, Any]) -> dict[str, Any]:
    """`L.x` → `cisco_secure_email_gateway.log.x`; other names as they are."""
    return {(PREFIX + name[2:] if name.startswith("L.") else name): value for name, value in fields.items()}
