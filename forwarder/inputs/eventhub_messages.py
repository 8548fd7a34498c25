"""One Event Hubs message → the events the `azure-eventhub` input publishes, with the message's cursor.

A message carries many records (a diagnostic setting batches them); each
becomes one event: the record's JSON text in `message`, Filebeat's `azure.*`
message fields (the envelope), the enqueued time as timestamp, the record in
`event.record`, and `@metadata._id` = `<partition>-<sequence number>-<record
index>`, stable across replays. Routing a record to its fileset and mapping it
is the module's `azure_ecs` processor's work (a standalone input names it in
`standalone_processors`). The message's cursor rides on its last event, so it
is committed only once every record of it is acknowledged; a message with no
record commits its cursor on its own, in order.
"""

from __future__ import annotations

import time

import orjson
from azure.eventhub import EventData

from forwarder.inputs.base import InputContext
from forwarder.inputs.eventhub_checkpoints import message_cursor
from forwarder.inputs.eventhub_config import EventHubConfig
from forwarder.inputs.eventhub_decoder import decode_body, parse_failure_fields
from forwarder.pipeline.event import Event, format_timestamp
from forwarder.pipeline.json_text import json_text

# A warning about empty bodies at most this often per partition; the counters keep the rest.
WARNING_INTERVAL = 60.0
# The `record_kind` of the one event of a body that could not be parsed: it has no record for the azure_ecs
# processor to route, only the consumer's first fileset (the contract with that processor).
UNPARSABLE_BODY = "unparsable_body"


class PartitionReader:
    """Turns one partition's messages into events; only the SDK's receiving thread calls it."""

    def __init__(self, partition_id: str, config: EventHubConfig, context: InputContext) -> None:
        self.partition_id = partition_id
        self._config = config
        self._context = context
        self._client = context.client
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
            fields = parse_failure_fields(decoded)
            fields["azure"] = envelope
            events = [Event(fields, enqueued_epoch, {"_id": id_prefix + "0"}, record_kind=UNPARSABLE_BODY)]
        else:
            # Each event gets its own copy of the envelope: the processor merges it into the record's `azure`.
            events = [Event({"message": json_text(record), "azure": dict(envelope)}, enqueued_epoch,
                            {"_id": id_prefix + str(index)}, record=record)
                      for index, record in enumerate(decoded.records)]
            self.records += len(events)
        publish = self._client.publish
        last = len(events) - 1
        return all(publish(event, cursor if position == last else None) for position, event in enumerate(events))

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
