"""The `cisco-secure-endpoint-stream` input through the real forwarder process, against a real RabbitMQ.

The queue plays a Cisco Secure Endpoint event stream: durable, filled with
events shaped as Cisco's (the reference's example with varied ids), read with
the user and password the stream was created with. The broker's own counts
(ready / unacknowledged) show when the input acknowledges a message.
"""

from __future__ import annotations

import json
import os
import re
import threading
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from tests.fakes.lumberjack_server import Behaviour, LumberjackServer
from tests.fakes.rabbitmq import PASSWORD, USER, VIRTUAL_HOST, rabbitmq  # noqa: F401 (the fixture)
from tests.integration.forwarder_process import ForwarderProcess, output_events, wait_until

FIRST_ID = 6761826132415096000
EPOCH = 1649100900


def secure_endpoint_event(number: int) -> dict:
    """The reference's Cloud IOC example event, its id, time and host varied by `number`."""
    timestamp = EPOCH + number
    return {
        "id": FIRST_ID + number, "timestamp": timestamp, "timestamp_nanoseconds": 603000000,
        "date": f"2022-04-04T{19 + number // 3600 % 4:02d}:{number // 60 % 60:02d}:{number % 60:02d}+00:00",
        "event_type": "Cloud IOC", "event_type_id": 1107296274, "detection": "W32.E6FDBB79FC-90.SBX.TG",
        "connector_guid": "f0d6ff39-2c36-4d2f-9f4a-3e6bd5ad5a1e", "severity": "High",
        "start_timestamp": timestamp - 2, "start_date": "2022-04-04T19:34:58+00:00",
        "computer": {"connector_guid": "f0d6ff39-2c36-4d2f-9f4a-3e6bd5ad5a1e",
                     "hostname": f"SVRP-FIL{number % 97:02d}.example.com", "external_ip": "81.2.69.144",
                     "active": True, "network_addresses": [{"ip": "10.10.10.10", "mac": "53:74:31:cb:37:50"}]},
        "cloud_ioc": {"description": "A known malicious file was executed", "short_description": "ExecutedMalware.ioc"},
        "file": {"disposition": "Unknown", "file_name": "svchost.exe",
                 "file_path": "file:///C%3A/Windows/System32/svchost.exe",
                 "identity": {"sha256": "cb19" + "0" * 60}},
        "command_line": {"arguments": "C:\\Windows\\System32\\svchost.exe -k netsvcs -p -s NetSetupSvc"},
        "tactics": ["TA0002"],
    }


def fill(rabbitmq, queue: str, first: int, count: int) -> set[str]:  # noqa: F811
    """Puts `count` events on the queue; returns their ids as the events' `_id` must read."""
    events = [secure_endpoint_event(number) for number in range(first, first + count)]
    rabbitmq.publish(queue, [json.dumps(event).encode() for event in events])
    return {str(event["id"]) for event in events}


def stream_config(rabbitmq, queue: str, output: str, extra: str = "",  # noqa: F811
                  password: str = PASSWORD) -> str:
    return f"""
        forwarder.inputs:
          - type: cisco-secure-endpoint-stream
            id: amp-stream
            amqp_url: "amqp://127.0.0.1:{rabbitmq.port}/{VIRTUAL_HOST}"
            queue: {queue}
            amqp_user: {USER}
            amqp_password: "{password}"
            normalize: false
            backoff.init: 0.2s
            backoff.max: 1s
{extra}
        queue.mem.flush.timeout: 10ms
        forwarder.registry.flush: 0s
        logging.metrics.enabled: false
{output}
        """


FILE_OUTPUT = """
        output.file:
          path: ${path.data}/events
          bulk_max_size: 50
"""


HTTP_STATS = """
        http.enabled: true
        http.host: 127.0.0.1
        http.port: 0
"""


