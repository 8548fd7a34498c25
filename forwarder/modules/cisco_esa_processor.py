"""The `cisco_esa` processor: one Cisco Secure Email (ESA/CES) log line mapped onto ECS, at the edge.

An appliance writes one log type per subscription. A line read from a file
pushed by SCP/FTP looks like `Fri Apr  1 07:06:22 2022 Info: <message>` and
its log type is the subscription name at the head of the file name
(`mail_logs[.host].@20220401T070622.s`, in `log.file.path`). A line pushed
by syslog arrives as `Info: <message>` with the subscription name as the
syslog tag (`log.syslog.appname`); a syslog line stored in a file
(`<22>Mar 17 18:24:37 [host ]mail_logs: Info: …`) is recognised too. The
consolidated_event subscription is CEF, decoded with decode_cef's parser.

The appliance's stamps carry no zone: `timezone` says which one they are in
(syslog-pushed events were already stamped by the syslog input's own
`timezone`). `message` stays the line as read. A line whose log type cannot
be told, or a consolidated_event line that is not CEF, makes the processor
raise before it changes the event: the pipeline forwards it raw with
`error.message` and `_parse_failure`, counted in `mapping_failures`.
"""

from __future__ import annotations

import re
from datetime import datetime, tzinfo
from typing import Any

from forwarder.modules.cisco_esa_ecs import ALIASES, PARSERS, expand_prefix
from forwarder.pipeline.client import Processor
from forwarder.pipeline.event import Event
from forwarder.pipeline.field_path import deep_update
from forwarder.processors.cef import CefError
from forwarder.processors.cef import decode as decode_cef
from forwarder.processors.syslog_message import TIMEZONE
from forwarder.schema.declared import Setting, read_settings
from forwarder.schema.section import Section

CONSOLIDATED = "consolidated_event"
FILE_NAME = re.compile(r"(?:^|[\\/])(?P<type>[A-Za-z0-9_-]+)(?:\.(?P<host>[^\\/@]+?))?\.@[^\\/]*\.s$")
FILE_LINE = re.compile(r"^(?P<stamp>[A-Z][a-z]{2} +[A-Z][a-z]{2} +\d{1,2} \d\d:\d\d:\d\d \d{4}):? (?P<rest>.*)$",
                       re.DOTALL)
SYSLOG_LINE = re.compile(r"^(?:<\d{1,3}>)?(?P<stamp>[A-Z][a-z]{2} +\d{1,2} \d\d:\d\d:\d\d) (?:(?P<host>\S+) )?"
                         r"(?P<type>[A-Za-z0-9_-]+): (?P<rest>.*)$", re.DOTALL)
LEVEL = re.compile(r"^(?P<level>Debug|Trace|Info|Information|Notice|Warning|Error|Critical|Alert|Emergency):"
                   r" ?(?P<body>.*)$", re.DOTALL)
CEF_IDS = {"ESAMID": "email.message_id", "ESAICID": "L.injection_connection_id",
           "ESADCID": "L.delivery_connection_id", "ESARID": "L.recipient_id"}
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")

SETTINGS = (
    Setting("timezone", TIMEZONE, "Local", "the zone of the appliance's stamps in files, which carry none: `Local`, "
            "`UTC`, an offset (`+0200`) or an IANA name (`Europe/Berlin`)"),
)


def build_cisco_esa(options: Section) -> Processor:
    """`cisco_esa: {timezone: …}`; unknown options are reported by the caller's finish()."""
    zone: tzinfo | None = read_settings(options, SETTINGS)["timezone"]

    def cisco_esa(event: Event) -> Event:
        fields = event.fields
        message = fields.get("message")
        if not isinstance(message, str):
            raise ValueError("the event has no log line in message")
        timestamp, mapped = map_line(message.rstrip("\r\n"), *_source_type(fields), zone)
        deep_update(fields, mapped, overwrite=True, copy=False)
        if timestamp is not None:
            event.timestamp = timestamp
        return event

    return cisco_esa


def esa_processor(zone_name: str | None, var_section: Section) -> Processor:
    """The fileset's mapping; a wrong `var.timezone` is reported against the module file's var section."""
    options = {"timezone": zone_name} if zone_name is not None else {}
    return build_cisco_esa(Section(options, var_section.path, var_section.source, var_section.problems))


