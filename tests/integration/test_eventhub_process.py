"""The `azure` module through the real `forwarder` process: kill -9 and restart, and two forwarders sharing a hub.

The fake Event Hubs namespace runs in the test process and Azurite as its own
process; each forwarder is `python -m forwarder` with a vendor-guide
`modules.d/azure.yml` whose secrets come from the environment.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import threading
import urllib.request
from pathlib import Path

import orjson
from azure.core.exceptions import ResourceNotFoundError
from azure.eventhub.extensions.checkpointstoreblob import BlobCheckpointStore

from tests.fakes.azurite import Azurite
from tests.fakes.eventhubs_amqp import FakeEventHubs
from tests.integration.forwarder_process import ForwarderProcess, output_events, wait_until

HUB = "insights-logs-signinlogs"
RECORDS_PER_MESSAGE = 50
QUEUE_EVENTS = 1024
CONTAINER = "filebeat-signinlogs-insights-logs-signinlogs"  # the module's default: filebeat-<fileset>-<eventhub>


def sign_in(number: int) -> dict:
    return {
        "time": "2024-05-14T09:02:17.3097429Z",
        "resourceId": "/tenants/2a1d7f4e-3c39-4b0c-9c38-6b4e0f1e9a7d/providers/Microsoft.aadiam",
        "operationName": "Sign-in activity", "category": "SignInLogs",
        "tenantId": "2a1d7f4e-3c39-4b0c-9c38-6b4e0f1e9a7d", "resultType": "0", "callerIpAddress": "81.2.69.143",
        "properties": {
            "id": f"signin-{number:06d}", "createdDateTime": "2024-05-14T09:02:17.3097429+00:00",
            "userPrincipalName": f"u{number}@contoso.example", "ipAddress": "81.2.69.143",
            "status": {"errorCode": 0}, "isInteractive": True,
        },
    }


def send_messages(hub: FakeEventHubs, first: int, count: int) -> set[str]:
    """`count` messages of 50 sign-ins, spread over the partitions; returns the sign-in ids sent."""
    sent = set()
    for message in range(first, first + count):
        numbers = range(message * RECORDS_PER_MESSAGE, (message + 1) * RECORDS_PER_MESSAGE)
        hub.send(str(message % len(hub.partition_ids)), orjson.dumps({"records": [sign_in(n) for n in numbers]}))
        sent.update(f"signin-{n:06d}" for n in numbers)
    return sent


class MessageFeeder:
    """Sends `limit` messages of 50 sign-ins, one every 20 ms, on its own thread, as a busy diagnostic setting."""

    def __init__(self, hub: FakeEventHubs, limit: int) -> None:
        self.messages = 0
        self._limit = limit
        self._hub = hub
        self._sent: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._feed, daemon=True)
        self._thread.start()

    def _feed(self) -> None:
        while self.messages < self._limit and not self._stop.wait(0.02):
            self._sent |= send_messages(self._hub, self.messages, 1)
            self.messages += 1

    def finish(self) -> set[str]:
        self._stop.set()
        self._thread.join(10)
        return self._sent


def delivered(home: Path) -> list[str]:
    """The sign-in ids in the forwarder's output files, one per event delivered (duplicates kept)."""
    return [orjson.loads(event["message"])["properties"]["id"] for event in output_events(home)]


def forwarder_with_module(home: Path, storage: bool, extra_vars: str = "", settings: str = "") -> ForwarderProcess:
    (home / "modules.d").mkdir(parents=True, exist_ok=True)
    module = home / "modules.d" / "azure.yml"
    storage_line = 'var.storage_account_connection_string: "${AZURE_STORAGE_CONNECTION_STRING}"' if storage else ""
    module.write_text(f"""
- module: azure
  var.connection_string: "${{AZURE_EVENTHUB_CONNECTION_STRING}}"
  {storage_line}
  {extra_vars}
  activitylogs:
    enabled: false
  signinlogs:
    enabled: true
    var:
      eventhub: "{HUB}"
    input:
      # low latency for a test that kills mid-stream: the SDK reads up to `prefetch` frames per poll
      partition_receive_timeout: 200ms
      prefetch: 20
""")
    module.chmod(0o600)
    return ForwarderProcess(home, f"""
        queue.mem:
          events: {QUEUE_EVENTS}
          flush.min_events: 200
          flush.timeout: 20ms
        forwarder.registry.flush: 0s
        output.file:
          path: ${{path.data}}/events
          bulk_max_size: 500
          number_of_files: 100
        logging.metrics.enabled: false
        {settings}
        """)


