"""The `azure_ecs` processor: one Event Hubs record → the event of its `azure` fileset.

The `azure-eventhub` input emits each record of a message as an event with the
record's JSON text in `message`, the message's envelope (hub, consumer group,
partition, offset, sequence number, enqueued time) under `azure`, the enqueued
time as its timestamp, and the record itself in `event.record`. This processor
routes the record to its fileset by `category` (azure_routing), maps it to ECS
(azure_ecs) unless `normalize` is off, and writes the dataset fields; with
`normalize` off it names Filebeat's ingest pipeline in `@metadata.pipeline`
instead, so Elasticsearch does the mapping.

The order of the fields is what the wire carries (orjson does not sort keys),
so it is the order the input used when it did this itself: the mapping's
fields, `message`, `event.original`, the dataset fields, then the envelope
merged into `azure`.

A body that is not JSON reaches this processor as the input's raw
`_parse_failure` event, marked `record_kind` "unparsable_body" and without a
record: having no category, it gets the consumer's first fileset.
"""

from __future__ import annotations

import logging
from typing import Any

from forwarder import __version__
from forwarder.modules.azure_ecs import normalize
from forwarder.modules.azure_routing import FALLBACK_FILESET, FILESETS, CategoryRouter, Route, module_and_dataset
from forwarder.pipeline.event import Event
from forwarder.schema.declared import BOOLEAN, Setting, ValueType, read_settings
from forwarder.schema.section import Section
from forwarder.stats import InputStats

# The `record_kind` the input gives the one event of a body it could not parse (the contract with the input).
UNPARSABLE_BODY = "unparsable_body"

log = logging.getLogger("forwarder.modules.azure")


def put_dataset(fields: dict[str, Any], fileset: str) -> None:
    """Writes one record's `event.module`, `event.dataset` and `fileset.name`."""
    event = fields.get("event")
    if type(event) is not dict:
        event = fields["event"] = {}
    event["module"], event["dataset"] = module_and_dataset(fileset)
    fields["fileset"] = {"name": fileset}


def ingest_pipeline(fileset: str) -> str:
    """Filebeat's ingest pipeline for a fileset's raw records: `@metadata.pipeline` when `normalize` is off."""
    return f"filebeat-{__version__}-{module_and_dataset(fileset)[0]}-{fileset}-pipeline"


class AzureEcsProcessor:
    """Routes and maps the records of one consumer; counts (in /stats) and logs those outside its filesets."""

    def __init__(self, filesets: list[str], normalize: bool, preserve_original_event: bool) -> None:
        # The name the pipeline's mapping-failure message and log line give this processor.
        self.__name__ = "azure_ecs"
        self.filesets = list(filesets)
        self.normalize = normalize
        self.preserve_original_event = preserve_original_event
        self.router = CategoryRouter(self.filesets, on_new_category=self._publish_counts)
        self._input_id = "azure"
        self._stats: InputStats | None = None

    def bind_input(self, input_id: str, stats: InputStats) -> None:
        """Called by the pipeline client: the input whose log lines and /stats this processor reports into."""
        self._input_id = input_id
        self._stats = stats
        stats.extra["unexpected_categories"] = self.router.unexpected

    def __call__(self, event: Event) -> Event:
        if event.record_kind == UNPARSABLE_BODY:
            self._put_unparsable(event)
            return event
        route = self.router.route(event.record)
        if route.first_unexpected:
            self._log_unexpected(route, event)
        fileset = route.fileset
        # Everything is computed before the event changes: a mapping error leaves it as the input made it.
        fields, timestamp = normalize(event.record, fileset) if self.normalize else ({}, None)
        made = event.fields
        raw = made["message"]
        fields["message"] = raw
        if self.preserve_original_event:
            fields.setdefault("event", {})["original"] = raw
        put_dataset(fields, fileset)
        envelope = made["azure"]
        azure = fields.get("azure")
        if type(azure) is dict:
            azure.update(envelope)
        else:
            fields["azure"] = envelope
        event.fields = fields
        if timestamp is not None:
            event.timestamp = timestamp
        if not self.normalize:
            event.meta["pipeline"] = ingest_pipeline(fileset)
        return event

    def _put_unparsable(self, event: Event) -> None:
        """The dataset of the consumer's first fileset, placed before the envelope as for a record."""
        if not self.filesets:
            return
        fileset = self.filesets[0]
        fields = event.fields
        envelope = fields.pop("azure", None)
        put_dataset(fields, fileset)
        if envelope is not None:
            fields["azure"] = envelope
        if not self.normalize:
            event.meta["pipeline"] = ingest_pipeline(fileset)

    def _log_unexpected(self, route: Route, event: Event) -> None:
        envelope = event.fields.get("azure")
        hub = envelope.get("eventhub") if type(envelope) is dict else None
        log.info("%s: event hub %r carries %s records (fileset %s, not enabled on this hub); forwarding them as "
                 "%s", self._input_id, hub, route.category or "(none)", route.fileset,
                 module_and_dataset(route.fileset)[1])

    def _publish_counts(self, counts: dict[str, int]) -> None:
        if self._stats is not None:
            self._stats.extra["unexpected_categories"] = counts


def _read_filesets(section: Section, key: str, setting: Setting, default: Any) -> list[str]:
    """The filesets named, once each, in order; an unknown name is reported and left out."""
    filesets = list(dict.fromkeys(section.string_list(key, default)))
    for name in filesets:
        if name not in FILESETS:
            section.error(key, f"unknown fileset {name!r} (known: {', '.join(FILESETS)})")
    return [name for name in filesets if name in FILESETS]


FILESET_NAMES = ValueType("list of filesets", _read_filesets)
SETTINGS = (
    Setting("filesets", FILESET_NAMES, [], "the filesets expected on this hub, of "
            f"{', '.join(f'`{name}`' for name in FILESETS)}; each record goes to the fileset of its `category` "
            f"(`{FALLBACK_FILESET}` when unknown), and one outside this list is forwarded all the same, logged once "
            "and counted in /stats; a body that is not JSON goes to the first listed", doc_default="— (all expected)"),
    Setting("normalize", BOOLEAN, True, "map each record onto ECS; `false` sends the raw record and names Filebeat's "
            "ingest pipeline in `@metadata.pipeline`"),
    Setting("preserve_original_event", BOOLEAN, False, "copy the raw record (`message`) to `event.original`"),
)


def build_azure_ecs(options: Section) -> AzureEcsProcessor:
    """`azure_ecs: {filesets: [...], normalize: true, preserve_original_event: false}`."""
    values = read_settings(options, SETTINGS)
    return AzureEcsProcessor(values["filesets"], values["normalize"], values["preserve_original_event"])
