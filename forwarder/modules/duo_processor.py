"""The `duo_ecs` processor: a Duo Admin API log record, as the `duo` input read it, mapped onto ECS.

The input only fetches: it ships the record's JSON text in `message`, the
parsed record in `event.record` and its stream (auth, admin, telephony,
activity, trust_monitor, offline_enrollment) in `event.record_kind`. This
processor adds the ECS and `cisco_duo.*` fields after `message` (which it
keeps), takes the record's own time as `@timestamp` with its sub-second
precision, and copies `message` to `event.original` when asked.

It runs as a module processor, first, under the pipeline client's one error
policy: it computes everything before it changes the event, and raises for a
record it cannot map (not an object, or of an unknown stream), which the
client then forwards raw, tagged `_parse_failure` and counted.
"""

from __future__ import annotations

from forwarder.modules.duo_ecs import normalize
from forwarder.pipeline.client import Processor
from forwarder.pipeline.event import Event
from forwarder.schema.declared import BOOLEAN, Setting, read_settings
from forwarder.schema.section import Section

SETTINGS = (
    Setting("preserve_original_event", BOOLEAN, False, "copy `message` (the Duo record's JSON) to `event.original`"),
)


def build_duo_ecs(options: Section) -> Processor:
    """`duo_ecs: {preserve_original_event: false}`; unknown options are reported by the caller's finish()."""
    return duo_ecs_processor(read_settings(options, SETTINGS)["preserve_original_event"])


def duo_ecs_processor(preserve_original_event: bool) -> Processor:
    """The mapping of one event, with `preserve_original_event` already read (the module builds it so)."""

    def duo_ecs(event: Event) -> Event:
        fields = event.fields
        mapped = normalize(event.record, event.record_kind or "")
        original = fields.get("message") if preserve_original_event else None
        fields.update(mapped.fields)
        if mapped.timestamp is not None:
            event.timestamp = mapped.timestamp
        if original is not None:
            fields["event"]["original"] = original
        return event

    return duo_ecs
