"""The `cisco-secure-endpoint` input through the real forwarder process, against the fake Secure Endpoint API."""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import trustme

from tests.fakes.https_server import FakeHttpsServer
from tests.fakes.lumberjack_server import Behaviour, LumberjackServer
from tests.fakes.secure_endpoint_api import FakeSecureEndpointApi, iso, make_event
from tests.integration.forwarder_process import ForwarderProcess, output_events, wait_until

CLIENT_ID = "a1b2c3d4e5f6a7b8c9d0"
API_KEY = "0f9e8d7c-6b5a-4f3e-2d1c-0b9a8f7e6d5c"


def delivered_ids(home: Path) -> list[int]:
    return [json.loads(event["message"])["id"] for event in output_events(home)]


def fill(api: FakeSecureEndpointApi, count: int, first: float, step: float, start: int = 0, **kwargs) -> list[int]:
    """`count` events from `first` on, `step` seconds apart (0: all in one second)."""
    return [api.add(make_event(number, first + (number - start) * step, **kwargs)).get("id", number)
            for number in range(start, start + count)]


def forwarder_for(home: Path, server: FakeHttpsServer, extra: str = "", key_env: str = "AMP_API_KEY",
                  settings: str = "") -> ForwarderProcess:
    return forwarder_with(home, f"""
          - type: cisco-secure-endpoint
            id: amp
            url: "{server.url}"
            client_id: "{CLIENT_ID}"
            api_key: "${{{key_env}}}"
            first_interval: 24h
            interval: 200ms
            limit: 100
            ssl.certificate_authorities: ["{server.ca_path}"]
            backoff.init: 50ms
            backoff.max: 400ms{extra}""", settings)


def forwarder_with(home: Path, inputs: str, settings: str = "") -> ForwarderProcess:
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


@pytest.fixture
def api(monkeypatch):
    monkeypatch.setenv("AMP_API_KEY", API_KEY)
    with FakeHttpsServer(trustme.CA()) as server:
        yield FakeSecureEndpointApi(server, CLIENT_ID, API_KEY)


def test_pages_then_resumes_from_the_committed_cursor_with_nothing_repeated_or_skipped(tmp_path, api):
    now = time.time()
    expected = fill(api, 730, now - 6 * 3600, 20)
    expected += fill(api, 5, now - 60, 0, start=5000)  # five events in the newest second: the boundary
    fill(api, 3, now - 3 * 86400, 10, start=9000)  # older than first_interval: never asked for
    home = tmp_path / "home"
    forwarder = forwarder_for(home, api.server)
    try:
        forwarder.start()
        wait_until(lambda: len(delivered_ids(home)) >= len(expected), 60, f"{len(expected)} events")
        wait_until(lambda: stats(forwarder)[0]["inputs"]["amp"].get("boundary_repeats_skipped", 0) >= 5, 30,
                   "a second poll skipping the boundary events")
        first_run = len(api.event_requests())
        _, text = stats(forwarder)
        assert forwarder.terminate() == 0
        later = fill(api, 3, now - 60, 0, start=6000)  # new events on the committed boundary second
        later += fill(api, 4, now - 30, 1, start=7000)
        forwarder.start()
        wait_until(lambda: len(delivered_ids(home)) >= len(expected) + len(later), 60, "the events after a restart")
        assert forwarder.terminate() == 0
    finally:
        forwarder.stop()
    ids = delivered_ids(home)
    assert len(ids) == len(set(ids)), "an event was delivered twice"
    assert sorted(ids) == sorted(expected + later)
    first = api.event_requests()[0]
    assert first.param("limit") == "100" and first.param("offset") is None
    assert any(request.param("offset") == "700" for request in api.event_requests()), "links.next not followed"
    resumed = api.event_requests()[first_run]
    assert resumed.param("start_date") == iso(now - 60), "the restart did not resume at the newest event's second"
    assert api.gzipped == len(api.event_requests())
    assert api.server.handler_errors == []
    assert all(event["@metadata"]["_id"] == str(json.loads(event["message"])["id"]) for event in output_events(home))
    assert API_KEY not in text and API_KEY not in forwarder.log_path.read_text()