def stream_stats(forwarder: ForwarderProcess) -> tuple[dict, str]:
    """The input's entry of /stats, and the whole answer's text."""
    listening = forwarder.wait_for_log("monitoring endpoint listening")["message"]
    with urllib.request.urlopen(re.search(r"http://\S+/stats", listening).group(0), timeout=5) as response:
        text = response.read().decode()
    return json.loads(text)["inputs"]["amp-stream"], text


def delivered_ids(home: Path) -> Counter:
    return Counter(event["@metadata"]["_id"] for event in output_events(home))


@pytest.fixture
def queue(rabbitmq, request) -> str:  # noqa: F811
    return rabbitmq.fresh_queue(f"amp-stream-{request.node.name[:40]}")


def test_every_event_is_delivered_once_then_acknowledged_to_the_broker(
        tmp_path: Path, rabbitmq, queue) -> None:  # noqa: F811
    expected = fill(rabbitmq, queue, 0, 300)
    rabbitmq.publish(queue, [b"not json {"])
    home = tmp_path / "home"
    forwarder = ForwarderProcess(home, stream_config(rabbitmq, queue, FILE_OUTPUT + HTTP_STATS)).start()
    try:
        wait_until(lambda: len(output_events(home)) >= 301, 60, "every event in the file")
        wait_until(lambda: rabbitmq.counts(queue) == (0, 0), 30, "every message acknowledged to the broker")
        counters = wait_until(lambda: (stats := stream_stats(forwarder)[0])["acknowledged"] == 301 and stats, 30,
                              "every acknowledgement counted in /stats")
        assert (counters["messages"], counters["parse_failures"], counters.get("redelivered", 0)) == (301, 1, 0)
        assert forwarder.terminate() == 0
    finally:
        forwarder.stop()
    events = output_events(home)
    ids = Counter(event["@metadata"]["_id"] for event in events)
    raw = [event for event in events if "_parse_failure" in event.get("tags", [])]
    assert len(raw) == 1 and raw[0]["message"] == "not json {" and "not JSON" in raw[0]["error"]["message"]
    assert set(ids) - {raw[0]["@metadata"]["_id"]} == expected
    assert all(count == 1 for count in ids.values()), "no crash, no redelivery: each event once"
    first = next(event for event in events if event["@metadata"]["_id"] == str(FIRST_ID + 61))
    assert first["@timestamp"] == "2022-04-04T19:01:01.000Z"
    assert json.loads(first["message"]) == secure_endpoint_event(61)


def test_sigkill_mid_stream_loses_nothing_and_repeats_at_most_a_prefetch(
        tmp_path: Path, rabbitmq, queue) -> None:  # noqa: F811
    prefetch, total = 40, 2500
    expected = fill(rabbitmq, queue, 0, total)
    home = tmp_path / "home"
    forwarder = ForwarderProcess(home, stream_config(rabbitmq, queue, FILE_OUTPUT, extra=f"""
            prefetch: {prefetch}
""")).start()
    try:
        wait_until(lambda: len(output_events(home)) >= 300, 60, "part of the stream delivered")
        forwarder.kill_hard()
        before_restart = len(output_events(home))
        assert before_restart < total, "the kill came too late to interrupt the stream"
        forwarder.start()
        wait_until(lambda: set(delivered_ids(home)) >= expected, 90, "every event after the restart")
        wait_until(lambda: rabbitmq.counts(queue) == (0, 0), 30, "every message acknowledged to the broker")
        assert forwarder.terminate() == 0
    finally:
        forwarder.stop()
    ids = delivered_ids(home)
    assert set(ids) == expected
    duplicates = sum(count - 1 for count in ids.values())
    assert duplicates <= prefetch, f"{duplicates} duplicates: more than the prefetch of unacknowledged messages"


