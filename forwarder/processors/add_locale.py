"""`add_locale`: the host's time zone as `event.timezone`, read at each event so a DST change shows at once.

`format: offset` (the default) writes the UTC offset as `+01:00`;
`format: abbreviation` writes the zone's abbreviation (`CET`, `EST`), as
Filebeat does. Ingest pipelines use it to read local timestamps correctly.
"""

from __future__ import annotations

import time

from forwarder.pipeline.client import Processor
from forwarder.pipeline.event import Event
from forwarder.pipeline.field_path import FieldPath, put_field
from forwarder.schema.declared import STRING, Setting, read_settings
from forwarder.schema.section import Section

ADD_LOCALE_SETTINGS = (
    Setting("format", STRING, "offset", "`offset` (`+01:00`) or `abbreviation` (`CET`)",
            choices=("offset", "abbreviation")),
)

_TIMEZONE = FieldPath("event.timezone")


def local_offset_text() -> str:
    offset = time.localtime().tm_gmtoff
    sign = "-" if offset < 0 else "+"
    hours, minutes = divmod(abs(offset) // 60, 60)
    return f"{sign}{hours:02d}:{minutes:02d}"


def local_abbreviation() -> str:
    return time.localtime().tm_zone


def build_add_locale(options: Section) -> Processor:
    values = read_settings(options, ADD_LOCALE_SETTINGS)
    zone = local_abbreviation if values["format"] == "abbreviation" else local_offset_text

    def add_locale(event: Event) -> Event:
        put_field(event, _TIMEZONE, zone())
        return event

    return add_locale