def _source_type(fields: dict[str, Any]) -> tuple[str | None, str | None]:
    """(log type, host) from the file name, else (syslog tag, None)."""
    log = fields.get("log")
    if isinstance(log, dict):
        path = log.get("file", {}).get("path") if isinstance(log.get("file"), dict) else None
        if isinstance(path, str):
            match = FILE_NAME.search(path)
            if match:
                return match.group("type"), match.group("host")
        syslog = log.get("syslog")
        if isinstance(syslog, dict) and isinstance(syslog.get("appname"), str):
            return syslog["appname"], None
    return None, None


def map_line(line: str, log_type: str | None, host: str | None,
             zone: tzinfo | None) -> tuple[float | None, dict[str, Any]]:
    """(@timestamp or None, the nested fields to merge into the event); ValueError when it cannot be mapped."""
    timestamp = None
    rest = line
    stamped = FILE_LINE.match(line)
    if stamped:
        timestamp = _epoch(datetime.strptime(stamped.group("stamp"), "%a %b %d %H:%M:%S %Y"), zone)
        rest = stamped.group("rest")
    else:
        syslog_line = SYSLOG_LINE.match(line)
        if syslog_line:
            timestamp = _syslog_epoch(syslog_line.group("stamp"), zone)
            log_type = log_type or syslog_line.group("type")
            host = host or syslog_line.group("host")
            rest = syslog_line.group("rest")
    if not log_type:
        raise ValueError("cannot tell the ESA log type: no <subscription>[.<host>].@<time>.s file name and no "
                         "syslog tag")
    flat: dict[str, Any] = {"L.category.name": log_type}
    if host:
        flat["L.host"] = host
    kind = ALIASES.get(log_type, log_type)
    if kind == CONSOLIDATED or rest.startswith("CEF:"):
        flat.update(_consolidated(rest))
        categories = ["email"]
    else:
        leveled = LEVEL.match(rest)
        body = rest
        if leveled:
            flat["log.level"] = leveled.group("level").lower()
            body = leveled.group("body")
        parser = PARSERS.get(kind)
        categories = []
        if parser is not None:
            body_parser, categories = parser
            flat.update(body_parser(body))
    for name in ("email.from.address", "email.to.address"):
        if isinstance(flat.get(name), str):
            flat[name] = [flat[name]]
    related = [flat[name] for name in ("source.ip", "destination.ip") if isinstance(flat.get(name), str)]
    if related:
        flat["related.ip"] = list(dict.fromkeys(related))
    flat["event.kind"] = "event"
    if categories:
        flat["event.category"] = list(categories)
    return timestamp, nest(expand_prefix(flat))


def _consolidated(rest: str) -> dict[str, Any]:
    try:
        cef, ecs_fields, _ = decode_cef(rest, True)
    except CefError as error:
        raise ValueError(f"consolidated_event line is not CEF: {error}") from None
    flat: dict[str, Any] = {"cef": cef, **ecs_fields}
    extensions = cef.get("extensions", {})
    for key, value in extensions.items():
        if key in CEF_IDS:
            field = CEF_IDS[key]
            flat[field] = value if field == "email.message_id" else _integer(value)
        elif key.startswith("ESA") and len(key) > 3:
            flat["L." + _CAMEL.sub("_", key[3:]).lower()] = value
    sender = extensions.get("sourceUserName")
    if isinstance(sender, str) and sender:
        flat["email.from.address"] = [sender]
    recipients = extensions.get("destinationUserName")
    if isinstance(recipients, str) and recipients:
        flat["email.to.address"] = [part.strip() for part in re.split(r"[,;]", recipients) if part.strip()]
    subject = extensions.get("message")
    if isinstance(subject, str):
        flat["email.subject"] = subject[1:-1] if len(subject) > 1 and subject[0] == subject[-1] == "'" else subject
        flat.pop("message", None)
    return flat


def _integer(value: Any) -> Any:
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


def _epoch(moment: datetime, zone: tzinfo | None) -> float:
    return (moment if zone is None else moment.replace(tzinfo=zone)).timestamp()


def _syslog_epoch(stamp: str, zone: tzinfo | None) -> float:
    """An RFC 3164 stamp has no year: this year, or last year when that would be more than a day ahead."""
    now = datetime.now(zone)
    moment = datetime.strptime(f"{now.year} {stamp}", "%Y %b %d %H:%M:%S")
    epoch = _epoch(moment, zone)
    if epoch - now.timestamp() > 86400:
        epoch = _epoch(moment.replace(year=now.year - 1), zone)
    return epoch


def nest(flat: dict[str, Any]) -> dict[str, Any]:
    """Dotted names → nested objects."""
    nested: dict[str, Any] = {}
    for name, value in flat.items():
        node = nested
        *parents, leaf = name.split(".")
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return nested

