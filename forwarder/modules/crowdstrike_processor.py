"""The `crowdstrike_falcon` processor: a Falcon SIEM Connector event, decoded by the `json_objects` parser, onto ECS.

The filestream input frames and decodes each pretty-printed event into
`crowdstrike` (`parsers: [{json_objects: {target: crowdstrike}}]`); this
processor adds the ECS fields, takes `eventCreationTime` as `@timestamp` and
sets `@metadata._id` to `<customerIDString>-<offset>`, the connector's own
position in the event stream, so an event read twice (a replay after a crash,
or the connector re-sending after its own restart) carries the same id and the
receiver can drop the copy.

An object the parser could not decode is already tagged `_parse_failure` with
its raw text and passes through untouched. A decoded object that is not a
connector event makes the processor raise before it changed anything: the
pipeline's one error policy forwards it as read, tagged and counted.
"""

from __future__ import annotations

from forwarder.modules.crowdstrike_falcon_ecs import map_falcon
from forwarder.pipeline.client import PARSE_FAILURE_TAG, Processor
from forwarder.pipeline.event import Event
from forwarder.schema.declared import BOOLEAN, Setting, read_settings
from forwarder.schema.section import Section

RECORD_FIELD = "crowdstrike"
SETTINGS = (
    Setting("preserve_original_event", BOOLEAN, False, "keep the event's JSON text (`message`, when the parser "
            "keeps it) in `event.original`"),
)


def build_crowdstrike_falcon(options: Section) -> Processor:
    """`crowdstrike_falcon: {preserve_original_event: false}`; unknown options are reported by the caller's finish()."""
    return crowdstrike_falcon_processor(read_settings(options, SETTINGS)["preserve_original_event"])


def crowdstrike_falcon_processor(preserve_original_event: bool) -> Processor:
    """The mapping, with `preserve_original_event` already read (the module builds it so)."""

    def crowdstrike_falcon(event: Event) -> Event:
        fields = event.fields
        record = fields.get(RECORD_FIELD)
        if record is None:
            tags = fields.get("tags")
            if isinstance(tags, list) and PARSE_FAILURE_TAG in tags:
                return event
            raise ValueError(f"the event has no decoded Falcon event in `{RECORD_FIELD}` (read the file with "
                             f"parsers: [{{json_objects: {{target: {RECORD_FIELD}}}}}])")
        mapped = map_falcon(record)
        original = fields.pop("message", None)
        for name, value in mapped.fields.items():
            existing = fields.get(name)
            if type(existing) is dict and type(value) is dict:
                existing.update(value)
            else:
                fields[name] = value
        if preserve_original_event and isinstance(original, str):
            fields["event"]["original"] = original
        if mapped.timestamp is not None:
            event.timestamp = mapped.timestamp
        if mapped.event_id is not None:
            event.meta["_id"] = mapped.event_id
        return event

    return crowdstrike_falcon
