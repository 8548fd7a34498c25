"""Where the `azure-eventhub` input's acknowledged positions go: /stats, and the blob checkpoint store.

The pipeline's acker is the only thing that knows when a message is delivered:
it commits the message's cursor (`partition-<id>`) to our registry once every
record of it, and everything published before it, is acknowledged, and calls
`PartitionProgress.on_commit`. That listener runs under the acker's lock, so it
only records the position; the input's own loop later writes the changed
positions to the blob checkpoint store (`BlobCheckpoints.flush`), off the
output's path. A checkpoint blob therefore never runs ahead of the output,
which is the data loss of Filebeat's old processor (checkpoint on receipt).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.eventhub.extensions.checkpointstoreblob import BlobCheckpointStore
from azure.eventhub.extensions.checkpointstoreblob._vendor.storage.blob import ContainerClient

from forwarder.inputs.base import PermanentInputError
from forwarder.inputs.eventhub_config import EventHubConfig

SOURCE_PREFIX = "partition-"
# Filebeat's v1 checkpoint blobs are a few hundred bytes; more than this is not one.
LEGACY_BLOB_LIMIT = 4096


def partition_source(partition_id: str) -> str:
    """The registry source name of one partition's cursor."""
    return SOURCE_PREFIX + partition_id


def message_cursor(partition_id: str, offset: str, sequence_number: int, enqueued_time: float) -> dict[str, Any]:
    """The cursor of one message: committed once the message and everything before it are acknowledged."""
    return {partition_source(partition_id): {
        "offset": offset, "sequence_number": sequence_number, "enqueued_time": enqueued_time,
    }}


