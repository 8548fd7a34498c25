"""The fake Event Hubs peer and Azurite, driven by the real azure-eventhub SDK and its blob checkpoint store.

These tests prove the test infrastructure the `azure-eventhub` input is checked
with: if the SDK can read, resume, reconnect, checkpoint and balance against the
fakes, the input's own tests exercise the SDK's real code paths.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from azure.eventhub import EventData, EventHubConsumerClient, PartitionContext
from azure.eventhub._pyamqp._decode import decode_frame
from azure.eventhub.exceptions import AuthenticationError
from azure.eventhub.extensions.checkpointstoreblob import BlobCheckpointStore
from azure.eventhub.extensions.checkpointstoreblob._vendor.storage.blob import BlobServiceClient
from proton import Connection, Transport

from tests.fakes.amqp_frame_padding import PERFORMATIVE_FIELDS, FramePadder
from tests.fakes.azurite import INSTALL_COMMAND, Azurite, AzuriteNotInstalled, find_azurite_blob
from tests.fakes.eventhubs_amqp import FakeEventHubs

CONTAINER = "checkpoints"


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


class Receiving:
    """Runs `client.receive` on a thread (it blocks) and collects what arrives, per partition."""

    def __init__(self, client: EventHubConsumerClient, checkpoint_at: set[int] | None = None, **receive_args) -> None:
        self.client = client
        self.events: list[tuple[str, EventData]] = []
        self.errors: list[Exception] = []
        self._checkpoint_at = checkpoint_at or set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, kwargs=receive_args, daemon=True)
        self._thread.start()

    def _run(self, **receive_args) -> None:
        self.client.receive(self._on_event, on_error=self._on_error, **receive_args)

    def _on_event(self, context: PartitionContext, event: EventData | None) -> None:
        if event is None:
            return
        with self._lock:
            self.events.append((context.partition_id, event))
        if event.sequence_number in self._checkpoint_at:
            context.update_checkpoint(event)

    def _on_error(self, context: PartitionContext | None, error: Exception) -> None:
        with self._lock:
            self.errors.append(error)

    def bodies(self, partition: str | None = None) -> list[str]:
        with self._lock:
            return [e.body_as_str() for p, e in self.events if partition is None or p == partition]

    def wait_for(self, count: int, timeout: float = 15.0) -> None:
        wait_until(lambda: len(self.bodies()) >= count, timeout, f"{count} events (have {len(self.bodies())})")

    def close(self) -> None:
        self.client.close()
        self._thread.join(timeout=15)


def consumer(hub: FakeEventHubs, consumer_group: str = "$Default", **kwargs) -> EventHubConsumerClient:
    kwargs.setdefault("retry_backoff_factor", 0.05)
    return EventHubConsumerClient.from_connection_string(hub.connection_string, consumer_group=consumer_group, **kwargs)


@pytest.fixture
def hub(request: pytest.FixtureRequest):
    """A 4-partition hub; `@pytest.mark.parametrize("hub", [n], indirect=True)` for fewer (the SDK is faster)."""
    with FakeEventHubs(hub="insights-logs-signinlogs", partitions=getattr(request, "param", 4)) as fake:
        yield fake


one_partition = pytest.mark.parametrize("hub", [1], indirect=True)
two_partitions = pytest.mark.parametrize("hub", [2], indirect=True)


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory):
    with Azurite(tmp_path_factory.mktemp("azurite")) as server:
        yield server


@pytest.fixture
def checkpoint_store(azurite: Azurite, request: pytest.FixtureRequest) -> BlobCheckpointStore:
    container = f"cp-{request.node.name.replace('_', '-')[:50].lower().strip('-')}"
    BlobServiceClient.from_connection_string(azurite.connection_string).create_container(container)
    return BlobCheckpointStore.from_connection_string(azurite.connection_string, container)


def _proton_server_frames() -> bytes:
    """What proton writes as a server answering a client's AMQP header and open (no SASL): header, open, close."""
    client, server = Transport(Transport.CLIENT), Transport(Transport.SERVER)
    client_connection, server_connection = Connection(), Connection()
    client.bind(client_connection)
    server.bind(server_connection)
    client_connection.open()
    server_connection.open()
    server_connection.close()
    server.push(client.peek(client.pending()))
    return server.peek(server.pending())


