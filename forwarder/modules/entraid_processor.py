"""The `entraid_ecs` processor: a Graph record, as the `graph` input read it, mapped onto ECS.

The input only fetches: it ships the record's JSON text in `message`, the
record in `event.record` and its Graph stream (signinlogs, auditlogs,
provisioning, risk_detection, risky_user, alert, incident) in
`event.record_kind`. This processor adds the ECS fields after `message`, in
the order `entraid_ecs.normalize` writes them, takes the record's own time as
`@timestamp`, and copies `message` to `event.original` when asked, so the
wire bytes are those the input produced when it did the mapping itself.

It runs as a module processor (first, under the pipeline client's error
policy): it computes everything before it changes the event, and raises for an
event that carries no Graph record, which the client then forwards raw and tags.
"""

from __future__ import annotations

from typing import Any

from forwarder.modules.entraid_ecs import normalize
from forwarder.pipeline.client import Processor
from forwarder.pipeline.event import Event
from forwarder.pipeline.processors import build_copy_fields
from forwarder.schema.declared import BOOLEAN, Setting, read_settings
from forwarder.schema.section import Section

SETTINGS = (
    Setting("preserve_original_event", BOOLEAN, False, "copy `message` (the Graph record's JSON) to "
            "`event.original`"),
)


def build_entraid_ecs(options: Section) -> Processor:
    """`entraid_ecs: {preserve_original_event: false}`; unknown options are reported by the caller's finish()."""
    preserve_original_event = read_settings(options, SETTINGS)["preserve_original_event"]

    def entraid_ecs(event: Event) -> Event:
        fields = event.fields
        original = fields["message"] if preserve_original_event else None
        normalized = normalize(_graph_record(event), event.record_kind or "")
        fields.update(normalized.fields)
        if normalized.timestamp is not None:
            event.timestamp = normalized.timestamp
        if original is not None:
            fields.setdefault("event", {})["original"] = original
        return event

    return entraid_ecs


def fileset_processors(normalize_records: bool, preserve_original_event: bool) -> list[Processor]:
    """The processors of an entraid fileset for its `normalize` and `preserve_original_event` settings.

    Without normalizing, `preserve_original_event` still copies the raw record in `message` to
    `event.original` (with Filebeat's `copy_fields`), as the `graph` input always has.
    """
    if normalize_records:
        return [build_entraid_ecs(_options({"preserve_original_event": preserve_original_event}))]
    if preserve_original_event:
        return [build_copy_fields(_options({"fields": [{"from": "message", "to": "event.original"}]}))]
    return []


def _graph_record(event: Event) -> dict[str, Any]:
    record = event.record
    if type(record) is not dict:
        raise TypeError(f"the event carries no Graph record (got {type(record).__name__}): entraid_ecs maps the "
                        "records of the graph input, as a module processor or the input's own")
    return record


def _options(values: dict[str, Any]) -> Section:
    """Options the module writes itself (always valid), read the way a config's would be."""
    return Section(values, "", "entraid module", [])