def test_messages_stay_unacknowledged_while_logstash_holds_its_ack(tmp_path: Path, rabbitmq, queue) -> None:  # noqa: F811
    expected = fill(rabbitmq, queue, 0, 30)
    held = threading.Event()
    with LumberjackServer(behaviour=Behaviour(hold=held)) as server:
        home = tmp_path / "home"
        forwarder = ForwarderProcess(home, stream_config(rabbitmq, queue, f"""
        output.logstash:
          hosts: ["{server.address}"]
          timeout: 60s
""")).start()
        try:
            server.wait_for(lambda: server.event_count >= 30, 60, "the events at Logstash, not acknowledged")
            assert rabbitmq.counts(queue) == (0, 30), "delivered to us, held unacknowledged"
            held.wait(1.0)  # Logstash keeps holding the ACK a while longer: the broker still has every message
            assert rabbitmq.counts(queue) == (0, 30)
            held.set()
            wait_until(lambda: rabbitmq.counts(queue) == (0, 0), 30, "the messages acknowledged after the ACK")
            assert forwarder.terminate() == 0
        finally:
            held.set()
            forwarder.stop()
        assert Counter(event["@metadata"]["_id"] for event in server.events) == Counter(expected)


def test_amqps_with_the_sites_ca(tmp_path: Path, rabbitmq, queue) -> None:  # noqa: F811
    expected = fill(rabbitmq, queue, 0, 20)
    home = tmp_path / "home"
    config = stream_config(rabbitmq, queue, FILE_OUTPUT, extra=f"""
            ssl.certificate_authorities: ["{rabbitmq.ca_file}"]
""").replace(f"amqp://127.0.0.1:{rabbitmq.port}", f"amqps://localhost:{rabbitmq.tls_port}")
    forwarder = ForwarderProcess(home, config).start()
    try:
        wait_until(lambda: set(delivered_ids(home)) == expected, 60, "the events read over TLS")
        assert forwarder.terminate() == 0
    finally:
        forwarder.stop()


def test_a_lost_connection_is_reopened_and_the_stream_continues(tmp_path: Path, rabbitmq, queue) -> None:  # noqa: F811
    expected = fill(rabbitmq, queue, 0, 50)
    home = tmp_path / "home"
    forwarder = ForwarderProcess(home, stream_config(rabbitmq, queue, FILE_OUTPUT)).start()
    try:
        wait_until(lambda: set(delivered_ids(home)) == expected, 60, "the first events")
        rabbitmq.close_connections("amp-stream")
        forwarder.wait_for_log("reconnecting in")
        expected |= fill(rabbitmq, queue, 50, 50)
        wait_until(lambda: set(delivered_ids(home)) == expected, 60, "the events after the reconnection")
        assert forwarder.terminate() == 0
    finally:
        forwarder.stop()


def test_wrong_password_parks_the_input_with_one_line_naming_the_fix(tmp_path: Path, rabbitmq, queue) -> None:  # noqa: F811
    fill(rabbitmq, queue, 0, 5)
    home = tmp_path / "home"
    wrong = "not-the-stream-password-7731"
    forwarder = ForwarderProcess(home, stream_config(rabbitmq, queue, FILE_OUTPUT + HTTP_STATS,
                                                     password=wrong)).start()
    try:
        line = forwarder.wait_for_log("refused user")
        assert "check amqp_user and amqp_password" in line["message"]
        assert forwarder.alive()
        counters, text = wait_until(lambda: (answer := stream_stats(forwarder))[0]["last_error"] and answer, 30,
                                    "the parked input in /stats")
        assert "check amqp_user and amqp_password" in counters["last_error"] and wrong not in text
        assert forwarder.terminate() == 0
    finally:
        forwarder.stop()
    text = forwarder.log_path.read_text()
    assert wrong not in text and "Traceback" not in text
    assert output_events(home) == []
    assert rabbitmq.counts(queue) == (5, 0)


