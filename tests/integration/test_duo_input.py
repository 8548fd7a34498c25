"""The `duo` input through the real forwarder process, against the signature-checking fake Duo Admin API."""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trustme

from tests.fakes.duo_admin_api import FakeDuoAdminApi
from tests.fakes.https_server import FakeHttpsServer
from tests.fakes.lumberjack_server import Behaviour, LumberjackServer
from tests.integration.forwarder_process import ForwarderProcess, output_events, wait_until

IKEY = "DIWJ8X6AEYOR5OMC6TQ1"
SKEY = "Zh5eGmUq9zpfQnyUIu5OL9iWoMMv5ZNmk3zLJ4Ep"
STREAMS = ("auth", "admin", "telephony", "activity", "trust_monitor", "offline_enrollment")


def iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat(timespec="microseconds")


def make_record(stream: str, number: int, epoch_ms: int) -> tuple[str, dict]:
    """(dedupe id the input should give it, the record as Duo lists it)."""
    if stream == "auth":
        txid = f"tx-{number:06d}"
        return txid, {"txid": txid, "isotimestamp": iso(epoch_ms), "timestamp": epoch_ms // 1000,
                      "result": "success", "user": {"name": f"user{number}@example.com"}}
    if stream in ("telephony", "activity"):
        record_id = f"{stream}-{number:06d}"
        return record_id, {f"{stream}_id": record_id, "ts": iso(epoch_ms), "context": "authentication"}
    if stream == "trust_monitor":
        record_id = f"sbt-{number:06d}"
        return record_id, {"sbtid": record_id, "surfaced_timestamp": epoch_ms, "type": "auth", "state": "new"}
    return "", {"timestamp": epoch_ms // 1000, "action": "user_update", "object": f"{stream}-{number:06d}",
                "username": "admin@example.com", "description": "{}"}


def record_key(event: dict) -> str:
    """The record's own id, or its `object` for v1 logs (whose _id is a hash of the record)."""
    record = json.loads(event["message"])
    for name in ("txid", "telephony_id", "activity_id", "sbtid", "object"):
        if name in record:
            return record[name]
    raise AssertionError(f"unexpected record {record}")


def delivered(home: Path) -> list[str]:
    return [record_key(event) for event in output_events(home)]


