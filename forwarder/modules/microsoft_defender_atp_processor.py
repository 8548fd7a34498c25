"""The `microsoft_defender_atp` processor: a Defender for Endpoint alert, as the `defender-atp` input read it, on ECS.

The input ships the alert's JSON text in `message` and the alert in
`event.record`. This processor replaces `message` with the alert's title (as
Filebeat does), adds the ECS fields of `microsoft_defender_atp_ecs`, takes the
alert's last update time as `@timestamp`, and keeps the JSON text in
`event.original` when asked. An event without an alert record raises, so the
pipeline's error policy forwards it raw and tags it.
"""

from __future__ import annotations

from typing import Any

from forwarder.modules.microsoft_defender_atp_ecs import map_alert
from forwarder.pipeline.client import Processor
from forwarder.pipeline.event import Event
from forwarder.pipeline.processors import build_copy_fields
from forwarder.schema.declared import BOOLEAN, Setting, read_settings
from forwarder.schema.section import Section

SETTINGS = (
    Setting("preserve_original_event", BOOLEAN, False, "copy the alert's JSON text to `event.original`"),
)


def build_microsoft_defender_atp(options: Section) -> Processor:
    """`microsoft_defender_atp: {preserve_original_event: false}`."""
    preserve_original_event = read_settings(options, SETTINGS)["preserve_original_event"]

    def microsoft_defender_atp(event: Event) -> Event:
        record = event.record
        if type(record) is not dict:
            raise TypeError(f"the event carries no Defender alert (got {type(record).__name__}): "
                            "microsoft_defender_atp maps the records of the defender-atp input")
        original = event.fields.get("message") if preserve_original_event else None
        mapped = map_alert(record)
        event.fields.pop("message", None)
        event.fields.update(mapped.fields)
        if mapped.timestamp is not None:
            event.timestamp = mapped.timestamp
        if original is not None:
            event.fields["event"]["original"] = original
        return event

    return microsoft_defender_atp


def defender_atp_processors(normalize: bool, preserve_original_event: bool) -> list[Processor]:
    """The defender_atp fileset's processors for its `normalize` and `preserve_original_event` settings.

    Without normalizing, `message` is the alert's JSON (what Filebeat's ingest pipeline parses), and
    `preserve_original_event` copies it to `event.original`, as Filebeat's `copy_fields` would.
    """
    if normalize:
        return [build_microsoft_defender_atp(_options({"preserve_original_event": preserve_original_event}))]
    if preserve_original_event:
        return [build_copy_fields(_options({"fields": [{"from": "message", "to": "event.original"}]}))]
    return []


def _options(values: dict[str, Any]) -> Section:
    """Options the module writes itself (always valid), read the way a config's would be."""
    return Section(values, "", "microsoft module", [])
