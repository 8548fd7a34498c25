"""One Event Hubs message → the events the `azure-eventhub` input publishes, with the message's cursor.

A message carries many records (a diagnostic setting batches them); each
becomes one event routed to the fileset of its `category`, mapped to ECS (or
left raw for an ingest pipeline), with Filebeat's `azure.*` message fields and
`@metadata._id` = `<partition>-<sequence number>-<record index>`, stable across
replays. The message's cursor rides on its last event, so it is committed only
once every record of it is acknowledged; a message with no record commits its
cursor on its own, in order.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson
from azure.eventhub import EventData

# Imported first and as a module: the azure module imports this input's config, which would otherwise be
# half-initialized when the module table is loaded before the input table.
import forwarder.modules.azure as azure_module
from forwarder.inputs.base import InputContext
from forwarder.inputs.eventhub_checkpoints import message_cursor
from forwarder.inputs.eventhub_config import EventHubConfig
from forwarder.inputs.eventhub_decoder import PARSE_FAILURE_TAG, decode_body, parse_failure_fields
from forwarder.modules import azure_ecs
from forwarder.modules.azure_routing import CategoryRouter
from forwarder.pipeline.event import Event, format_timestamp

# A warning about empty bodies at most this often per partition; the counters keep the rest.
WARNING_INTERVAL = 60.0


class PartitionReader:
    """Turns one partition's messages into events; only the SDK's receiving thread calls it."""

    def __init__(self, partition_id: str, config: EventHubConfig, context: InputContext,
                 on_unexpected: Callable[[str | None, str], None]) -> None:
        self.partition_id = partition_id
        self._config = config
        self._context = context
        self._client = context.client
        self._on_unexpected = on_unexpected
        self.router = CategoryRouter(config.filesets)
        self.messages = 0
        self.records = 0
        self.parse_failures = 0
        self.empty_bodies = 0
        self.sanitized = 0
        self._last_empty_warning = 0.0
        self._empty_since_warning = 0

    def read(self, batch: list[EventData]) -> bool:
        """Publishes a batch of messages in order; False when the forwarder is stopping."""
        return all(self._read_message(message) for message in batch)

    def _read_message(self, message: EventData) -> bool:
        config = self._config
        enqueued = message.enqueued_time
        enqueued_epoch = enqueued.timestamp() if enqueued is not None else time.time()
        sequence_number = message.sequence_number
        cursor = message_cursor(self.partition_id, message.offset, sequence_number, enqueued_epoch)
        self.messages += 1
        decoded = decode_body(_body_bytes(message), config.sanitizers)
        if decoded.sanitized:
            self.sanitized += 1
        envelope = {
            "eventhub": config.eventhub,
            "consumer_group": config.consumer_group,
            "partition_id": self.partition_id,
            "offset": message.offset,
            "sequence_number": sequence_number,
            "enqueued_time": format_timestamp(enqueued_epoch),
        }
        partition_key = message.partition_key
        if partition_key is not None:
            envelope["partition_key"] = partition_key.decode("utf-8", "replace") \
                if isinstance(partition_key, bytes) else str(partition_key)
        id_prefix = f"{self.partition_id}-{sequence_number}-"
        if decoded.shape == "empty":
            self._report_empty(sequence_number, decoded.problem or "no records")
            self._client.commit(cursor)
            return True
        if decoded.shape == "unparsable":
            self.parse_failures += 1
            events = [self._unparsable_event(parse_failure_fields(decoded), envelope, enqueued_epoch, id_prefix)]
        else:
            events = [self._record_event(record, envelope, enqueued_epoch, id_prefix + str(index))
                      for index, record in enumerate(decoded.records)]
            self.records += len(events)
        publish = self._client.publish
        last = len(events) - 1
        return all(publish(event, cursor if position == last else None) for position, event in enumerate(events))

    def _record_event(self, record: Any, envelope: dict[str, Any], enqueued: float, event_id: str) -> Event:
        route = self.router.route(record)
        if route.first_unexpected:
            self._on_unexpected(route.category, route.fileset)
        fileset = route.fileset
        config = self._config
        raw = orjson.dumps(record).decode()
        meta = {"_id": event_id}
        timestamp = None
        if config.normalize:
            try:
                fields, timestamp = azure_ecs.normalize(record, fileset)
            except Exception as error:  # a mapping bug must not cost the record: it goes out raw and tagged
                fields = {"error": {"message": f"cannot map the record to ECS: {type(error).__name__}: {error}"},
                          "tags": [PARSE_FAILURE_TAG]}
        else:
            fields = {}
            meta["pipeline"] = azure_module.ingest_pipeline(fileset)
        fields["message"] = raw
        if config.preserve_original_event:
            fields.setdefault("event", {})["original"] = raw
        azure_module.put_dataset(fields, fileset)
        azure = fields.get("azure")
        if type(azure) is dict:
            azure.update(envelope)
        else:
            fields["azure"] = dict(envelope)
        return Event(fields, enqueued if timestamp is None else timestamp, meta)

    def _unparsable_event(self, fields: dict[str, Any], envelope: dict[str, Any], enqueued: float,
                          id_prefix: str) -> Event:
        """The raw body as one event, under the consumer's first fileset (the body has no category to route on)."""
        meta = {"_id": id_prefix + "0"}
        if self._config.filesets:
            azure_module.put_dataset(fields, self._config.filesets[0])
            if not self._config.normalize:
                meta["pipeline"] = azure_module.ingest_pipeline(self._config.filesets[0])
        fields["azure"] = dict(envelope)
        return Event(fields, enqueued, meta)

    def _report_empty(self, sequence_number: int, problem: str) -> None:
        self.empty_bodies += 1
        self._empty_since_warning += 1
        now = time.monotonic()
        if now - self._last_empty_warning < WARNING_INTERVAL:
            return
        others = self._empty_since_warning - 1
        more = f" ({others} more since the last warning)" if others > 0 else ""
        self._context.log.warning(
            "%s: message %d of partition %s of event hub %r holds no records: %s; nothing to forward%s",
            self._context.input_id, sequence_number, self.partition_id, self._config.eventhub, problem, more)
        self._last_empty_warning = now
        self._empty_since_warning = 0


def _body_bytes(message: EventData) -> bytes:
    body = message.body
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    if isinstance(body, (dict, list)):
        return orjson.dumps(body)
    try:
        return b"".join(body)
    except TypeError:
        return str(body).encode()