def test_events_without_an_id_are_deduped_by_fingerprint_and_event_types_filter(tmp_path, api):
    now = time.time()
    api.add(make_event(1, now - 100, event_type_id=553648143))  # not asked for
    for number in range(10, 14):
        api.add(make_event(number, now - 50, with_id=False))
    home = tmp_path / "home"
    forwarder = forwarder_for(home, api.server, "\n            event_types: [1090519054]")
    try:
        forwarder.start()
        wait_until(lambda: len(output_events(home)) >= 4, 30, "the four events without an id")
        wait_until(lambda: len(api.event_requests()) >= 3, 30, "two more polls over the same boundary second")
        assert forwarder.terminate() == 0
    finally:
        forwarder.stop()
    events = output_events(home)
    assert sorted(json.loads(event["message"])["detection_id"] for event in events) == [
        str(8000000000000000000 + number) for number in range(10, 14)]
    assert len({event["@metadata"]["_id"] for event in events}) == 4
    assert all(request.query["event_type[]"] == ["1090519054"] for request in api.event_requests())


@pytest.mark.parametrize("workers", [1, 2])
def test_events_are_built_in_worker_processes_and_an_integer_beyond_64_bits_stays_exact(tmp_path, api, workers):
    """With workers the page travels to them as the answer's bytes and is decoded there as the input decodes it,
    by the standard library: an integer beyond 64 bits stays exact, in `message` and in the mapped fields."""
    huge = 123456789012345678901234567890
    expected = fill(api, 250, time.time() - 3600, 5)
    api.add({**make_event(900, time.time() - 30), "detection_count": huge})
    expected.append(6761826132415096000 + 900)
    home = tmp_path / "home"
    forwarder = forwarder_for(home, api.server, settings=f"forwarder.workers: {workers}")
    try:
        forwarder.start()
        wait_until(lambda: len(delivered_ids(home)) >= len(expected), 60, f"{len(expected)} events")
        snapshot, _ = stats(forwarder)
        assert forwarder.terminate() == 0
    finally:
        forwarder.stop()
    assert sorted(delivered_ids(home)) == sorted(expected)
    events = output_events(home)
    assert all(event["event"]["code"] == "1090519054" and event["host"]["hostname"] for event in events), "unmapped"
    (special,) = [event for event in events if "detection_count" in event["message"]]
    assert str(huge) in special["message"]
    assert special["cisco"]["amp"]["detection_count"] == huge
    assert snapshot["inputs"]["amp"]["published"] == len(expected)
    log = forwarder.log_path.read_text()
    assert "built in the main process" not in log and "Traceback" not in log


def test_slows_down_before_the_quota_runs_out_and_waits_for_the_reset_on_429(tmp_path, monkeypatch):
    monkeypatch.setenv("AMP_API_KEY", API_KEY)
    with FakeHttpsServer(trustme.CA()) as server:
        api = FakeSecureEndpointApi(server, CLIENT_ID, API_KEY, quota=8, quota_window=3.0, header_style="documented")
        expected = fill(api, 1500, time.time() - 3600, 2)  # 15 pages of 100: twice the quota of one window
        api.throttle(1, reset_seconds=2)
        home = tmp_path / "home"
        forwarder = forwarder_for(home, server)
        try:
            forwarder.start()
            wait_until(lambda: len(delivered_ids(home)) >= len(expected), 90, "every event within the quota")
            snapshot, _ = stats(forwarder)
            assert forwarder.terminate() == 0
        finally:
            forwarder.stop()
        assert sorted(delivered_ids(home)) == sorted(expected)
        assert api.over_quota == 0, "the input spent the quota to 0 and got 429s"
        (throttled_at, status, _), (retried_at, _, _) = api.answers[0], api.answers[1]
        assert status == 429 and retried_at - throttled_at >= 1.9, "the 429's reset was not waited for"
        amp = snapshot["inputs"]["amp"]
        assert amp["quota_waits"] >= 1 and amp["http_throttled"] == 1


def test_a_wrong_api_key_parks_the_input_with_the_fix_and_never_shows_the_key(tmp_path, api, monkeypatch):
    wrong = "ffffffff-wrong-key-must-not-leak-0000"
    monkeypatch.setenv("AMP_WRONG_KEY", wrong)
    fill(api, 3, time.time() - 600, 1)
    home = tmp_path / "home"
    forwarder = forwarder_for(home, api.server, key_env="AMP_WRONG_KEY")
    try:
        forwarder.start()
        line = forwarder.wait_for_log("input amp parked")["message"]
        snapshot, text = stats(forwarder)
        assert forwarder.terminate() == 0
    finally:
        forwarder.stop()
    assert "HTTP 401" in line and "check client_id and api_key" in line and CLIENT_ID in line
    assert "Traceback" not in forwarder.log_path.read_text()
    assert snapshot["inputs"]["amp"]["state"] == "parked"
    assert len(api.event_requests()) == 1 and output_events(home) == []
    assert wrong not in text and wrong not in forwarder.log_path.read_text()


