"""`timestamp`: parse a field with Go layouts (as Filebeat configs write them) into `@timestamp` or another field.

Layouts are tried in order; `UNIX` (seconds, with a fraction) and `UNIX_MS`
(milliseconds) read epoch numbers. A layout without a zone reads the time in
`timezone`; one without a year takes the current year, as Filebeat does. The
`test` values are parsed when the config loads, so a layout that does not fit
the data is a config error instead of a stream of failed events.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from forwarder.pipeline.client import Processor
from forwarder.pipeline.event import Event, format_timestamp
from forwarder.pipeline.field_path import MISSING, FieldError, FieldPath, put_field
from forwarder.processors.go_time import LayoutError, compile_layout
from forwarder.processors.go_values import go_text
from forwarder.schema.declared import BOOLEAN, STRING, STRINGS, Setting, ignored, read_settings
from forwarder.schema.section import Section

TIMESTAMP_SETTINGS = (
    Setting("field", STRING, doc="the field holding the time text"),
    Setting("target_field", STRING, "@timestamp", "the field the time is written to (other than `@timestamp`: as "
            "`2006-01-02T15:04:05.000Z` text)"),
    Setting("layouts", STRINGS, doc="Go reference-time layouts tried in order (`2006-01-02T15:04:05.999Z07:00`, "
            "`Jan _2 15:04:05`), or `UNIX` / `UNIX_MS` for epoch seconds / milliseconds"),
    Setting("timezone", STRING, "UTC", "the zone of times that carry none: an IANA name, `Local`, or an offset "
            "such as `+0200`"),
    Setting("ignore_missing", BOOLEAN, False, "a missing `field` is not a failure"),
    Setting("ignore_failure", BOOLEAN, False, "a value no layout parses leaves the event as it is instead of "
            "failing it"),
    Setting("test", STRINGS, [], "sample values each of which must parse with `layouts` when the config loads"),
    *ignored("id"),
)

_OFFSET = re.compile(r"([+-])(\d{2}):?(\d{2})?")


def parse_zone(text: str) -> tzinfo:
    """ValueError when `text` is no zone name or offset."""
    if text == "Local":
        return datetime.now().astimezone().tzinfo or UTC
    if text.upper() == "UTC":
        return UTC
    offset = _OFFSET.fullmatch(text)
    if offset:
        sign = -1 if offset.group(1) == "-" else 1
        return timezone(sign * timedelta(hours=int(offset.group(2)), minutes=int(offset.group(3) or 0)))
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        hint = "use an IANA name such as Europe/Paris, Local, or +0200"
        raise ValueError(f"unknown time zone {text!r} ({hint})") from None


class TimeParser:
    """Tries each layout in turn; `parse` returns epoch seconds or raises LayoutError."""

    def __init__(self, layouts: list[str], zone: tzinfo) -> None:
        self.zone = zone
        self.layouts = [layout if layout in ("UNIX", "UNIX_MS") else compile_layout(layout) for layout in layouts]

    def parse(self, value: Any) -> float:
        """Epoch layouts take numbers or numeric text; Go layouts take text only, as in Filebeat."""
        for layout in self.layouts:
            try:
                if layout == "UNIX":
                    return _epoch_number(value)
                if layout == "UNIX_MS":
                    return _epoch_number(value) / 1000
                if isinstance(value, str):
                    return layout.parse(value, self.zone, datetime.now(self.zone).year).timestamp()
            except (LayoutError, ValueError, OverflowError):
                continue
        raise LayoutError(f"no layout matches {go_text(value)[:100]!r}")


def _epoch_number(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("a boolean is not a time")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        return float(value)
    raise ValueError(f"a {type(value).__name__} is not a time")


def build_timestamp(options: Section) -> Processor:
    values = read_settings(options, TIMESTAMP_SETTINGS)
    source = FieldPath(values["field"] or "")
    target = FieldPath(values["target_field"])
    layouts = values["layouts"] or []
    if not layouts:
        values.error("layouts", "list at least one layout")
    try:
        zone = parse_zone(values["timezone"])
    except ValueError as exc:
        values.error("timezone", str(exc))
        zone = UTC
    parser = TimeParser(layouts, zone)
    for sample in values["test"]:
        try:
            parser.parse(sample)
        except LayoutError:
            values.error("test", f"{sample!r} does not parse with any of the layouts")
    ignore_missing, ignore_failure = values["ignore_missing"], values["ignore_failure"]

    def timestamp(event: Event) -> Event:
        value = source.get(event)
        if value is MISSING:
            if ignore_missing or ignore_failure:
                return event
            raise FieldError(f"failed to get time field {source.name}: key not found")
        try:
            moment = parser.parse(value)
        except LayoutError:
            if ignore_failure:
                return event
            raise FieldError(f"failed parsing time field {source.name}='{str(value)[:100]}'") from None
        if target.is_timestamp:
            event.timestamp = moment
        else:
            put_field(event, target, format_timestamp(moment))
        return event

    return timestamp