def test_kill_9_mid_stream_and_restart_loses_nothing(tmp_path, monkeypatch):
    """Registry mode: the checkpoints are in the registry, written only for acknowledged messages."""
    messages = 160
    with FakeEventHubs(hub=HUB, partitions=2) as hub:
        monkeypatch.setenv("AZURE_EVENTHUB_CONNECTION_STRING", hub.connection_string)
        sent = send_messages(hub, 0, messages)
        home = tmp_path / "home"
        forwarder = forwarder_with_module(home, storage=False)
        seed = random.randrange(1 << 30)
        chooser = random.Random(seed)
        try:
            for kill in range(2):
                forwarder.start()
                target = min(len(sent), len(set(delivered(home))) + chooser.randint(500, 2_500))
                wait_until(lambda target=target: len(set(delivered(home))) >= target, 60,
                           f"progress before kill {kill} (seed {seed})")
                forwarder.kill_hard()
            more = send_messages(hub, messages, 20)  # messages that arrive while it is down
            forwarder.start()
            wait_until(lambda: set(delivered(home)) >= sent | more, 60, f"every sign-in (seed {seed})")
            assert forwarder.terminate() == 0
        finally:
            forwarder.stop()
    ids = delivered(home)
    print(f"duplicates after two kills: {len(ids) - len(sent | more)}")
    assert set(ids) == sent | more, f"sign-ins lost (seed {seed})"
    # each kill replays at most what was queued and not acknowledged, plus the partly published message of each
    # partition
    assert len(ids) - len(sent | more) <= 2 * (QUEUE_EVENTS + 2 * RECORDS_PER_MESSAGE), f"seed {seed}"
    event = output_events(home)[0]
    assert event["event"]["dataset"] == "azure.signinlogs" and event["input"]["type"] == "azure-eventhub"
    assert event["tags"] == ["forwarded"] and "host" not in event
    assert re.fullmatch(r"[01]-\d+-\d+", event["@metadata"]["_id"])
    log = forwarder.log_path.read_text()
    assert hub.key not in log
    assert "forwarder stopped" in log


def test_two_forwarders_share_a_hub_and_one_takes_over_when_the_other_is_killed(tmp_path, monkeypatch):
    """Blob mode through Azurite: partitions balanced between two processes; kill -9 one, the other takes over."""
    balancing = "var.processor_update_interval: 1s\n  var.partition_ownership_expiration_interval: 4s"
    with FakeEventHubs(hub=HUB, partitions=4) as hub, Azurite(tmp_path / "azurite") as azurite:
        monkeypatch.setenv("AZURE_EVENTHUB_CONNECTION_STRING", hub.connection_string)
        monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
        store = BlobCheckpointStore.from_connection_string(azurite.connection_string, CONTAINER)

        def owners() -> dict[str, int]:
            counts: dict[str, int] = {}
            try:
                ownerships = store.list_ownership(hub.fully_qualified_namespace, HUB, "$Default")
            except ResourceNotFoundError:  # the first forwarder has not created the container yet
                return counts
            for ownership in ownerships:
                if ownership["owner_id"]:
                    counts[ownership["owner_id"]] = counts.get(ownership["owner_id"], 0) + 1
            return counts

        first = forwarder_with_module(tmp_path / "first", storage=True, extra_vars=balancing)
        second = forwarder_with_module(tmp_path / "second", storage=True, extra_vars=balancing)
        try:
            first.start()
            wait_until(lambda: list(owners().values()) == [4], 30, "the first forwarder owning all partitions")
            second.start()
            wait_until(lambda: sorted(owners().values()) == [2, 2], 30, "two partitions each")
            feeder = MessageFeeder(hub, limit=300)
            try:
                wait_until(lambda: len(store.list_checkpoints(hub.fully_qualified_namespace, HUB, "$Default")) == 4,
                           30, "both forwarders checkpointing their partitions")
                first.kill_hard()  # mid-stream: messages keep coming to its partitions
                wait_until(lambda: feeder.messages == 300, 30, "the rest of the messages, after the kill")
            finally:
                sent = feeder.finish()
            wait_until(lambda: list(owners().values()) == [4], 30, "the second forwarder taking every partition")
            wait_until(lambda: set(delivered(tmp_path / "first") + delivered(tmp_path / "second")) >= sent, 60,
                       "every sign-in from one forwarder or the other")
            assert second.terminate() == 0
        finally:
            first.stop()
            second.stop()
        checkpoints = {c["partition_id"]: c["sequence_number"]
                       for c in store.list_checkpoints(hub.fully_qualified_namespace, HUB, "$Default")}
        assert checkpoints == {p: hub.events(p)[-1].sequence_number for p in hub.partition_ids}
    ids = delivered(tmp_path / "first") + delivered(tmp_path / "second")
    assert set(ids) == sent
    # Only what the first one delivered after its last checkpoint (at a handover or at the kill) comes twice, and
    # then from the other one: neither forwarder repeats itself.
    first_ids, second_ids = delivered(tmp_path / "first"), delivered(tmp_path / "second")
    assert len(set(first_ids)) == len(first_ids) and len(set(second_ids)) == len(second_ids)
    assert len(ids) - len(sent) == len(set(first_ids) & set(second_ids)) < len(first_ids)
    for home in (tmp_path / "first", tmp_path / "second"):
        log = (home / "stderr.log").read_text()
        assert hub.key not in log and "AccountKey" not in log


