"""The `azure-eventhub` input against the fake Event Hubs peer (and Azurite), through the real pipeline.

The SDK's real `EventHubConsumerClient` and `BlobCheckpointStore` run; the
harness stands in for the output, so a test decides what is acknowledged and
can check that checkpoints (registry or blob) follow the acknowledgements.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from azure.eventhub.extensions.checkpointstoreblob import BlobCheckpointStore
from azure.eventhub.extensions.checkpointstoreblob._vendor.storage.blob import BlobServiceClient

from forwarder.inputs.base import InputContext, PermanentInputError
from forwarder.inputs.eventhub import INPUT_TYPE, EventHubInput
from forwarder.inputs.eventhub_config import EventHubConfig, parse_config
from forwarder.pipeline.client import PipelineClient, Processor
from forwarder.pipeline.event import Event
from forwarder.pipeline.processors import build_processors
from forwarder.schema.section import Section
from tests.conftest import PipelineHarness
from tests.fakes.azurite import Azurite
from tests.fakes.eventhubs_amqp import FakeEventHubs

HUB = "insights-logs-signinlogs"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "azure"


def fixture_records(name: str) -> list[dict[str, Any]]:
    return orjson.loads((FIXTURES / name).read_bytes())["records"]


def body(*records: dict[str, Any]) -> bytes:
    return orjson.dumps({"records": list(records)})


def sign_in(number: int) -> dict[str, Any]:
    """A small non-interactive sign-in record, numbered so a test can tell them apart."""
    record = dict(fixture_records("signinlogs_noninteractive.json")[0])
    record["properties"] = {**record["properties"], "id": f"signin-{number:05d}"}
    return record


def config_for(hub: FakeEventHubs, **overrides: Any) -> EventHubConfig:
    data = {
        "eventhub": hub.hub,
        "connection_string": hub.connection_string,
        "partition_receive_timeout": "100ms",
        **overrides,
    }
    problems: list = []
    section = Section({k: v for k, v in data.items() if v is not None}, "", "test.yml", problems)
    config = parse_config(section)
    section.finish()
    assert problems == []
    return config


def mapping_processors(config: EventHubConfig) -> list[Processor]:
    """The processors an input used on its own gets (the azure module's `azure_ecs`), built as the loader does."""
    problems: list = []
    items = INPUT_TYPE.standalone_processors(config)
    processors = build_processors([Section(item, "", "test.yml", problems) for item in items])
    assert problems == []
    return processors


class RunningInput:
    """One azure-eventhub input on its own thread, as the supervisor runs it, with the processors that map it."""

    def __init__(self, harness: PipelineHarness, config: EventHubConfig, input_id: str = "hub") -> None:
        self.client: PipelineClient = harness.connect("azure-eventhub", input_id=input_id, tags=["forwarded"],
                                                      module_processors=mapping_processors(config))
        self.stop = threading.Event()
        self.context = InputContext(input_id, self.client, self.stop, logging.getLogger("test.eventhub"),
                                    self.client.stats, harness.data_path)
        self.input = EventHubInput(config, self.context)
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.input.run()
        except BaseException as error:  # handed to the test
            self.failure = error

    def halt(self) -> None:
        self.stop.set()
        self.thread.join(15)
        assert not self.thread.is_alive()
        assert self.failure is None, repr(self.failure)


@pytest.fixture
def start(harness: PipelineHarness) -> Iterator[Callable[..., RunningInput]]:
    started: list[RunningInput] = []

    def start_input(config: EventHubConfig, input_id: str = "hub") -> RunningInput:
        running = RunningInput(harness, config, input_id)
        started.append(running)
        return running

    yield start_input
    for running in started:
        running.stop.set()
        running.thread.join(15)


@pytest.fixture
def hub(request: pytest.FixtureRequest) -> Iterator[FakeEventHubs]:
    with FakeEventHubs(hub=HUB, partitions=getattr(request, "param", 2)) as fake:
        yield fake


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    with Azurite(tmp_path_factory.mktemp("azurite")) as server:
        yield server


def wait_for(condition: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.02)


def ids(events: list[Event]) -> list[str]:
    return [event.meta["_id"] for event in events]


def registry_cursor(harness: PipelineHarness, partition: str, input_id: str = "hub") -> Any:
    return harness.registry.get(f"azure-eventhub::{input_id}::partition-{partition}")


def nothing_more(harness: PipelineHarness, wait: float = 0.5) -> bool:
    return harness.take(1, timeout=wait) == []


def test_mixed_categories_on_one_hub_go_to_their_datasets_with_ecs_fields(
    harness: PipelineHarness, hub: FakeEventHubs, start: Callable[..., RunningInput],
    caplog: pytest.LogCaptureFixture,
) -> None:
    names = ["signinlogs_noninteractive.json", "auditlogs_update_user.json", "activitylogs_administrative.json",
             "graphactivitylogs.json", "identity_protection.json", "provisioning_create_failure.json",
             "platformlogs_keyvault.json"]
    records = [record for name in names for record in fixture_records(name)]
    offset, sequence = hub.send("1", body(*records))
    hub.send("0", body(*records))
    caplog.set_level(logging.INFO, "forwarder.modules.azure")
    running = start(config_for(hub, filesets=["signinlogs", "auditlogs"]))
    events = [event for event in harness.take(2 * len(records)) if event.fields["azure"]["partition_id"] == "1"]
    running.halt()
    datasets = {event.fields["event"]["dataset"] for event in events}
    assert datasets == {"azure.signinlogs", "azure.auditlogs", "azure.activitylogs", "azure.graphactivitylogs",
                        "azure.identity_protection", "azure.provisioning", "azure.platformlogs"}
    assert ids(events) == [f"1-{sequence}-{index}" for index in range(len(records))]
    sign_in_event = events[0]
    assert sign_in_event.fields["fileset"] == {"name": "signinlogs"}
    assert sign_in_event.fields["event"]["module"] == "azure"
    assert sign_in_event.fields["source"]["ip"] == "81.2.69.143"
    assert sign_in_event.fields["user"]["name"]
    assert orjson.loads(sign_in_event.fields["message"]) == records[0]
    assert sign_in_event.fields["azure"]["eventhub"] == HUB
    assert sign_in_event.fields["azure"]["consumer_group"] == "$Default"
    assert sign_in_event.fields["azure"]["partition_id"] == "1"
    assert sign_in_event.fields["azure"]["offset"] == offset
    assert sign_in_event.fields["azure"]["sequence_number"] == sequence
    assert sign_in_event.fields["azure"]["enqueued_time"].endswith("Z")
    assert sign_in_event.fields["azure"]["tenant_id"]  # the ECS mapping's azure.* is kept beside the envelope's
    assert time.strftime("%Y-%m-%d", time.gmtime(sign_in_event.timestamp)) == records[0]["time"][:10]
    stats = running.context.stats.extra
    assert stats["messages"] == 2 and stats["records"] == 2 * len(records)
    # categories outside the consumer's filesets are forwarded all the same, counted, and logged once each
    unexpected = stats["unexpected_categories"]
    assert unexpected["Administrative"] == 2
    assert "MicrosoftGraphActivityLogs" in unexpected and "SignInLogs" not in unexpected
    logged = [line for line in caplog.messages if "not enabled on this hub" in line]
    assert sorted(line.split(" carries ")[1].split(" records ")[0] for line in logged) == sorted(unexpected)
    assert f"hub: event hub '{HUB}' carries Administrative records (fileset activitylogs, not enabled on this " \
           "hub); forwarding them as azure.activitylogs" in logged


def test_normalize_off_sends_the_raw_record_with_filebeats_pipeline(
    harness: PipelineHarness, hub: FakeEventHubs, start: Callable[..., RunningInput]
) -> None:
    record = fixture_records("auditlogs_update_user.json")[0]
    hub.send("0", body(record))
    running = start(config_for(hub, normalize=False, preserve_original_event=True))
    [event] = harness.take(1)
    running.halt()
    assert event.meta["pipeline"].endswith("-azure-auditlogs-pipeline")
    assert event.fields["event"]["dataset"] == "azure.auditlogs"
    assert event.fields["event"]["original"] == event.fields["message"]
    assert "user" not in event.fields and "source" not in event.fields
    enqueued = hub.events("0")[0].enqueued_ms / 1000
    assert abs(event.timestamp - enqueued) < 0.002  # no mapping, so the message's enqueued time


def test_malformed_bodies_are_forwarded_raw_or_counted_never_silently_dropped(
    harness: PipelineHarness, hub: FakeEventHubs, start: Callable[..., RunningInput],
    caplog: pytest.LogCaptureFixture,
) -> None:
    hub.send("0", b'{"records": [{"category": "AuditLogs", "time": "2024-05-14T09:00:00Z"')  # truncated
    hub.send("0", b"{}")
    hub.send("0", body(sign_in(1)))
    hub.send("0", b"[{\"category\": \"SignInLogs\"}, {\"category\": \"AuditLogs\"}]")
    caplog.set_level(logging.WARNING, "test.eventhub")
    running = start(config_for(hub, filesets=["signinlogs"]))
    events = harness.take(4)
    wait_for(lambda: running.context.stats.extra.get("empty_bodies") == 1, what="the empty body counted")
    stats = dict(running.context.stats.extra)
    running.halt()
    raw = events[0]
    assert raw.fields["tags"] == ["_parse_failure", "forwarded"]
    assert raw.fields["message"].startswith('{"records": [{"category"')
    assert "cannot decode" in raw.fields["error"]["message"]
    assert raw.fields["event"]["dataset"] == "azure.signinlogs"
    assert ids(events) == ["0-0-0", "0-2-0", "0-3-0", "0-3-1"]
    assert stats["parse_failures"] == 1 and stats["records"] == 3 and stats["messages"] == 4
    assert any("holds no records: the body is an empty JSON object" in line for line in caplog.messages)
    # the empty message still moved the partition's checkpoint, in order
    assert registry_cursor(harness, "0")["sequence_number"] == 3


@pytest.mark.parametrize("hub", [1], indirect=True)
def test_registry_mode_restart_resumes_after_the_last_acknowledged_message(
    harness: PipelineHarness, hub: FakeEventHubs, start: Callable[..., RunningInput]
) -> None:
    for number in range(6):
        hub.send("0", body(sign_in(2 * number), sign_in(2 * number + 1)))
    first = start(config_for(hub))
    acked = harness.take(6)  # three whole messages ...
    unacked = harness.take(6, ack=False)  # ... and three whose records are queued but never acknowledged
    assert len(acked) == len(unacked) == 6
    partition = wait_for(lambda: first.context.stats.extra.get("partitions", {}).get("0", {}).get(
        "acked_sequence_number") == 2 and first.context.stats.extra["partitions"]["0"], what="partition stats")
    assert partition["reading"] is True
    enqueued = hub.events("0")[2].enqueued_ms / 1000
    assert 0 <= partition["lag_s"] <= time.time() - enqueued + 0.01  # now − enqueued time of the last acked one
    first.halt()
    assert registry_cursor(harness, "0")["sequence_number"] == 2
    for number in range(6, 8):
        hub.send("0", body(sign_in(2 * number), sign_in(2 * number + 1)))
    second = start(config_for(hub))
    replayed = harness.take(10)
    assert nothing_more(harness)
    second.halt()
    assert ids(replayed) == [f"0-{sequence}-{index}" for sequence in range(3, 8) for index in (0, 1)]
    assert ids(replayed)[:6] == ids(unacked)  # the unacknowledged ones again, with the same ids
    assert registry_cursor(harness, "0")["sequence_number"] == 7


def test_start_position_latest_skips_what_was_there_and_earliest_reads_it(
    harness: PipelineHarness, hub: FakeEventHubs, start: Callable[..., RunningInput]
) -> None:
    hub.send("0", body(sign_in(1)))
    latest = start(config_for(hub, start_position="latest"), input_id="latest")
    wait_for(lambda: hub.active_receivers("0") == 1 and hub.active_receivers("1") == 1, what="both partitions")
    hub.send("1", body(sign_in(2)))
    [new] = harness.take(1)
    assert new.fields["azure"]["partition_id"] == "1"
    assert nothing_more(harness)
    latest.halt()
    earliest = start(config_for(hub, start_position="earliest"), input_id="earliest")
    events = harness.take(2)
    earliest.halt()
    assert sorted(ids(events)) == ["0-0-0", "1-0-0"]


def test_a_wrong_key_parks_the_input_with_a_line_that_names_the_hub_not_the_key(
    harness: PipelineHarness, hub: FakeEventHubs
) -> None:
    config = config_for(hub, connection_string=hub.connection_string_for(key="d3Jvbmcta2V5"))
    client = harness.connect("azure-eventhub", input_id="bad")
    context = InputContext("bad", client, threading.Event(), logging.getLogger("test.eventhub"), client.stats,
                           harness.data_path)
    with pytest.raises(PermanentInputError) as raised:
        EventHubInput(config, context).run()
    message = str(raised.value)
    assert f"event hub '{HUB}'" in message and hub.fully_qualified_namespace in message
    assert "refused the credentials" in message
    assert "d3Jvbmcta2V5" not in message and hub.key not in message


def test_an_unknown_hub_parks_the_input(harness: PipelineHarness, hub: FakeEventHubs) -> None:
    connection_string = hub.connection_string.replace(f";EntityPath={HUB}", "")
    config = config_for(hub, eventhub="insights-logs-nothere", connection_string=connection_string)
    client = harness.connect("azure-eventhub", input_id="nothere")
    context = InputContext("nothere", client, threading.Event(), logging.getLogger("test.eventhub"), client.stats,
                           harness.data_path)
    with pytest.raises(PermanentInputError, match=r"'insights-logs-nothere' .* does not exist"):
        EventHubInput(config, context).run()


@pytest.mark.parametrize("hub", [1], indirect=True)
def test_blob_checkpoint_is_written_only_after_the_ack(
    harness: PipelineHarness, hub: FakeEventHubs, azurite: Azurite, start: Callable[..., RunningInput]
) -> None:
    container = "cp-after-ack"
    for number in range(3):
        hub.send("0", body(sign_in(2 * number), sign_in(2 * number + 1)))
    config = config_for(hub, storage_account_connection_string=azurite.connection_string,
                        storage_account_container=container)
    store = BlobCheckpointStore.from_connection_string(azurite.connection_string, container)

    def checkpoints() -> dict[str, int]:
        return {c["partition_id"]: c["sequence_number"]
                for c in store.list_checkpoints(hub.fully_qualified_namespace, HUB, "$Default")}

    running = start(config)
    unacked = harness.take(6, ack=False)
    assert len(unacked) == 6
    wait_for(lambda: running.context.stats.extra.get("records") == 6, what="all records read")
    assert checkpoints() == {}  # received and queued, not acknowledged: no checkpoint
    # acknowledge the first message's two records only
    harness_batch_ack(unacked[:2])
    assert wait_for(lambda: checkpoints() == {"0": 0}, what="the checkpoint of the first message")
    harness_batch_ack(unacked[2:])
    assert wait_for(lambda: checkpoints() == {"0": 2}, what="the checkpoint of the last message")
    running.halt()
    blobs = {b["partition_id"]: b for b in store.list_checkpoints(hub.fully_qualified_namespace, HUB, "$Default")}
    assert blobs["0"]["offset"] == str(hub.events("0")[2].offset)
    # a new consumer resumes after the checkpoint
    hub.send("0", body(sign_in(100)))
    again = start(config, input_id="hub-again")
    [event] = harness.take(1)
    again.halt()
    assert event.meta["_id"] == "0-3-0"


def harness_batch_ack(events: list[Event]) -> None:
    """Acknowledges events the way the output does: through the acker token the pipeline gave each."""
    for event in events:
        acker, sequence = event.ack_token
        acker.done(sequence)


@pytest.mark.parametrize("hub", [2], indirect=True)
def test_filebeats_v1_checkpoints_are_taken_over(
    harness: PipelineHarness, hub: FakeEventHubs, azurite: Azurite, start: Callable[..., RunningInput]
) -> None:
    container = "filebeat-v1-checkpoints"
    for number in range(6):
        hub.send(str(number % 2), body(sign_in(number)))
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    service.create_container(container)
    offset = hub.events("0")[1].offset
    legacy = {"partitionID": "0", "epoch": 3, "owner": "5b0f9d0e", "state": "available", "token": "x",
              "checkpoint": {"offset": str(offset), "sequenceNumber": 1, "enqueueTime": "2024-05-14T09:02:17Z"}}
    service.get_blob_client(container, "0").upload_blob(orjson.dumps(legacy))
    service.get_blob_client(container, "1").upload_blob(b"not a checkpoint")
    running = start(config_for(hub, storage_account_connection_string=azurite.connection_string,
                               storage_account_container=container))
    events = harness.take(4)
    assert nothing_more(harness)
    running.halt()
    # partition 0 resumes after Filebeat's checkpoint; partition 1's blob is no checkpoint: it starts at earliest
    assert sorted(ids(events)) == ["0-2-0", "1-0-0", "1-1-0", "1-2-0"]


def test_a_storage_account_refusing_the_key_parks_the_input_without_showing_it(
    harness: PipelineHarness, hub: FakeEventHubs, azurite: Azurite
) -> None:
    wrong_key = "d3Jvbmcgc3RvcmFnZSBrZXkgZm9yIGEgdGVzdA=="
    connection_string = re.sub(r"AccountKey=[^;]+", f"AccountKey={wrong_key}", azurite.connection_string)
    config = config_for(hub, storage_account_connection_string=connection_string,
                        storage_account_container="cp-wrong-key")
    client = harness.connect("azure-eventhub", input_id="wrong-storage-key")
    context = InputContext("wrong-storage-key", client, threading.Event(), logging.getLogger("test.eventhub"),
                           client.stats, harness.data_path)
    with pytest.raises(PermanentInputError) as raised:
        EventHubInput(config, context).run()
    message = str(raised.value)
    assert "storage account 'devstoreaccount1'" in message and "'cp-wrong-key'" in message
    assert wrong_key not in message and "AccountKey" not in message