def test_the_cisco_module_amp_fileset_reads_through_the_input_and_maps_each_event(tmp_path, api):
    expected = fill(api, 120, time.time() - 3600, 10)
    home = tmp_path / "home"
    (home / "modules.d").mkdir(parents=True)
    module = home / "modules.d" / "cisco.yml"
    module.write_text(f"""
- module: cisco
  amp:
    var.url: "{api.server.url}/v1/events?offset=0&limit=300"
    var.client_id: "{CLIENT_ID}"
    var.api_key: "${{AMP_API_KEY}}"
    var.interval: 1s
    var.limit: 50
    var.ssl.certificate_authorities: ["{api.server.ca_path}"]
""")
    module.chmod(0o600)
    forwarder = forwarder_with(home, " []")
    try:
        forwarder.start()
        wait_until(lambda: len(output_events(home)) >= len(expected), 30, "the fileset's events")
        snapshot, text = stats(forwarder)
        assert forwarder.terminate() == 0
    finally:
        forwarder.stop()
    events = output_events(home)
    assert sorted(json.loads(event["message"])["id"] for event in events) == sorted(expected)
    for event in events:
        record = json.loads(event["message"])
        assert event["event"]["dataset"] == "cisco.amp" and event["event"]["module"] == "cisco"
        assert event["event"]["code"] == "1090519054" and event["event"]["action"] == "Threat Detected"
        assert event["host"]["hostname"] == record["computer"]["hostname"].split(".")[0]
        assert event["file"]["hash"]["sha256"] == record["file"]["identity"]["sha256"]
        assert event["tags"] == ["cisco-amp", "forwarded"]
        assert event["@metadata"]["_id"] == str(record["id"])
    assert "cisco-amp" in snapshot["inputs"]
    assert API_KEY not in text and API_KEY not in forwarder.log_path.read_text()


def test_a_kill_mid_poll_resumes_at_the_next_page_and_loses_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("AMP_API_KEY", API_KEY)
    with FakeHttpsServer(trustme.CA()) as server:
        api = FakeSecureEndpointApi(server, CLIENT_ID, API_KEY, page_latency=0.1)
        expected = fill(api, 3000, time.time() - 7200, 2)  # 30 pages of 100
        home = tmp_path / "home"
        forwarder = forwarder_for(home, server)
        try:
            forwarder.start()
            wait_until(lambda: len(delivered_ids(home)) >= 800, 60, "a part of the first poll")
            forwarder.kill_hard()
            killed_after = len(api.event_requests())
            forwarder.start()
            wait_until(lambda: set(delivered_ids(home)) >= set(expected), 90, "every event after the kill")
            assert forwarder.terminate() == 0
        finally:
            forwarder.stop()
    ids = delivered_ids(home)
    assert sorted(set(ids)) == sorted(expected)
    resumed = api.event_requests()[killed_after]
    assert int(resumed.param("offset") or 0) >= 700, "the restart read the poll again from its first page"
    assert len(ids) - len(set(ids)) <= 300, "more repeated than the pages in flight at the kill"


def test_the_next_page_is_requested_while_the_output_still_holds_the_current_one(tmp_path, api):
    """One page of read-ahead: with a queue smaller than a page and Logstash holding its ACKs, the input is stuck
    publishing page 1, yet page 2 has already been asked for; released, every event arrives exactly once."""
    ids = fill(api, 1200, time.time() - 3600, 1)
    release = threading.Event()
    with LumberjackServer(behaviour=Behaviour(hold=release)) as logstash:
        home = tmp_path / "home"
        forwarder = ForwarderProcess(home, f"""
        forwarder.inputs:
          - type: cisco-secure-endpoint
            id: amp
            url: "{api.server.url}"
            client_id: "{CLIENT_ID}"
            api_key: "${{AMP_API_KEY}}"
            limit: 500
            ssl.certificate_authorities: ["{api.server.ca_path}"]
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
            wait_until(lambda: len(api.event_requests()) >= 2, 30, "the second page requested")
            assert api.event_requests()[1].param("offset") == "500", "the second request is not page 2"
            assert logstash.event_count <= 200, "page 1 got past a full queue without any ACK"
            release.set()
            logstash.wait_for_events(len(ids), timeout=60)
            assert forwarder.terminate() == 0
        finally:
            release.set()
            forwarder.stop()
        received = [json.loads(event["message"])["id"] for event in logstash.events]
    assert sorted(received) == sorted(ids), "an event was lost or delivered twice"