def fill(duo: FakeDuoAdminApi, stream: str, count: int, first_ms: int, step_ms: int, start: int = 0) -> list[str]:
    """`count` records from `first_ms` on, two per millisecond (so pages and restarts split equal times)."""
    keys = []
    for number in range(start, start + count):
        record_id, record = make_record(stream, number, first_ms + (number - start) // 2 * step_ms)
        duo.add(stream, record)
        keys.append(record_id or record["object"])
    return keys


def input_yaml(server: FakeHttpsServer, stream: str, secret_env: str = "DUO_SECRET_KEY", name: str = "") -> str:
    return f"""
          - type: duo
            id: duo-{name or stream}
            api_hostname: "127.0.0.1:{server.port}"
            integration_key: "{IKEY}"
            secret_key: "${{{secret_env}}}"
            streams: [{stream}]
            initial_lookback: 24h
            ssl.certificate_authorities: ["{server.ca_path}"]
            backoff.init: 50ms
            backoff.max: 400ms"""


def forwarder_for(home: Path, inputs: str, settings: str = "") -> ForwarderProcess:
    return ForwarderProcess(home, f"""
        {settings}
        forwarder.inputs:{inputs}
        queue.mem:
          events: 4096
          flush.min_events: 500
          flush.timeout: 50ms
        forwarder.registry.flush: 0s
        output.file:
          path: ${{path.data}}/events
          bulk_max_size: 500
        http.enabled: true
        http.host: 127.0.0.1
        http.port: 0
        logging.metrics.enabled: false
        """)


def stats(forwarder: ForwarderProcess) -> tuple[dict, str]:
    listening = forwarder.wait_for_log("monitoring endpoint listening")["message"]
    url = re.search(r"http://\S+/stats", listening).group(0)
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return json.loads(text), text


def read_until_ms(forwarder: ForwarderProcess, stream: str) -> int:
    until = stats(forwarder)[0]["inputs"][f"duo-{stream}"][f"{stream}_read_until"]
    return round(datetime.fromisoformat(until.replace("Z", "+00:00")).timestamp() * 1000)


@pytest.fixture
def duo(monkeypatch):
    monkeypatch.setenv("DUO_SECRET_KEY", SKEY)
    with FakeHttpsServer(trustme.CA()) as server:
        yield FakeDuoAdminApi(server, IKEY, SKEY)


def test_every_stream_resumes_from_its_committed_cursor_with_nothing_repeated_or_skipped(tmp_path, duo):
    now_ms = int(time.time() * 1000)
    counts = {"auth": 2500, "admin": 1500, "telephony": 1200, "activity": 1100, "trust_monitor": 300,
              "offline_enrollment": 40}
    expected: dict[str, list[str]] = {}
    for stream, count in counts.items():
        step = 1000 if stream in ("admin", "offline_enrollment") else 7
        step = 60_000 if stream == "trust_monitor" else step  # five hours of Trust Monitor: several 1 h windows
        expected[stream] = fill(duo, stream, count, now_ms - 6 * 3600_000, step)
    withheld = fill(duo, "auth", 2, now_ms - 30_000, 1, start=900_000)
    home = tmp_path / "home"
    forwarder = forwarder_for(home, "".join(input_yaml(duo.server, stream) for stream in STREAMS))
    try:
        forwarder.start()
        total = sum(counts.values())
        wait_until(lambda: len(delivered(home)) >= total, 60, f"{total} records")
        until = {stream: wait_until(lambda s=stream: read_until_ms(forwarder, s), 30, f"{stream} cursor")
                 for stream in STREAMS}
        first_run_requests = {stream: len(duo.requests_to(stream)) for stream in STREAMS}
        assert forwarder.terminate() == 0
        assert not set(withheld) & set(delivered(home)), "records of the last two minutes were read"
        for number, stream in enumerate(STREAMS):
            # New records on the committed boundary and after it (Duo published them since).
            later = fill(duo, stream, 4, until[stream], 1000 if stream in ("admin", "offline_enrollment") else 1,
                         start=500_000 + number * 10)
            expected[stream] += later
        forwarder.start()
        total = sum(len(keys) for keys in expected.values())
        wait_until(lambda: len(delivered(home)) >= total, 60, f"{total} records after the restart")
        assert forwarder.terminate() == 0
    finally:
        forwarder.stop()
    keys = delivered(home)
    assert len(keys) == len(set(keys)), "a record was delivered twice"
    assert set(keys) == {key for stream_keys in expected.values() for key in stream_keys}
    for stream in ("auth", "telephony", "activity", "trust_monitor"):
        resumed = duo.requests_to(stream)[first_run_requests[stream]]
        assert int(resumed.param("mintime")) == until[stream], f"{stream} did not resume at its cursor"
    assert duo.rejected_signatures == 0 and duo.server.handler_errors == []
    assert SKEY not in forwarder.log_path.read_text()


def test_a_429_storm_backs_off_for_every_stream_of_the_key_and_loses_nothing(tmp_path, duo):
    now_ms = int(time.time() * 1000)
    expected = fill(duo, "auth", 3000, now_ms - 3600_000, 100) + fill(duo, "telephony", 500, now_ms - 3600_000, 50)
    duo.throttle("auth", 6)
    duo.throttle("telephony", 3)
    home = tmp_path / "home"
    forwarder = forwarder_for(home, input_yaml(duo.server, "auth") + input_yaml(duo.server, "telephony"))
    try:
        forwarder.start()
        wait_until(lambda: len(delivered(home)) >= len(expected), 60, "every record after the 429s")
        snapshot, text = stats(forwarder)
        assert forwarder.terminate() == 0
    finally:
        forwarder.stop()
    keys = delivered(home)
    assert sorted(keys) == sorted(expected)
    throttled = sum(snapshot["inputs"][f"duo-{stream}"]["http_throttled"] for stream in ("auth", "telephony"))
    assert throttled == 9
    assert "HTTP 429" in forwarder.log_path.read_text()
    assert SKEY not in text and SKEY not in forwarder.log_path.read_text()


def parked_line(forwarder: ForwarderProcess, input_id: str) -> str:
    return forwarder.wait_for_log(f"input {input_id} parked")["message"]


def test_a_wrong_secret_key_parks_only_its_input_with_the_fix_named(tmp_path, duo, monkeypatch):
    wrong = "Wrong0Secret1Key2Must3Not4Leak5Anywhere6"
    monkeypatch.setenv("DUO_WRONG_SECRET", wrong)
    expected = fill(duo, "activity", 50, int(time.time() * 1000) - 3600_000, 1000)
    home = tmp_path / "home"
    forwarder = forwarder_for(home, input_yaml(duo.server, "auth", "DUO_WRONG_SECRET")
                              + input_yaml(duo.server, "activity"))
    try:
        forwarder.start()
        message = parked_line(forwarder, "duo-auth")
        wait_until(lambda: len(delivered(home)) >= len(expected), 30, "the other input's records")
        snapshot, text = stats(forwarder)
        assert forwarder.terminate() == 0
    finally:
        forwarder.stop()
    assert "signature refused (40103)" in message and "check secret_key" in message
    assert "clock" not in message.split("check")[0]
    assert snapshot["inputs"]["duo-auth"]["state"] == "parked"
    assert snapshot["inputs"]["duo-activity"]["state"] == "running"
    assert sorted(delivered(home)) == sorted(expected)
    log_text = forwarder.log_path.read_text()
    assert "Traceback" not in log_text
    for secret in (wrong, SKEY):
        assert secret not in log_text and secret not in text


def test_a_clock_off_by_more_than_five_minutes_is_named_as_the_cause(tmp_path, duo):
    duo.clock_offset = 900
    home = tmp_path / "home"
    forwarder = forwarder_for(home, input_yaml(duo.server, "auth"))
    try:
        forwarder.start()
        message = parked_line(forwarder, "duo-auth")
        assert forwarder.terminate() == 0
    finally:
        forwarder.stop()
    assert "(40103)" in message and re.search(r"clock is (89\d|90\d) s behind", message) and "NTP" in message
    assert SKEY not in forwarder.log_path.read_text()


def test_a_missing_read_log_grant_parks_the_input_naming_the_permission(tmp_path, duo):
    duo.read_log_granted = False
    home = tmp_path / "home"
    forwarder = forwarder_for(home, input_yaml(duo.server, "admin"))
    try:
        forwarder.start()
        message = parked_line(forwarder, "duo-admin")
        snapshot, text = stats(forwarder)
        assert forwarder.terminate() == 0
    finally:
        forwarder.stop()
    assert "(40301)" in message and '"Grant read log" permission' in message
    assert '"Grant read log"' in snapshot["inputs"]["duo-admin"]["last_error"]
    assert SKEY not in text and SKEY not in forwarder.log_path.read_text()


def test_the_duo_module_reads_each_enabled_fileset_through_its_own_input_and_maps_it(tmp_path, duo):
    now_ms = int(time.time() * 1000)
    auth = fill(duo, "auth", 30, now_ms - 3600_000, 1000)
    admin_keys = fill(duo, "admin", 5, now_ms - 3600_000, 1000)
    home = tmp_path / "home"
    (home / "modules.d").mkdir(parents=True)
    module = home / "modules.d" / "duo.yml"
    module.write_text(f"""
- module: duo
  var.api_hostname: "127.0.0.1:{duo.server.port}"
  var.integration_key: "{IKEY}"
  var.secret_key: "${{DUO_SECRET_KEY}}"
  var.ssl.certificate_authorities: ["{duo.server.ca_path}"]
  auth:
    enabled: true
  admin:
    enabled: true
""")
    module.chmod(0o600)
    forwarder = forwarder_for(home, " []")
    try:
        forwarder.start()
        wait_until(lambda: len(delivered(home)) >= len(auth) + len(admin_keys), 30, "the module's records")
        snapshot, text = stats(forwarder)
        assert forwarder.terminate() == 0
    finally:
        forwarder.stop()
    events = output_events(home)
    assert sorted(record_key(event) for event in events) == sorted(auth + admin_keys)
    datasets = {event["event"]["dataset"] for event in events}
    assert datasets == {"cisco_duo.auth", "cisco_duo.admin"}
    first_auth = next(event for event in events if event["event"]["dataset"] == "cisco_duo.auth")
    assert first_auth["@metadata"]["_id"].startswith("tx-") and first_auth["user"]["name"].endswith("@example.com")
    assert {"duo-auth", "duo-admin"} <= set(snapshot["inputs"])
    assert SKEY not in text and SKEY not in forwarder.log_path.read_text()


@pytest.mark.parametrize("workers", [1, 2])
def test_records_built_in_worker_processes_arrive_as_duo_wrote_them_and_mapped(tmp_path, duo, workers):
    """With workers a page travels to them as the answer's raw bytes: `message`, `@timestamp` to the microsecond,
    the mapping and `_id` come out as they do when the record is built in the forwarder's own process."""
    first_ms = int(time.time() * 1000) - 3600_000
    records = {}
    for number in range(2300):  # three pages
        txid, record = make_record("auth", number, first_ms + number * 997)
        record["isotimestamp"] = record["isotimestamp"][:23] + f"{number % 1000:03d}+00:00"  # microseconds
        record["user"]["name"] = f"jürgen.müller{number}@例え.jp"
        record["adaptive_trust_assessments"] = {"more_secure_auth": {"trusted": number % 2 == 0, "score": 0.25}}
        duo.add("auth", record)
        records[txid] = record
    home = tmp_path / "home"
    forwarder = forwarder_for(home, input_yaml(duo.server, "auth"), f"forwarder.workers: {workers}")
    try:
        forwarder.start()
        wait_until(lambda: len(delivered(home)) >= len(records), 60, f"{len(records)} records")
        assert forwarder.terminate() == 0
    finally:
        forwarder.stop()
    events = output_events(home)
    assert sorted(record_key(event) for event in events) == sorted(records)
    for event in events:
        record = records[event["@metadata"]["_id"]]
        assert json.loads(event["message"]) == record
        assert event["@timestamp"] == record["isotimestamp"][:23] + "Z"
        assert event["user"]["name"] == record["user"]["name"] and event["event"]["outcome"] == "success"
        assert event["cisco_duo"]["auth"]["adaptive_trust_assessments"] == record["adaptive_trust_assessments"]
    log = forwarder.log_path.read_text()
    assert "built in the main process" not in log and "Traceback" not in log


def test_a_standalone_duo_input_maps_its_records_unless_normalize_is_off(tmp_path, duo):
    now_ms = int(time.time() * 1000)
    auth = fill(duo, "auth", 20, now_ms - 3600_000, 1000)
    telephony = fill(duo, "telephony", 10, now_ms - 3600_000, 1000)
    raw_input = input_yaml(duo.server, "telephony") + """
            normalize: false
            preserve_original_event: true"""
    home = tmp_path / "home"
    forwarder = forwarder_for(home, input_yaml(duo.server, "auth") + raw_input)
    try:
        forwarder.start()
        wait_until(lambda: len(delivered(home)) >= len(auth) + len(telephony), 30, "both inputs' records")
        assert forwarder.terminate() == 0
    finally:
        forwarder.stop()
    events = {record_key(event): event for event in output_events(home)}
    assert sorted(events) == sorted(auth + telephony)
    for key in auth:
        event = events[key]
        assert event["user"]["name"] == json.loads(event["message"])["user"]["name"]
        assert event["event"]["outcome"] == "success" and "original" not in event["event"]
        assert event["cisco_duo"]["auth"]["result"] == "success"
    for key in telephony:
        event = events[key]
        assert "cisco_duo" not in event and event["event"] == {"original": event["message"]}


def test_the_duo_module_decides_the_mapping_alone_its_inputs_get_no_standalone_one(tmp_path, duo):
    now_ms = int(time.time() * 1000)
    auth = fill(duo, "auth", 20, now_ms - 3600_000, 1000)
    home = tmp_path / "home"
    (home / "modules.d").mkdir(parents=True)
    module = home / "modules.d" / "duo.yml"
    module.write_text(f"""
- module: duo
  var.api_hostname: "127.0.0.1:{duo.server.port}"
  var.integration_key: "{IKEY}"
  var.secret_key: "${{DUO_SECRET_KEY}}"
  var.ssl.certificate_authorities: ["{duo.server.ca_path}"]
  var.normalize: false
  auth:
    enabled: true
""")
    module.chmod(0o600)
    forwarder = forwarder_for(home, " []")
    try:
        forwarder.start()
        wait_until(lambda: len(delivered(home)) >= len(auth), 30, "the module's records")
        assert forwarder.terminate() == 0
    finally:
        forwarder.stop()
    events = output_events(home)
    assert sorted(record_key(event) for event in events) == sorted(auth)
    for event in events:
        assert "cisco_duo" not in event and "user" not in event and "outcome" not in event["event"]
        assert event["event"]["dataset"] == "cisco_duo.auth"


def test_the_next_page_is_requested_while_the_output_still_holds_the_current_one(tmp_path, duo):
    """One page of read-ahead: with a queue smaller than a page and Logstash holding its ACKs, the input is stuck
    publishing page 1, yet page 2 has already been asked for; released, every record arrives exactly once."""
    keys = fill(duo, "auth", 2500, int(time.time() * 1000) - 3600_000, 5)
    release = threading.Event()
    with LumberjackServer(behaviour=Behaviour(hold=release)) as logstash:
        home = tmp_path / "home"
        forwarder = ForwarderProcess(home, f"""
        forwarder.inputs:{input_yaml(duo.server, "auth")}
        queue.mem:
          events: 200
          flush.min_events: 50
          flush.timeout: 10ms
        output.logstash:
          hosts: ["{logstash.address}"]
          bulk_max_size: 50
          timeout: 120s
        logging.metrics.enabled: false
        """)
        try:
            forwarder.start()
            wait_until(lambda: len(duo.requests_to("auth")) >= 2, 30, "the second page requested")
            assert duo.requests_to("auth")[1].query.get("next_offset"), "the second request is not page 2"
            assert logstash.event_count <= 200, "page 1 got past a full queue without any ACK"
            release.set()
            logstash.wait_for_events(len(keys), timeout=60)
            assert forwarder.terminate() == 0
        finally:
            release.set()
            forwarder.stop()
        received = [record_key(event) for event in logstash.events]
    assert sorted(received) == sorted(keys), "a record was lost or delivered twice"