def test_on_its_own_the_input_maps_with_cisco_secure_endpoint(tmp_path: Path, rabbitmq, queue) -> None:  # noqa: F811
    expected = fill(rabbitmq, queue, 0, 10)
    home = tmp_path / "home"
    forwarder = ForwarderProcess(home, stream_config(rabbitmq, queue, FILE_OUTPUT).replace(
        "normalize: false", "normalize: true")).start()
    try:
        wait_until(lambda: set(delivered_ids(home)) == expected, 60, "the mapped events")
        assert forwarder.terminate() == 0
    finally:
        forwarder.stop()
    event = next(event for event in output_events(home) if event["@metadata"]["_id"] == str(FIRST_ID + 3))
    assert (event["event"]["code"], event["event"]["action"]) == ("1107296274", "Cloud IOC")
    assert event["host"]["hostname"] == "SVRP-FIL03"


def test_worker_processes_build_and_map_the_stream_and_every_message_is_acknowledged(
        tmp_path: Path, rabbitmq, queue) -> None:  # noqa: F811
    """forwarder.workers: 2: the input hands over message bodies; the workers parse, build and map them."""
    expected = fill(rabbitmq, queue, 0, 3000)
    rabbitmq.publish(queue, [b"not json {"])
    home = tmp_path / "home"
    config = stream_config(rabbitmq, queue, FILE_OUTPUT + HTTP_STATS).replace("normalize: false", "normalize: true")
    forwarder = ForwarderProcess(home, config + "\n        forwarder.workers: 2\n").start()
    try:
        wait_until(lambda: len(output_events(home)) >= 3001, 90, "every event in the file")
        wait_until(lambda: rabbitmq.counts(queue) == (0, 0), 30, "every message acknowledged to the broker")
        counters = wait_until(lambda: (stats := stream_stats(forwarder)[0])["acknowledged"] == 3001 and stats, 30,
                              "every acknowledgement counted in /stats")
        assert (counters["messages"], counters["parse_failures"]) == (3001, 1)
        stats_text = stream_stats(forwarder)[1]
        worker_pids = json.loads(stats_text)["workers"]["pids"]
        # the bodies were parsed and the events built and mapped there (a worker idle since its fork: 0.0 s)
        workers_cpu = sum(process_cpu_seconds(pid) for pid in worker_pids)
        assert len(worker_pids) == 2 and workers_cpu >= 0.05, f"the workers used {workers_cpu:.2f}s of CPU"
        assert forwarder.terminate() == 0
    finally:
        forwarder.stop()
    ids = delivered_ids(home)
    assert all(count == 1 for count in ids.values()) and set(ids) >= expected
    event = next(event for event in output_events(home) if event["@metadata"]["_id"] == str(FIRST_ID + 3))
    assert (event["event"]["code"], event["event"]["action"]) == ("1107296274", "Cloud IOC")


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_a_missing_queue_parks_the_input_naming_the_setting(tmp_path: Path, rabbitmq) -> None:  # noqa: F811
    home = tmp_path / "home"
    forwarder = ForwarderProcess(home, stream_config(rabbitmq, "no-such-stream-queue", FILE_OUTPUT)).start()
    try:
        line = forwarder.wait_for_log("does not exist")
        assert "check queue against the event stream's queue_name" in line["message"]
        assert forwarder.terminate() == 0
    finally:
        forwarder.stop()
    assert "Traceback" not in forwarder.log_path.read_text()


def test_a_queue_deleted_while_read_parks_the_input_naming_the_setting(
        tmp_path: Path, rabbitmq, queue) -> None:  # noqa: F811
    expected = fill(rabbitmq, queue, 0, 10)
    home = tmp_path / "home"
    forwarder = ForwarderProcess(home, stream_config(rabbitmq, queue, FILE_OUTPUT)).start()
    try:
        wait_until(lambda: set(delivered_ids(home)) == expected, 60, "the events before the deletion")
        with rabbitmq.channel() as channel:
            channel.queue_delete(queue)
        forwarder.wait_for_log("the broker cancelled the consumer")
        forwarder.wait_for_log(f"queue '{queue}' does not exist")
        assert forwarder.terminate() == 0
    finally:
        forwarder.stop()


