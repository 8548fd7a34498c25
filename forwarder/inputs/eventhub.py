"""The `azure-eventhub` input: diagnostic-settings logs consumed from an Event Hub, checkpointed on ACK.

The SDK's `EventHubConsumerClient` does the AMQP work, the reconnects and (with
a blob checkpoint store) the balancing of partitions between every forwarder
sharing a container; it calls `on_event_batch` from one receiving thread that
serves the partitions in turn, so a `publish` blocked on a full queue holds
back every partition: that is the backpressure.
Each message is split into records, each record becomes one event, and the
message's position rides on the last of them as the cursor `partition-<id>`.
The acker commits that cursor to the registry only once the whole message and
everything before it are acknowledged; the blob checkpoint is written from
that commit (eventhub_checkpoints), never on receipt. A crash at any moment
therefore replays what was not acknowledged, and `@metadata._id`
(`<partition>-<sequence number>-<record index>`) is the same in the replay.

Without a storage account, the registry holds the checkpoints and this
forwarder reads every partition from them.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import orjson
from azure.core.exceptions import ClientAuthenticationError
from azure.eventhub import EventData, EventHubConsumerClient, PartitionContext, TransportType
from azure.eventhub.exceptions import AuthenticationError, ConnectError, EventHubError

# Imported first and as a module: the azure module imports this input's config, which would otherwise be
# half-initialized when the module table is loaded before the input table.
import forwarder.modules.azure as azure_module
from forwarder.inputs.base import InputContext, InputType, PermanentInputError
from forwarder.inputs.eventhub_checkpoints import BlobCheckpoints, PartitionProgress, message_cursor
from forwarder.inputs.eventhub_config import EventHubConfig, default_id, parse_config
from forwarder.inputs.eventhub_decoder import PARSE_FAILURE_TAG, decode_body, parse_failure_fields
from forwarder.modules import azure_ecs
from forwarder.modules.azure_routing import CategoryRouter
from forwarder.pipeline.event import Event, format_timestamp

# How often acknowledged positions become blob checkpoints and /stats is refreshed.
BOOKKEEPING_INTERVAL = 1.0
# At stop, how long to wait for queued events to be acknowledged before the last checkpoint write; the runner
# waits 5 s for inputs to return.
FINAL_FLUSH_WAIT = 3.0
# At stop, how long the SDK gets to close its links and release its partitions.
CLOSE_WAIT = 2.0
# A warning about empty bodies or receive errors at most this often (per partition); the counters keep the rest.
WARNING_INTERVAL = 60.0


class PartitionReader:
    """Turns one partition's messages into events; only the SDK's receiving thread calls it."""

    def __init__(self, partition_id: str, owner: EventHubInput) -> None:
        self.partition_id = partition_id
        self._owner = owner
        self._config = owner.config
        self._client = owner.context.client
        self.router = CategoryRouter(owner.config.filesets)
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
            self._owner.unexpected_category(route.category, route.fileset)
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
        self._owner.context.log.warning(
            "%s: message %d of partition %s of event hub %r holds no records: %s; nothing to forward%s",
            self._owner.context.input_id, sequence_number, self.partition_id, self._config.eventhub, problem, more)
        self._last_empty_warning = now
        self._empty_since_warning = 0


class EventHubInput:
    def __init__(self, config: EventHubConfig, context: InputContext) -> None:
        self.config = config
        self.context = context
        self._log = context.log
        self._readers: dict[str, PartitionReader] = {}
        self._readers_lock = threading.Lock()
        self._permanent: str | None = None
        self._receive_failure: BaseException | None = None
        self._logged_categories: set[str] = set()
        self._last_error_warning: dict[str, float] = {}
        self._progress = PartitionProgress(context.client.committed())
        self._checkpoints: BlobCheckpoints | None = None
        self._partition_ids: list[str] = []

    @property
    def hub_label(self) -> str:
        return f"event hub {self.config.eventhub!r} in namespace {self.config.fully_qualified_namespace}"

    def run(self) -> None:
        stop = self.context.stop
        _quiet_sdk_logging()
        if self.config.uses_blob_checkpoints:
            assert self.config.storage_connection_string is not None and self.config.storage_container is not None
            self._checkpoints = BlobCheckpoints(self.config.storage_connection_string, self.config.storage_container,
                                                self._log, self.context.input_id)
            self._checkpoints.eventhub = self.config.eventhub
            self._checkpoints.consumer_group = self.config.consumer_group
            self._checkpoints.open()
        self._partition_ids = self._read_partition_ids()
        consumer = self._consumer()
        receiving = threading.Thread(target=self._receive, args=(consumer,), daemon=True,
                                     name=f"{self.context.input_id}-receive")
        try:
            self.context.client.on_commit(self._progress.on_commit)
            receiving.start()
            self.context.stats.state = "running"
            self._log.info("%s: reading %s (%d partitions, consumer group %r, checkpoints in %s)",
                           self.context.input_id, self.hub_label, len(self._partition_ids),
                           self.config.consumer_group, self._checkpoint_place())
            while not stop.wait(BOOKKEEPING_INTERVAL):
                self._bookkeeping()
                if self._permanent is not None:
                    raise PermanentInputError(self._permanent)
                if not receiving.is_alive():
                    raise RuntimeError(f"the receiver of {self.hub_label} ended: {self._receive_failure}")
            if self._checkpoints is not None:
                self.context.client.wait_acked(FINAL_FLUSH_WAIT)
            self._bookkeeping()
        finally:
            # The SDK releases its partitions (blob mode) on the receiving thread after close(): wait for it
            # before the checkpoint store goes.
            consumer.close()
            if receiving.is_alive():
                receiving.join(CLOSE_WAIT)
            if self._checkpoints is not None:
                self._checkpoints.close()

    def _checkpoint_place(self) -> str:
        if self._checkpoints is None:
            return "the registry"
        return f"container {self.config.storage_container!r} of storage account {self._checkpoints.account_label}"

    def _consumer(self, probe: bool = False) -> EventHubConsumerClient:
        config = self.config
        options: dict[str, Any] = {
            "consumer_group": config.consumer_group,
            "eventhub_name": config.eventhub,
        }
        if config.transport == "websocket":
            options["transport_type"] = TransportType.AmqpOverWebsocket
        if probe:
            options["retry_total"] = 0
        elif self._checkpoints is not None:
            options["checkpoint_store"] = self._checkpoints.store
            options["load_balancing_interval"] = config.load_balancing_interval
            options["partition_ownership_expiration_interval"] = config.partition_ownership_expiration_interval
        return EventHubConsumerClient.from_connection_string(config.connection_string, **options)

    def _read_partition_ids(self) -> list[str]:
        """Asks the hub for its partitions: the credential and the hub name are checked here, once.

        Without the SDK's retries (seconds each for a refused key): a passing outage at start is retried by the
        supervisor with its backoff.
        """
        probe = self._consumer(probe=True)
        try:
            return list(probe.get_partition_ids())
        except AuthenticationError:
            raise PermanentInputError(f"{self.hub_label} refused the credentials: check the connection string's "
                                      "SharedAccessKeyName and SharedAccessKey (a policy with Listen)") from None
        except ConnectError as error:
            if "404" in str(error) or "NotFound" in str(getattr(error, "error", "")):
                raise PermanentInputError(f"{self.hub_label} does not exist: check eventhub (and the connection "
                                          "string's namespace)") from None
            raise EventHubUnavailable(f"cannot reach {self.hub_label}: {_first_line(error)}") from None
        except EventHubError as error:
            raise EventHubUnavailable(f"cannot read the partitions of {self.hub_label}: "
                                      f"{_first_line(error)}") from None
        finally:
            probe.close()

    def _starting_position(self, partition_ids: list[str]) -> dict[str, str]:
        """Each partition's start when it has no checkpoint: after the registry's position, else the configured end.

        In blob mode the SDK prefers the blob checkpoint over this; "-1" is passed for earliest because the
        library's own default is the end of the stream.
        """
        default = "-1" if self.config.start_position == "earliest" else "@latest"
        positions = {partition_id: default for partition_id in partition_ids}
        if self._checkpoints is None:
            for partition_id, position in self._progress.acknowledged().items():
                offset = position.get("offset")
                if partition_id in positions and isinstance(offset, str) and offset:
                    positions[partition_id] = offset
        return positions

    def _receive(self, consumer: EventHubConsumerClient) -> None:
        try:
            consumer.receive_batch(
                self._on_event_batch,
                max_batch_size=self.config.max_batch_size,
                max_wait_time=self.config.max_wait_time,
                prefetch=self.config.prefetch,
                starting_position=self._starting_position(self._partition_ids),
                on_error=self._on_error,
                on_partition_initialize=self._on_partition_initialize,
                on_partition_close=self._on_partition_close,
            )
        except BaseException as error:
            self._receive_failure = error
            raise

    def _reader(self, partition_id: str) -> PartitionReader:
        reader = self._readers.get(partition_id)
        if reader is None:
            with self._readers_lock:
                reader = self._readers.setdefault(partition_id, PartitionReader(partition_id, self))
        return reader

    def _on_partition_initialize(self, context: PartitionContext) -> None:
        if self._checkpoints is not None and self._checkpoints.namespace is None:
            self._checkpoints.namespace = context.fully_qualified_namespace
        self._reader(context.partition_id)
        self._log.debug("%s: reading partition %s", self.context.input_id, context.partition_id)

    def _on_partition_close(self, context: PartitionContext, reason: Any) -> None:
        self._log.info("%s: stopped reading partition %s of %s (%s)", self.context.input_id, context.partition_id,
                       self.hub_label, getattr(reason, "name", reason))

    def _on_event_batch(self, context: PartitionContext, batch: list[EventData]) -> None:
        if not batch or self.context.stop.is_set():
            return
        if self._checkpoints is not None and self._checkpoints.namespace is None:
            self._checkpoints.namespace = context.fully_qualified_namespace
        if self._reader(context.partition_id).read(batch) and self._checkpoints is None:
            # Registry mode: the SDK's in-memory checkpoint only tells it where to reopen this partition within
            # this process (everything up to here is in our queue); the registry keeps the acknowledged position.
            context.update_checkpoint(batch[-1])

    def _on_error(self, context: PartitionContext | None, error: Exception) -> None:
        where = f"partition {context.partition_id} of " if context is not None else ""
        if isinstance(error, AuthenticationError):
            self._permanent = (f"{self.hub_label} refused the credentials: check the connection string's "
                               "SharedAccessKeyName and SharedAccessKey")
            return
        if self._checkpoints is not None and isinstance(error, ClientAuthenticationError):
            self._permanent = (f"storage account {self._checkpoints.account_label} refused the credentials for "
                               f"container {self.config.storage_container!r}")
            return
        message = f"receiving from {where}{self.hub_label}: {type(error).__name__}: {_first_line(error)}"
        self.context.stats.error(message)
        key = context.partition_id if context is not None else ""
        now = time.monotonic()
        if now - self._last_error_warning.get(key, 0.0) >= WARNING_INTERVAL:
            self._last_error_warning[key] = now
            self._log.warning("%s: %s; the client retries", self.context.input_id, message)

    def unexpected_category(self, category: str | None, fileset: str) -> None:
        """Logs once per category a record whose fileset this consumer was not set up for (it is forwarded)."""
        key = category or "(none)"
        if key in self._logged_categories:
            return
        self._logged_categories.add(key)
        self._log.info("%s: %s carries %s records (fileset %s, not enabled on this hub); forwarding them as "
                       "azure.%s", self.context.input_id, self.hub_label, key, fileset, fileset)

    def _bookkeeping(self) -> None:
        """Writes the blob checkpoints that moved and refreshes the counters in /stats."""
        if self._checkpoints is not None:
            self._checkpoints.flush(self._progress)
        with self._readers_lock:
            readers = list(self._readers.values())
        acknowledged = self._progress.acknowledged()
        lags = self._progress.lag_seconds()
        unexpected: dict[str, int] = {}
        for reader in readers:
            for category, count in list(reader.router.unexpected.items()):
                unexpected[category] = unexpected.get(category, 0) + count
        extra = self.context.stats.extra
        extra.update({
            "messages": sum(reader.messages for reader in readers),
            "records": sum(reader.records for reader in readers),
            "parse_failures": sum(reader.parse_failures for reader in readers),
            "empty_bodies": sum(reader.empty_bodies for reader in readers),
            "sanitized_messages": sum(reader.sanitized for reader in readers),
            "unexpected_categories": unexpected,
            "partitions": {
                partition_id: {
                    "lag_s": lags.get(partition_id),
                    "acked_sequence_number": acknowledged.get(partition_id, {}).get("sequence_number"),
                    "reading": partition_id in self._readers,
                }
                for partition_id in sorted(set(acknowledged) | set(self._readers), key=_partition_order)
            },
        })
        if self._checkpoints is not None:
            extra["checkpoints_written"] = self._checkpoints.written
            extra["checkpoint_errors"] = self._checkpoints.errors


class EventHubUnavailable(Exception):
    """The hub could not be reached at start; the supervisor retries with backoff."""


def _quiet_sdk_logging() -> None:
    """The SDK logs every AMQP state change and blob request at INFO: kept for `logging.level: debug` only."""
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        logging.getLogger("azure").setLevel(logging.WARNING)


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


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _partition_order(partition_id: str) -> tuple[int, str]:
    return (int(partition_id), "") if partition_id.isdigit() else (1 << 30, partition_id)


def create(config: EventHubConfig, context: InputContext) -> EventHubInput:
    return EventHubInput(config, context)


INPUT_TYPE = InputType("azure-eventhub", parse_config, create, default_id)
