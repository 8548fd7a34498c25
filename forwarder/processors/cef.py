"""decode_cef: an ArcSight Common Event Format record in a string field becomes `cef.*` and ECS fields, as in Filebeat.

`CEF:Version|Vendor|Product|Version|Event Class ID|Name|Severity|ext…` may
follow other text (a syslog header, an appliance's own time stamp): the
record starts at the first `CEF:`. Header fields unescape `\\|` and `\\\\`;
extensions are `key=value` pairs whose values may hold spaces (a value ends
where the next ` key=` begins) and unescape `\\=`, `\\\\`, `\\n`, `\\r`.
Each extension is written under its full name (`src` → `sourceAddress`, see
cef_keys.py), typed ones converted, and with `ecs: true` the common ones
copied onto ECS fields (`source.ip`, `destination.user.name`, `event.action`,
…) along with `observer.vendor/product/version`, `event.code` and
`event.severity` from the header.

A record that is not CEF (no `CEF:`, fewer than seven header fields) makes
the processor raise, so the pipeline forwards the event unchanged with
`error.message`; `ignore_failure` forwards it unchanged without that. An
extension value of the wrong type is kept as text, and named in
`error.message`, while the rest of the record is decoded.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime
from typing import Any

from forwarder.pipeline.client import Processor
from forwarder.pipeline.event import Event
from forwarder.pipeline.field_path import MISSING, FieldError, FieldPath, put_field, set_error_message
from forwarder.processors.cef_keys import BY_NAME
from forwarder.schema.declared import BOOLEAN, STRING, Setting, ignored, read_settings
from forwarder.schema.section import Section

HEADER_FIELDS = ("version", "device.vendor", "device.product", "device.version", "device.event_class_id", "name",
                 "severity")
_EXTENSION_KEY = re.compile(r"(?:^|(?<=\s))([A-Za-z0-9_.\-\[\]]+)=")
_EXTENSION_ESCAPE = re.compile(r"\\(.)")
_HEADER_ESCAPE = re.compile(r"\\([\\|])")
_MAC = re.compile(r"^[0-9A-Fa-f]{2}([:-]?[0-9A-Fa-f]{2}){5}$")
SEVERITY_WORDS = {"unknown": 0, "low": 0, "medium": 4, "high": 7, "very-high": 9}
TIME_FORMATS = ("%b %d %Y %H:%M:%S.%f", "%b %d %Y %H:%M:%S", "%b %d %H:%M:%S.%f", "%b %d %H:%M:%S")

SETTINGS = (
    Setting("field", STRING, "message", "the string field holding the CEF record"),
    Setting("target_field", STRING, "cef", "the object the decoded header and `extensions` are written under"),
    Setting("ecs", BOOLEAN, True, "also write the ECS fields Filebeat derives (`source.ip`, `event.action`, "
            "`observer.product`, …)"),
    Setting("ignore_missing", BOOLEAN, False, "a missing `field` is not an error"),
    Setting("ignore_failure", BOOLEAN, False, "a record that is not CEF is forwarded unchanged without "
            "`error.message`"),
    *ignored("id", doc="an identifier for this processor in Filebeat's logs; accepted, without effect"),
)


class CefError(ValueError):
    """The text holds no CEF record."""


def parse_cef(text: str) -> tuple[dict[str, str], dict[str, str]]:
    """(header fields by HEADER_FIELDS name, extensions by the key as written), both unescaped."""
    start = text.find("CEF:")
    if start == -1:
        raise CefError("the field holds no CEF record (no 'CEF:')")
    record = text[start + 4:]
    parts: list[str] = []
    position = 0
    while len(parts) < len(HEADER_FIELDS):
        bar = _unescaped_bar(record, position)
        if bar == -1:
            raise CefError(f"incomplete CEF header: {len(parts) + 1} of 7 fields (version|vendor|product|"
                           "version|event class id|name|severity|)")
        parts.append(_HEADER_ESCAPE.sub(r"\1", record[position:bar]))
        position = bar + 1
    header = dict(zip(HEADER_FIELDS, parts, strict=True))
    if not header["version"].strip().isdigit():
        raise CefError(f"CEF version {header['version']!r} is not a number")
    return header, parse_extensions(record[position:])


def parse_extensions(text: str) -> dict[str, str]:
    """`key=value` pairs; a value runs to the space before the next key (escaped `\\=` never starts one)."""
    keys = [match for match in _EXTENSION_KEY.finditer(text) if not _escaped(text, match.end() - 1)]
    extensions: dict[str, str] = {}
    for index, match in enumerate(keys):
        end = keys[index + 1].start() if index + 1 < len(keys) else len(text)
        value = text[match.end():end].rstrip(" ") if index + 1 < len(keys) else text[match.end():end].rstrip()
        extensions[match.group(1)] = _EXTENSION_ESCAPE.sub(_unescape_extension, value)
    return extensions


def _unescaped_bar(text: str, position: int) -> int:
    while True:
        bar = text.find("|", position)
        if bar == -1 or not _escaped(text, bar):
            return bar
        position = bar + 1


def _escaped(text: str, index: int) -> bool:
    """Whether text[index] follows an odd number of backslashes."""
    count = 0
    while index - count - 1 >= 0 and text[index - count - 1] == "\\":
        count += 1
    return count % 2 == 1


def _unescape_extension(match: re.Match[str]) -> str:
    char = match.group(1)
    return {"n": "\n", "r": "\r"}.get(char, char)


def convert_value(value: str, kind: str, now: datetime | None = None) -> Any:
    """The typed value of an extension (ValueError when it is not of its kind); times as ISO 8601 UTC."""
    if kind == "integer":
        return int(value)
    if kind == "float":
        return float(value)
    if kind == "ip":
        return str(ipaddress.ip_address(value.strip()))
    if kind == "mac":
        if not _MAC.match(value):
            raise ValueError(f"{value!r} is not a MAC address")
        return value
    if kind == "time":
        return _parse_time(value, now or datetime.now(UTC))
    return value


def _parse_time(value: str, now: datetime) -> str:
    text = value.strip()
    if text.isdigit():
        moment = datetime.fromtimestamp(int(text) / 1000, UTC)
    else:
        zone = UTC
        for fmt in TIME_FORMATS:
            try:
                moment = datetime.strptime(text, fmt).replace(tzinfo=zone)
                break
            except ValueError:
                continue
        else:
            raise ValueError(f"{value!r} is not a CEF time (epoch ms or 'MMM dd yyyy HH:mm:ss')")
        if "%Y" not in fmt:
            moment = moment.replace(year=now.year)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def severity_number(severity: str) -> int | None:
    text = severity.strip()
    if text.isdigit():
        return int(text)
    return SEVERITY_WORDS.get(text.lower())


def decode(text: str, ecs: bool) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """(the `cef` object, ECS fields by dotted name, problems with single extension values)."""
    header, raw_extensions = parse_cef(text)
    cef: dict[str, Any] = {"version": header["version"], "name": header["name"], "severity": header["severity"],
                           "device": {key.split(".", 1)[1]: header[key] for key in HEADER_FIELDS
                                      if key.startswith("device.")}}
    ecs_fields: dict[str, Any] = {}
    if ecs:
        ecs_fields = {"observer.vendor": header["device.vendor"], "observer.product": header["device.product"],
                      "observer.version": header["device.version"], "event.code": header["device.event_class_id"]}
        severity = severity_number(header["severity"])
        if severity is not None:
            ecs_fields["event.severity"] = severity
    extensions: dict[str, Any] = {}
    problems = []
    for key, value in raw_extensions.items():
        full, kind, ecs_name = BY_NAME.get(key, (key, "string", None))
        try:
            typed = convert_value(value, kind)
        except ValueError as error:
            problems.append(f"{full}: {error}")
            extensions[full] = value
            continue
        extensions[full] = typed
        if ecs and ecs_name is not None:
            ecs_fields[ecs_name] = typed
    if extensions:
        cef["extensions"] = extensions
    return cef, ecs_fields, problems


def build_decode_cef(options: Section) -> Processor:
    values = read_settings(options, SETTINGS)
    source = FieldPath(values["field"])
    target = FieldPath(values["target_field"])
    ecs = values["ecs"]
    ignore_missing = values["ignore_missing"]
    ignore_failure = values["ignore_failure"]
    ecs_paths: dict[str, FieldPath] = {}

    def decode_cef(event: Event) -> Event:
        text = source.get(event)
        if text is MISSING:
            if ignore_missing or ignore_failure:
                return event
            raise CefError(f"the field {source.name} is missing")
        if not isinstance(text, str):
            if ignore_failure:
                return event
            raise CefError(f"the field {source.name} is not a string")
        try:
            cef, ecs_fields, problems = decode(text, ecs)
        except CefError:
            if ignore_failure:
                return event
            raise
        put_field(event, target, cef)
        for name, value in ecs_fields.items():
            path = ecs_paths.get(name) or ecs_paths.setdefault(name, FieldPath(name))
            try:
                put_field(event, path, value)
            except FieldError:
                problems.append(f"cannot write {name}: an existing field is in the way")
        if problems:
            set_error_message(event, "; ".join(problems))
        return event

    return decode_cef