def test_an_untrusted_broker_certificate_is_reported_naming_the_ca_setting(
        tmp_path: Path, rabbitmq, queue) -> None:  # noqa: F811
    fill(rabbitmq, queue, 0, 3)
    home = tmp_path / "home"
    config = stream_config(rabbitmq, queue, FILE_OUTPUT).replace(
        f"amqp://127.0.0.1:{rabbitmq.port}", f"amqps://localhost:{rabbitmq.tls_port}")
    forwarder = ForwarderProcess(home, config).start()
    try:
        line = forwarder.wait_for_log("the broker's certificate is not trusted")
        assert "set ssl.certificate_authorities" in line["message"]
        assert forwarder.terminate() == 0
    finally:
        forwarder.stop()
    assert output_events(home) == []
    assert rabbitmq.counts(queue) == (3, 0)


def test_the_cisco_modules_amp_fileset_in_event_stream_mode(tmp_path: Path, rabbitmq, queue) -> None:  # noqa: F811
    expected = fill(rabbitmq, queue, 0, 20)
    home = tmp_path / "home"
    module_file = home / "modules.d" / "cisco.yml"
    module_file.parent.mkdir(parents=True)
    module_file.write_text(f"""
- module: cisco
  amp:
    enabled: true
    var.mode: event_stream
    var.amqp_url: "amqp://127.0.0.1:{rabbitmq.port}/{VIRTUAL_HOST}"
    var.queue: {queue}
    var.amqp_user: {USER}
    var.amqp_password: "{PASSWORD}"
    var.prefetch: 10
""")
    module_file.chmod(0o600)
    forwarder = ForwarderProcess(home, """
        filebeat.config.modules.path: ${path.config}/modules.d/*.yml
        queue.mem.flush.timeout: 10ms
        logging.metrics.enabled: false
        output.file.path: ${path.data}/events
        """).start()
    try:
        wait_until(lambda: set(delivered_ids(home)) == expected, 60, "the stream's events through the module")
        wait_until(lambda: rabbitmq.counts(queue) == (0, 0), 30, "every message acknowledged to the broker")
        assert forwarder.terminate() == 0
    finally:
        forwarder.stop()
    event = next(event for event in output_events(home) if event["@metadata"]["_id"] == str(FIRST_ID + 7))
    assert (event["event"]["module"], event["event"]["dataset"], event["fileset"]["name"]) == (
        "cisco", "cisco.amp", "amp")
    assert event["event"]["code"] == "1107296274" and event["input"]["type"] == "cisco-secure-endpoint-stream"
    assert PASSWORD not in forwarder.log_path.read_text()


def test_a_full_queue_keeps_the_connection_served_and_nothing_repeats(tmp_path: Path, rabbitmq, queue) -> None:  # noqa: F811
    """The broker proposes 1 s heartbeats: an input blocked in publish would be cut off and receive again."""
    expected = fill(rabbitmq, queue, 0, 60)
    held = threading.Event()
    with LumberjackServer(behaviour=Behaviour(hold=held)) as server:
        home = tmp_path / "home"
        forwarder = ForwarderProcess(home, stream_config(rabbitmq, queue, f"""
        queue.mem.events: 5
        output.logstash:
          hosts: ["{server.address}"]
          bulk_max_size: 5
          timeout: 60s
""", extra="""
            prefetch: 20
""")).start()
        try:
            server.wait_for(lambda: server.event_count >= 5, 60, "the first window at Logstash, not acknowledged")
            held.wait(5.0)  # several heartbeat intervals with the forwarder's queue full
            assert forwarder.alive()
            held.set()
            wait_until(lambda: rabbitmq.counts(queue) == (0, 0), 60, "every message acknowledged to the broker")
            assert forwarder.terminate() == 0
        finally:
            held.set()
            forwarder.stop()
        assert Counter(event["@metadata"]["_id"] for event in server.events) == Counter(expected)
    assert "reconnecting in" not in forwarder.log_path.read_text()