def _frames(stream: bytes) -> list[bytes]:
    frames, pos = [], 8  # after the protocol header
    while pos < len(stream):
        size = int.from_bytes(stream[pos : pos + 4], "big")
        frames.append(stream[pos : pos + size])
        pos += size
    return frames


def test_padding_gives_the_sdk_decoder_every_performative_field() -> None:
    raw = _proton_server_frames()
    padder = FramePadder()
    assert padder.feed(raw[:13]) == raw[:8]  # the protocol header passes; a partial frame waits for the rest
    padded = raw[:8] + padder.feed(raw[13:])
    raw_open, raw_close = _frames(raw)
    open_fields = decode_frame(memoryview(raw_open)[8:])[1]
    assert len(open_fields) < PERFORMATIVE_FIELDS[0x10]  # proton leaves trailing fields out ...
    with pytest.raises(IndexError):
        decode_frame(memoryview(raw_close)[8:])  # ... down to an empty list, which the SDK cannot even read
    padded_fields = [decode_frame(memoryview(f)[8:]) for f in _frames(padded)]
    assert [(code, len(fields)) for code, fields in padded_fields] == [(0x10, 10), (0x18, 1)]  # all of them sent
    assert padded_fields[0][1][: len(open_fields)] == open_fields


def test_reads_every_event_of_every_partition_from_the_start(hub: FakeEventHubs) -> None:
    sent = {}
    for n in range(12):
        partition = str(n % 4)
        sent[(partition, n)] = hub.send(partition, f"event {n}".encode(), partition_key="user-a" if n == 5 else None)
    receiving = Receiving(consumer(hub), starting_position="-1")
    try:
        receiving.wait_for(12)
    finally:
        receiving.close()
    assert sorted(receiving.bodies()) == sorted(f"event {n}" for n in range(12))
    for partition, event in receiving.events:
        n = int(event.body_as_str().split()[1])
        assert (event.offset, event.sequence_number) == sent[(partition, n)]
        assert event.partition_key == (b"user-a" if n == 5 else None)
        assert abs(event.enqueued_time.timestamp() - time.time()) < 60
    assert receiving.bodies("1") == ["event 1", "event 5", "event 9"]  # in order within a partition
    assert hub.counters.links_attached == {"0": 1, "1": 1, "2": 1, "3": 1}
    assert hub.counters.put_tokens >= 1 and hub.counters.rejected_put_tokens == 0


@pytest.mark.parametrize(
    ("position", "inclusive", "first"),
    [("offset", False, 3), ("offset", True, 2), ("sequence", False, 3), ("sequence", True, 2)],
)
def test_resumes_from_an_offset_or_sequence_number(
    hub: FakeEventHubs, position: str, inclusive: bool, first: int
) -> None:
    stored = [hub.send("2", f"event {n}".encode() * (n + 1)) for n in range(6)]
    offset, sequence = stored[2]
    assert offset != str(sequence)  # offsets are byte positions, so mixing them up shows
    start = offset if position == "offset" else sequence
    receiving = Receiving(
        consumer(hub), partition_id="2", starting_position=start, starting_position_inclusive=inclusive
    )
    try:
        receiving.wait_for(6 - first)
        hub.send("2", b"after")
        receiving.wait_for(7 - first)
    finally:
        receiving.close()
    assert [b.split()[1][0] for b in receiving.bodies()[:-1]] == [str(n) for n in range(first, 6)]
    assert receiving.bodies()[-1] == "after"


def test_latest_gets_only_events_sent_after_attaching(hub: FakeEventHubs) -> None:
    for partition in hub.partition_ids:
        hub.send(partition, b"old")
    receiving = Receiving(consumer(hub), starting_position="@latest")
    try:
        wait_until(lambda: sum(hub.counters.links_attached.values()) == 4, 15, "four receiver links")
        for partition in hub.partition_ids:
            hub.send(partition, f"new {partition}".encode())
        receiving.wait_for(4)
    finally:
        receiving.close()
    assert sorted(receiving.bodies()) == ["new 0", "new 1", "new 2", "new 3"]


