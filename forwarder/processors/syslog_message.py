"""The `syslog` processor: a syslog line held in a field (read from a file, a queue, another input) parsed.

Filebeat's processor of that name, with its options (`field`, `format`,
`timezone`, `overwrite_keys`, `ignore_missing`, `ignore_failure`): the text is
parsed as RFC 3164 or RFC 5424 (or picked per message with `auto`) by the same
parser the `syslog` input uses, so a line gives the same `log.syslog.*`,
`@timestamp` and `message` whether it came over the network or from a file.

A text that is not syslog (no `<PRI>`, a malformed RFC 5424 header) makes the
processor raise before it changes the event, so the pipeline forwards the
event as it was with `error.message`; `ignore_failure` leaves it untouched
instead.
"""

from __future__ import annotations

from typing import Any

from forwarder.inputs.syslog_config import TIMEZONE
from forwarder.inputs.syslog_parser import FORMATS, SyslogParser
from forwarder.pipeline.client import Processor
from forwarder.pipeline.event import Event
from forwarder.schema.declared import BOOLEAN, STRING, Setting, read_settings
from forwarder.schema.section import Section

SETTINGS = (
    Setting("field", STRING, "message", "the field holding the syslog line"),
    Setting("format", STRING, "auto", "`rfc3164`, `rfc5424`, or `auto` (told apart per message)", choices=FORMATS),
    Setting("timezone", TIMEZONE, "Local", "zone of RFC 3164 stamps, which carry none: `Local`, `UTC`, an offset "
            "(`+0200`) or an IANA name (`Europe/Berlin`)"),
    Setting("overwrite_keys", BOOLEAN, True, "replace `message` and `log.syslog` when the event already has them; "
            "`false` keeps those and writes only the missing ones"),
    Setting("ignore_missing", BOOLEAN, False, "an event without `field` passes unchanged instead of failing"),
    Setting("ignore_failure", BOOLEAN, False, "a line that is not syslog leaves the event unchanged, with no error"),
)


def build_syslog(options: Section) -> Processor:
    """`syslog: {field: message, format: auto, timezone: Local}`."""
    values = read_settings(options, SETTINGS)
    parser = SyslogParser(values["format"], values["timezone"])
    source = values["field"]
    overwrite = values["overwrite_keys"]
    ignore_missing, ignore_failure = values["ignore_missing"], values["ignore_failure"]

    def syslog(event: Event) -> Event:
        text = event.get(source)
        if text is None:
            if ignore_missing:
                return event
            raise ValueError(f"field {source!r} is missing")
        if not isinstance(text, str):
            raise ValueError(f"field {source!r} is not a string")
        # The year of an RFC 3164 stamp is the one that puts it closest before the time the event was read.
        parsed = parser.parse(text.encode("utf-8", "surrogatepass"), now=event.timestamp)
        if parsed.error:
            if ignore_failure:
                return event
            raise ValueError(parsed.error)
        fields = event.fields
        log = fields.get("log")
        if not isinstance(log, dict):
            log = fields["log"] = {}
        if overwrite or not isinstance(log.get("syslog"), dict):
            log["syslog"] = parsed.syslog
        else:
            _fill_missing(log["syslog"], parsed.syslog)
        if overwrite or "message" not in fields:
            fields["message"] = parsed.message
        if parsed.timestamp is not None:
            event.timestamp = parsed.timestamp
        return event

    return syslog


def _fill_missing(existing: dict[str, Any], parsed: dict[str, Any]) -> None:
    for key, value in parsed.items():
        if key not in existing:
            existing[key] = value
        elif isinstance(existing[key], dict) and isinstance(value, dict):
            _fill_missing(existing[key], value)