class PartitionProgress:
    """The newest acknowledged message of each partition, and which partitions moved since the last flush."""

    def __init__(self, committed: dict[str, Any] | None = None) -> None:
        self._lock = threading.Lock()
        self._acknowledged: dict[str, dict[str, Any]] = {}
        self._changed: set[str] = set()
        for source, value in (committed or {}).items():
            self._record(source, value, changed=False)

    def on_commit(self, committed: dict[str, Any]) -> None:
        """The acker's listener; it holds the acker's lock, so this only records."""
        for source, value in committed.items():
            self._record(source, value, changed=True)

    def _record(self, source: str, value: Any, changed: bool) -> None:
        if not source.startswith(SOURCE_PREFIX) or not isinstance(value, dict):
            return
        partition_id = source[len(SOURCE_PREFIX):]
        with self._lock:
            self._acknowledged[partition_id] = value
            if changed:
                self._changed.add(partition_id)

    def acknowledged(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return dict(self._acknowledged)

    def take_changed(self) -> dict[str, dict[str, Any]]:
        """The positions that moved since the last call; `put_back` those that could not be written."""
        with self._lock:
            changed = {partition_id: self._acknowledged[partition_id] for partition_id in self._changed}
            self._changed.clear()
            return changed

    def put_back(self, partition_ids: list[str]) -> None:
        with self._lock:
            self._changed.update(partition_ids)

    def lag_seconds(self, now: float | None = None) -> dict[str, float]:
        """Per partition: now − enqueued time of the newest acknowledged message."""
        now = time.time() if now is None else now
        return {
            partition_id: round(max(0.0, now - float(position.get("enqueued_time") or now)), 3)
            for partition_id, position in self.acknowledged().items()
        }


class BlobCheckpoints:
    """The blob checkpoint store of one consumer: opened (container created when missing) and written on ACK."""

    def __init__(self, config: EventHubConfig, log: logging.Logger, input_id: str) -> None:
        assert config.storage_connection_string is not None and config.storage_container is not None
        self._container_client = ContainerClient.from_connection_string(config.storage_connection_string,
                                                                        config.storage_container)
        self.store = BlobCheckpointStore(self._container_client.url, config.storage_container,
                                         container_client=self._container_client)
        self.container = config.storage_container
        self.account_label = repr(self._container_client.account_name or self._container_client.primary_hostname)
        # The namespace as the SDK writes it into blob names (with a local peer: `127.0.0.1:PORT`); both read it
        # from the connection string the same way.
        self.namespace = config.fully_qualified_namespace
        self.eventhub = config.eventhub
        self.consumer_group = config.consumer_group
        self._log = log
        self._input_id = input_id
        self.written = 0
        self.errors = 0
        self._last_warning = 0.0

    def open(self) -> None:
        """Creates the container if it is missing; a refused credential parks the input."""
        try:
            self._container_client.create_container()
        except ResourceExistsError:
            return
        except ClientAuthenticationError:
            raise PermanentInputError(f"storage account {self.account_label} refused the credentials for container "
                                      f"{self.container!r}: check storage_account_key or "
                                      "storage_account_connection_string") from None
        except HttpResponseError as error:
            if error.status_code == 403:
                raise PermanentInputError(f"storage account {self.account_label} denied access to container "
                                          f"{self.container!r} (HTTP 403): the key or SAS lacks the rights to "
                                          "read and write blobs") from None
            raise CheckpointStoreUnavailable(self._unavailable(error)) from None
        except AzureError as error:
            raise CheckpointStoreUnavailable(self._unavailable(error)) from None

    def _unavailable(self, error: AzureError) -> str:
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        return f"cannot open container {self.container!r} of storage account {self.account_label}: {first_line}"

    def migrate_legacy(self, partition_ids: list[str]) -> list[str]:
        """Copies Filebeat's v1 checkpoints into the SDK's layout for partitions that have none; returns them.

        Filebeat's v1 processor kept one JSON blob per partition, named by its id, in the same container
        (`{"checkpoint": {"offset": ..., "sequenceNumber": ...}, ...}`); without this a site switching over
        would re-read the hub's whole retention. A blob that cannot be read is reported and skipped.
        """
        have = {checkpoint["partition_id"]
                for checkpoint in self.store.list_checkpoints(self.namespace, self.eventhub, self.consumer_group)}
        migrated = []
        for partition_id in partition_ids:
            if partition_id in have:
                continue
            try:
                legacy = self._container_client.get_blob_client(partition_id).download_blob(
                    offset=0, length=LEGACY_BLOB_LIMIT).readall()
            except ResourceNotFoundError:
                continue
            except AzureError as error:
                self._log.warning("%s: cannot read Filebeat's checkpoint blob %r in container %r (%s); partition %s "
                                  "starts at the configured start_position", self._input_id, partition_id,
                                  self.container, type(error).__name__, partition_id)
                continue
            position = _legacy_position(legacy)
            if position is None:
                self._log.warning("%s: Filebeat's checkpoint blob %r in container %r is not a v1 checkpoint; "
                                  "partition %s starts at the configured start_position", self._input_id,
                                  partition_id, self.container, partition_id)
                continue
            offset, sequence_number = position
            self.store.update_checkpoint({
                "fully_qualified_namespace": self.namespace, "eventhub_name": self.eventhub,
                "consumer_group": self.consumer_group, "partition_id": partition_id,
                "offset": offset, "sequence_number": sequence_number,
            })
            migrated.append(partition_id)
        return migrated

    def flush(self, progress: PartitionProgress, owned: set[str]) -> int:
        """Writes the checkpoints of the owned partitions whose acknowledged position moved; returns how many.

        A partition another forwarder has taken over is left to it: its checkpoint may already be ahead of
        what this one acknowledged last.
        """
        changed = {partition_id: position for partition_id, position in progress.take_changed().items()
                   if partition_id in owned}
        if not changed:
            return 0
        failed = []
        for partition_id, position in changed.items():
            try:
                self.store.update_checkpoint({
                    "fully_qualified_namespace": self.namespace,
                    "eventhub_name": self.eventhub,
                    "consumer_group": self.consumer_group,
                    "partition_id": partition_id,
                    "offset": position["offset"],
                    "sequence_number": position["sequence_number"],
                })
                self.written += 1
            except (AzureError, OSError) as error:
                failed.append(partition_id)
                self._warn(partition_id, error)
        if failed:
            progress.put_back(failed)
        return len(changed) - len(failed)

    def _warn(self, partition_id: str, error: Exception) -> None:
        """One line per minute at most: the store may be down for a while and we retry every second."""
        self.errors += 1
        now = time.monotonic()
        if now - self._last_warning >= 60.0:
            self._last_warning = now
            self._log.warning("%s: cannot write the checkpoint of partition %s to container %r of storage account "
                              "%s (%s); retrying", self._input_id, partition_id, self.container,
                              self.account_label, type(error).__name__)

    def close(self) -> None:
        self.store.close()


class CheckpointStoreUnavailable(Exception):
    """The storage account could not be reached at start; the supervisor retries with backoff."""


def _legacy_position(blob: bytes) -> tuple[str, int] | None:
    """(offset, sequence number) of a Filebeat v1 checkpoint blob; None when it is not one or holds no position."""
    try:
        checkpoint = json.loads(blob)["checkpoint"]
        offset = str(checkpoint["offset"])
        sequence_number = int(checkpoint["sequenceNumber"])
    except (ValueError, KeyError, TypeError):
        return None
    if not offset or offset == "-1":
        return None
    return offset, sequence_number
