"""One Event Hubs message → the events the `azure-eventhub` input publishes, with the message's cursor.

A message carries many records (a diagnostic setting batches them); each
becomes one event: the record's JSON text in `message`, Filebeat's `azure.*`
message fields (the envelope), the enqueued time as timestamp, the record in
`event.record`, and `@metadata._id` = `<partition>-<sequence number>-<record
index>`, stable across replays. Routing a record to its fileset and mapping it
is the module's `azure_ecs` processor's work (a standalone input names it in
`standalone_processors`).

The receiving thread only reads: it hands the raw bodies and positions of a
received batch to `client.publish_raw`, in chunks of about CHUNK_BYTES, with
`build_message_events`, which decodes each body and builds its events — in
this process, or with `forwarder.workers` in a worker process, next to the
ECS mapping. Each message keeps its own cursor (a list of cursors, one per
payload), on its last event: a message is committed only once every record of
it is acknowledged, a message with no record commits its cursor on its own, in
order, and a crash replays only what was not acknowledged, message by message.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import orjson
from azure.eventhub import EventData

from forwarder.inputs.base import InputContext
from forwarder.inputs.eventhub_checkpoints import message_cursor
from forwarder.inputs.eventhub_config import EventHubConfig
from forwarder.inputs.eventhub_decoder import Sanitizer, decode_body, parse_failure_fields
from forwarder.pipeline.event import Event, format_timestamp
from forwarder.pipeline.json_text import json_text
from forwarder.stats import InputStats

# A warning about empty bodies at most this often per partition; the counters keep the rest.
WARNING_INTERVAL = 60.0
# The `record_kind` of the one event of a body that could not be parsed: it has no record for the azure_ecs
# processor to route, only the consumer's first fileset (the contract with that processor).
UNPARSABLE_BODY = "unparsable_body"
# A received batch goes to the pipeline in chunks of about this many bytes of bodies (hundreds of records; a
# bigger message alone): what is out in worker processes, beyond the queue, stays small whatever the batch size.
CHUNK_BYTES = 256 * 1024
# The input's logger (the runner names it after the input type): the builder's warnings read as the input's.
log = logging.getLogger("forwarder.input.azure-eventhub")

# One message as the builder gets it: (body, offset, sequence number, enqueued time as epoch, partition key).
MessagePayload = tuple[bytes, str, int, float, str | None]


@dataclass(frozen=True)
class PartitionSource:
    """What every message of one partition shares: the chunk context of `build_message_events`."""

    input_id: str
    eventhub: str
    consumer_group: str
    partition_id: str
    sanitizers: tuple[Sanitizer, ...] = ()


class PartitionReader:
    """Hands one partition's messages to the pipeline; only the SDK's receiving thread calls it."""

    def __init__(self, partition_id: str, config: EventHubConfig, context: InputContext) -> None:
        self.partition_id = partition_id
        self._client = context.client
        self._stats = context.stats
        self._source = PartitionSource(context.input_id, config.eventhub, config.consumer_group, partition_id,
                                       tuple(config.sanitizers))

    def read(self, batch: list[EventData]) -> bool:
        """Publishes a batch of messages in order, in chunks of about CHUNK_BYTES; False when stopping."""
        payloads: list[MessagePayload] = []
        cursors: list[dict[str, Any] | None] = []
        chunk_bytes = 0
        for message in batch:
            enqueued = message.enqueued_time
            enqueued_epoch = enqueued.timestamp() if enqueued is not None else time.time()
            sequence_number = message.sequence_number
            partition_key = message.partition_key
            if isinstance(partition_key, bytes):
                partition_key = partition_key.decode("utf-8", "replace")
            elif partition_key is not None:
                partition_key = str(partition_key)
            body = _body_bytes(message)
            payloads.append((body, message.offset, sequence_number, enqueued_epoch, partition_key))
            cursors.append(message_cursor(self.partition_id, message.offset, sequence_number, enqueued_epoch))
            chunk_bytes += len(body)
            if chunk_bytes >= CHUNK_BYTES:
                if not self._publish(payloads, cursors):
                    return False
                payloads, cursors, chunk_bytes = [], [], 0
        return not payloads or self._publish(payloads, cursors)

    def _publish(self, payloads: list[MessagePayload], cursors: list[dict[str, Any] | None]) -> bool:
        extra = self._stats.extra
        extra["messages"] = extra.get("messages", 0) + len(payloads)
        return self._client.publish_raw(build_message_events, self._source, payloads, cursors)


def build_message_events(source: PartitionSource, payload: MessagePayload, stats: InputStats) -> list[Event] | None:
    """The events of one message: one per record, or one raw event for a body that cannot be parsed.

    None for a body without records, counted in `empty_bodies` and warned about (at most once a minute per
    partition). Runs in a worker process with `forwarder.workers`: it touches only its arguments.
    """
    body, offset, sequence_number, enqueued_epoch, partition_key = payload
    decoded = decode_body(body, source.sanitizers)
    extra = stats.extra
    if decoded.sanitized:
        extra["sanitized_messages"] = extra.get("sanitized_messages", 0) + 1
    if decoded.shape == "empty":
        extra["empty_bodies"] = extra.get("empty_bodies", 0) + 1
        _EMPTY_BODY_WARNINGS.report(source, sequence_number, decoded.problem or "no records")
        return None
    envelope = {
        "eventhub": source.eventhub,
        "consumer_group": source.consumer_group,
        "partition_id": source.partition_id,
        "offset": offset,
        "sequence_number": sequence_number,
        "enqueued_time": format_timestamp(enqueued_epoch),
    }
    if partition_key is not None:
        envelope["partition_key"] = partition_key
    id_prefix = f"{source.partition_id}-{sequence_number}-"
    if decoded.shape == "unparsable":
        extra["parse_failures"] = extra.get("parse_failures", 0) + 1
        fields = parse_failure_fields(decoded)
        fields["azure"] = envelope
        return [Event(fields, enqueued_epoch, {"_id": id_prefix + "0"}, record_kind=UNPARSABLE_BODY)]
    extra["records"] = extra.get("records", 0) + len(decoded.records)
    # Each event gets its own copy of the envelope: the processor merges it into the record's `azure`.
    return [Event({"message": json_text(record), "azure": dict(envelope)}, enqueued_epoch,
                  {"_id": id_prefix + str(index)}, record=record)
            for index, record in enumerate(decoded.records)]


class EmptyBodyWarnings:
    """Rate-limits the warning about messages without records, per input and partition.

    Kept by the process that builds (each worker process keeps its own), since the builder cannot reach the
    input; the `empty_bodies` counter in /stats has every one.
    """

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], tuple[float, int]] = {}

    def report(self, source: PartitionSource, sequence_number: int, problem: str) -> None:
        key = (source.input_id, source.partition_id)
        last_warning, since = self._last.get(key, (float("-inf"), 0))
        now = time.monotonic()
        if now - last_warning < WARNING_INTERVAL:
            self._last[key] = (last_warning, since + 1)
            return
        more = f" ({since} more since the last warning)" if since > 0 else ""
        log.warning("%s: message %d of partition %s of event hub %r holds no records: %s; nothing to forward%s",
                    source.input_id, sequence_number, source.partition_id, source.eventhub, problem, more)
        self._last[key] = (now, 0)


_EMPTY_BODY_WARNINGS = EmptyBodyWarnings()


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