@one_partition
def test_enqueued_time_position(hub: FakeEventHubs) -> None:
    hub.send("0", b"before")
    cut = hub.events("0")[0].enqueued_ms
    wait_until(lambda: int(time.time() * 1000) > cut, 1, "the clock to move past the first event")
    hub.send("0", b"after")
    receiving = Receiving(consumer(hub), partition_id="0", starting_position=datetime.fromtimestamp(cut / 1000, UTC))
    try:
        receiving.wait_for(1)
    finally:
        receiving.close()
    assert receiving.bodies() == ["after"]


def test_hub_and_partition_properties(hub: FakeEventHubs) -> None:
    hub.send("3", b"x" * 10)
    last_offset, last_sequence = hub.send("3", b"y")
    client = consumer(hub)
    try:
        properties = client.get_eventhub_properties()
        busy = client.get_partition_properties("3")
        empty = client.get_partition_properties("0")
    finally:
        client.close()
    assert properties["eventhub_name"] == "insights-logs-signinlogs"
    assert properties["partition_ids"] == ["0", "1", "2", "3"]
    assert properties["created_at"].year == 2023
    assert busy["last_enqueued_sequence_number"] == last_sequence == 1
    assert busy["last_enqueued_offset"] == last_offset == "10"
    assert busy["is_empty"] is False
    assert busy["last_enqueued_time_utc"].timestamp() == hub.events("3")[1].enqueued_ms / 1000
    assert empty["is_empty"] is True and empty["last_enqueued_sequence_number"] == -1
    assert hub.counters.management_reads == 3


def test_a_wrong_key_is_refused_with_an_authentication_error(hub: FakeEventHubs) -> None:
    client = EventHubConsumerClient.from_connection_string(
        hub.connection_string_for(key="d3Jvbmcta2V5"), consumer_group="$Default", retry_total=0
    )
    try:
        with pytest.raises(AuthenticationError):
            client.get_eventhub_properties()
    finally:
        client.close()
    assert hub.counters.rejected_put_tokens >= 1


@one_partition
def test_unknown_consumer_group_and_hub_are_reported_as_not_found(hub: FakeEventHubs) -> None:
    hub.send("0", b"x")
    receiving = Receiving(consumer(hub, consumer_group="missing", retry_total=0), starting_position="-1")
    try:
        wait_until(lambda: receiving.errors, 15, "the receive error")
    finally:
        receiving.close()
    assert "ConsumerGroups/missing/Partitions/0' could not be found" in str(receiving.errors[0])
    assert receiving.bodies() == []
    client = EventHubConsumerClient.from_connection_string(
        hub.connection_string, consumer_group="$Default", eventhub_name="other-hub", retry_total=0
    )
    try:
        with pytest.raises(Exception, match="'other-hub' could not be found"):
            client.get_eventhub_properties()
    finally:
        client.close()


@two_partitions
def test_events_sent_while_receiving_arrive(hub: FakeEventHubs) -> None:
    hub.send("1", b"first")
    receiving = Receiving(consumer(hub), starting_position="-1")
    try:
        receiving.wait_for(1)
        for n in range(50):
            hub.send(str(n % 2), f"live {n}".encode())
        receiving.wait_for(51)
    finally:
        receiving.close()
    assert sorted(receiving.bodies()) == sorted(["first"] + [f"live {n}" for n in range(50)])


@two_partitions
def test_reconnects_after_dropped_connections_without_loss(hub: FakeEventHubs) -> None:
    for n in range(20):
        hub.send(str(n % 2), f"before {n}".encode())
    receiving = Receiving(consumer(hub), starting_position="-1")
    try:
        receiving.wait_for(20)
        hub.drop_connections()
        for n in range(20):
            hub.send(str(n % 2), f"after {n}".encode())
        receiving.wait_for(40, timeout=30)
    finally:
        receiving.close()
    bodies = receiving.bodies()
    assert sorted(set(bodies)) == sorted([f"before {n}" for n in range(20)] + [f"after {n}" for n in range(20)])
    assert len(bodies) == 40  # it resumed after what it had, so nothing came twice either
    assert hub.counters.dropped_connections >= 1
    assert all(count >= 2 for count in hub.counters.links_attached.values())