def test_worker_processes_build_map_and_count_every_record_and_one_killed_loses_nothing(tmp_path, monkeypatch):
    """forwarder.workers: 2: message bodies are decoded, built and mapped in the workers; /stats has their counts."""
    with FakeEventHubs(hub=HUB, partitions=2) as hub:
        monkeypatch.setenv("AZURE_EVENTHUB_CONNECTION_STRING", hub.connection_string)
        hub.send("0", b"{}")
        hub.send("1", b"not json")
        waiting = send_messages(hub, 100, 60)
        home = tmp_path / "home"
        forwarder = forwarder_with_module(home, storage=False, settings="""
        forwarder.workers: 2
        http.enabled: true
        http.host: 127.0.0.1
        http.port: 0
        """).start()
        try:
            listening = forwarder.wait_for_log("monitoring endpoint listening")["message"]
            stats_url = re.search(r"http://\S+/stats", listening).group(0)

            def stats() -> dict:
                with urllib.request.urlopen(stats_url, timeout=5) as response:
                    return json.loads(response.read())

            def sign_ins() -> set[str]:
                return {orjson.loads(event["message"])["properties"]["id"] for event in output_events(home)
                        if event["message"] != "not json"}

            feeder = MessageFeeder(hub, limit=100)
            try:
                wait_until(lambda: len(sign_ins()) >= 500, 60, "part of the stream delivered")
                pids = stats()["workers"]["pids"]
                assert len(pids) == 2 and os.getpid() not in pids
                os.kill(pids[0], signal.SIGKILL)
                wait_until(lambda: stats()["workers"]["restarts"] == 1, 30, "the killed worker replaced")
                wait_until(lambda: feeder.messages == 100, 30, "the rest of the messages, after the kill")
            finally:
                sent = feeder.finish() | waiting
            wait_until(lambda: sign_ins() >= sent, 60, "every sign-in")
            # the bodies were decoded and the records built and mapped there (a worker idle since its fork: 0.0 s)
            workers_cpu = sum(sum(process_cpu_seconds(pid)) for pid in stats()["workers"]["pids"])
            assert workers_cpu >= 0.05, f"the workers used {workers_cpu:.2f}s of CPU for {len(sent)} records"
            [counted] = wait_until(lambda: [entry for entry in stats()["inputs"].values()
                                            if entry.get("records") == len(sent)], 30, "every record counted")
            assert forwarder.terminate() == 0
        finally:
            forwarder.stop()
    assert (counted["messages"], counted["parse_failures"], counted["empty_bodies"]) == (162, 1, 1)
    events = output_events(home)
    [raw] = [event for event in events if event["message"] == "not json"]
    assert raw["tags"] == ["_parse_failure", "forwarded"] and raw["@metadata"]["_id"] == "1-0-0"
    mapped = next(event for event in events if event["message"] != "not json")
    assert mapped["event"]["dataset"] == "azure.signinlogs" and mapped["azure"]["eventhub"] == HUB
    assert mapped["user"]["email"].endswith("@contoso.example") and mapped["source"]["ip"] == "81.2.69.143"
    log = forwarder.log_path.read_text()
    assert "holds no records: the body is an empty JSON object" in log
    assert hub.key not in log


def process_cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks
