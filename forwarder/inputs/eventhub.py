"""The `azure-eventhub` input: diagnostic-settings logs consumed from an Event Hub, checkpointed on ACK.

The SDK's `EventHubConsumerClient` does the AMQP work, the reconnects and (with
a blob checkpoint store) the balancing of partitions between every forwarder
sharing a container; it calls `on_event_batch` from one receiving thread that
serves the partitions in turn, so a `publish` blocked on a full queue holds
back every partition: that is the backpressure.
Each message's body goes to the pipeline raw (`publish_raw`), to be split into
records, one event each, where events are built (eventhub_messages); the
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

from azure.core.exceptions import ClientAuthenticationError
from azure.eventhub import EventData, EventHubConsumerClient, PartitionContext, TransportType
from azure.eventhub.exceptions import AuthenticationError, ConnectError, EventHubError

from forwarder.inputs.base import InputContext, InputType, PermanentInputError
from forwarder.inputs.eventhub_checkpoints import BlobCheckpoints, PartitionProgress
from forwarder.inputs.eventhub_config import EventHubConfig, default_id, parse_config
from forwarder.inputs.eventhub_messages import WARNING_INTERVAL, PartitionReader

# How often acknowledged positions become blob checkpoints and /stats is refreshed.
BOOKKEEPING_INTERVAL = 1.0
# At stop, how long to wait for queued events to be acknowledged before the last checkpoint write; the runner
# waits 5 s for inputs to return.
FINAL_FLUSH_WAIT = 3.0
# At stop, how long the SDK gets to close its links and release its partitions.
CLOSE_WAIT = 2.0
# The messages read, and what `build_message_events` counts wherever it runs: in /stats from the start.
MESSAGE_COUNTERS = ("messages", "records", "parse_failures", "empty_bodies", "sanitized_messages")


class EventHubInput:
    def __init__(self, config: EventHubConfig, context: InputContext) -> None:
        self.config = config
        self.context = context
        self._log = context.log
        self._readers: dict[str, PartitionReader] = {}
        self._readers_lock = threading.Lock()
        self._reading: set[str] = set()
        self._permanent: str | None = None
        self._receive_failure: BaseException | None = None
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
            self._checkpoints = BlobCheckpoints(self.config, self._log, self.context.input_id)
            self._checkpoints.open()
        self._partition_ids = self._read_partition_ids()
        if self._checkpoints is not None and self.config.migrate_checkpoint:
            migrated = self._checkpoints.migrate_legacy(self._partition_ids)
            if migrated:
                self._log.info("%s: took over Filebeat's v1 checkpoints of partition(s) %s from container %r",
                               self.context.input_id, ", ".join(migrated), self.config.storage_container)
        consumer = self._consumer()
        receiving = threading.Thread(target=self._receive, args=(consumer,), daemon=True,
                                     name=f"{self.context.input_id}-receive")
        stop_listening = self.context.client.on_commit(self._progress.on_commit)
        for counter in MESSAGE_COUNTERS:
            self.context.stats.extra.setdefault(counter, 0)
        try:
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
            stop_listening()

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
                reader = self._readers.setdefault(partition_id,
                                                  PartitionReader(partition_id, self.config, self.context))
        return reader

    def _on_partition_initialize(self, context: PartitionContext) -> None:
        self._reader(context.partition_id)
        self._reading.add(context.partition_id)
        self._log.debug("%s: reading partition %s", self.context.input_id, context.partition_id)

    def _on_partition_close(self, context: PartitionContext, reason: Any) -> None:
        self._reading.discard(context.partition_id)
        self._log.info("%s: stopped reading partition %s of %s (%s)", self.context.input_id, context.partition_id,
                       self.hub_label, getattr(reason, "name", reason))

    def _on_event_batch(self, context: PartitionContext, batch: list[EventData]) -> None:
        if not batch or self.context.stop.is_set():
            return
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

    def _bookkeeping(self) -> None:
        """Writes the blob checkpoints that moved and refreshes the counters in /stats."""
        reading = self._reading.copy()
        if self._checkpoints is not None:
            self._checkpoints.flush(self._progress, reading)
        with self._readers_lock:
            read_partitions = set(self._readers)
        acknowledged = self._progress.acknowledged()
        lags = self._progress.lag_seconds()
        extra = self.context.stats.extra
        extra.update({
            "partitions": {
                partition_id: {
                    "lag_s": lags.get(partition_id),
                    "acked_sequence_number": acknowledged.get(partition_id, {}).get("sequence_number"),
                    "reading": partition_id in reading,
                }
                for partition_id in sorted(set(acknowledged) | read_partitions, key=_partition_order)
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


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _partition_order(partition_id: str) -> tuple[int, str]:
    return (int(partition_id), "") if partition_id.isdigit() else (1 << 30, partition_id)


def create(config: EventHubConfig, context: InputContext) -> EventHubInput:
    return EventHubInput(config, context)


def standalone_processors(config: EventHubConfig) -> list[dict[str, Any]]:
    """Used on its own, the input's records are routed and mapped as the azure module's are, by `azure_ecs`.

    Always, `normalize` or not: the processor also sets each record's dataset (and, with `normalize` off,
    Filebeat's ingest pipeline).
    """
    return [{"azure_ecs": {"filesets": list(config.filesets), "normalize": config.normalize,
                           "preserve_original_event": config.preserve_original_event}}]


INPUT_TYPE = InputType("azure-eventhub", parse_config, create, default_id, standalone_processors)