@one_partition
def test_a_higher_epoch_receiver_steals_the_partition(hub: FakeEventHubs) -> None:
    hub.send("0", b"one")
    low = Receiving(consumer(hub), partition_id="0", owner_level=1, starting_position="-1")
    try:
        low.wait_for(1)
        high = Receiving(consumer(hub), partition_id="0", owner_level=2, starting_position="-1")
        try:
            high.wait_for(1)
            wait_until(lambda: hub.counters.links_stolen == 1, 10, "the low-epoch link to be stolen")
            wait_until(lambda: low.errors, 10, "the low-epoch receiver to report the loss")
        finally:
            high.close()
    finally:
        low.close()
    assert "stolen" in str(low.errors[0]).lower() or "epoch" in str(low.errors[0]).lower()


@one_partition
def test_blob_checkpoint_is_written_and_a_new_client_resumes_after_it(
    hub: FakeEventHubs, checkpoint_store: BlobCheckpointStore, azurite: Azurite
) -> None:
    stored = [hub.send("0", f"event {n}".encode()) for n in range(5)]
    receiving = Receiving(consumer(hub, checkpoint_store=checkpoint_store), checkpoint_at={2}, starting_position="-1")
    try:
        receiving.wait_for(5)
    finally:
        receiving.close()
    container = BlobServiceClient.from_connection_string(azurite.connection_string).get_container_client(
        checkpoint_store._container_client.container_name
    )
    blobs = {b.name: b.metadata for b in container.list_blobs(include=["metadata"])}
    name = f"{hub.fully_qualified_namespace}/{hub.hub}/$default/checkpoint/0".lower()
    assert blobs[name] == {"offset": stored[2][0], "sequencenumber": "2"}

    hub.send("0", b"event 5")
    resumed = Receiving(consumer(hub, checkpoint_store=checkpoint_store), starting_position="-1")
    try:
        resumed.wait_for(3)
    finally:
        resumed.close()
    assert resumed.bodies("0") == ["event 3", "event 4", "event 5"]


def test_two_clients_share_the_partitions_through_the_checkpoint_store(
    hub: FakeEventHubs, checkpoint_store: BlobCheckpointStore
) -> None:
    balancing = {"load_balancing_interval": 0.5, "partition_ownership_expiration_interval": 5}

    def owners() -> dict[str, int]:
        counts: dict[str, int] = {}
        for ownership in checkpoint_store.list_ownership(hub.fully_qualified_namespace, hub.hub, "$Default"):
            counts[ownership["owner_id"]] = counts.get(ownership["owner_id"], 0) + 1
        return counts

    first = Receiving(consumer(hub, checkpoint_store=checkpoint_store, **balancing), starting_position="-1")
    second = None
    try:
        wait_until(lambda: list(owners().values()) == [4], 15, "the first client owning all partitions")
        # owning a partition comes before attaching its link: the links the second client steals must exist first
        wait_until(
            lambda: all(hub.active_receivers(p) == 1 for p in hub.partition_ids), 15, "the first client's four links"
        )
        second = Receiving(consumer(hub, checkpoint_store=checkpoint_store, **balancing), starting_position="-1")
        wait_until(lambda: sorted(owners().values()) == [2, 2], 20, "two owners with two partitions each")
        wait_until(
            lambda: all(hub.active_receivers(p) == 1 for p in hub.partition_ids), 10, "one receiver per partition"
        )
        for n in range(40):
            hub.send(str(n % 4), f"shared {n}".encode())
        wait_until(
            lambda: set(first.bodies() + second.bodies()) == {f"shared {n}" for n in range(40)},
            15,
            "all 40 events between the two clients",
        )
        assert sorted(owners().values()) == [2, 2]
    finally:
        first.close()
        if second is not None:
            second.close()
    # both read: ownership moved two attached partitions from the first client to the second (a new link each)
    assert first.bodies() and second.bodies()
    assert hub.counters.links_attached.total() >= 6


def test_a_missing_azurite_fails_with_the_install_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(AzuriteNotInstalled, match=re.escape(INSTALL_COMMAND)):
        find_azurite_blob(tmp_path)
