"""The Logstash output against the fake Lumberjack server: delivery, ACK handling and failures.

Events go through the real pipeline (client, acker, registry): an event
counts as delivered only when the acker has committed its cursor, which
happens only when the server ACKed it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from forwarder.outputs.codec import EventEncoder
from forwarder.outputs.logstash import OUTPUT_TYPE
from forwarder.outputs.logstash.output import LogstashOutput
from forwarder.pipeline.event import Event
from forwarder.pipeline.queue import EventQueue
from forwarder.schema.section import Problem, Section
from forwarder.stats import OutputStats
from tests.fakes.lumberjack_server import Behaviour, LumberjackServer

FAST = {"timeout": "2s", "backoff": {"init": "50ms", "max": "200ms"}}


def wait_until(condition: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


class OutputRun:
    """A LogstashOutput fed by a real pipeline input; stopped by the fixture."""

    def __init__(self, harness: Any, hosts: list[str], stall_warning_after: float = 300.0, **settings: Any) -> None:
        problems: list[Problem] = []
        data = {"hosts": hosts, **FAST, **settings}
        self.config = OUTPUT_TYPE.parse_config(Section(data, "output.logstash", "test.yml", problems))
        assert problems == []
        self.harness = harness
        self.stats = OutputStats("logstash")
        self.output = LogstashOutput(self.config, EventEncoder(self.config.index), self.stats, stall_warning_after)
        self.input_id = f"lj{len(harness.stats.inputs)}"
        self.client = harness.connect("test", input_id=self.input_id)
        self.published = 0

    def publish(self, count: int) -> None:
        for _ in range(count):
            number = self.published
            event = Event({"message": f"event {number}"}, meta={"_id": f"id-{number}"})
            assert self.client.publish(event, cursor={"source": number})
            self.published += 1

    def start(self) -> OutputRun:
        self.output.start(self.harness.queue)
        return self

    def committed(self) -> Any:
        return self.harness.registry.with_prefix(f"test::{self.input_id}::").get("source")

    def wait_all_acked(self, timeout: float = 10.0) -> None:
        assert self.client.wait_acked(timeout), f"not all events acknowledged: stats {self.stats.snapshot()}"
        assert self.committed() == self.published - 1

    def stop(self) -> None:
        self.output.stop(5.0)


@pytest.fixture
def run_output(harness: Any) -> Iterator[Callable[..., OutputRun]]:
    runs: list[OutputRun] = []

    def start(hosts: list[str], **settings: Any) -> OutputRun:
        run = OutputRun(harness, hosts, **settings)
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.stop()


@pytest.fixture
def server() -> Iterator[LumberjackServer]:
    with LumberjackServer() as fake:
        yield fake


def ids(events: list[dict[str, Any]]) -> list[str]:
    return [event["@metadata"]["_id"] for event in events]


def expected_ids(count: int) -> list[str]:
    return [f"id-{n}" for n in range(count)]


def test_full_windows_are_delivered_in_order_and_acknowledged(server: LumberjackServer, run_output) -> None:
    run = run_output([server.address], bulk_max_size=50)
    run.publish(120)
    run.start()
    events = server.wait_for_events(120)
    run.wait_all_acked()
    assert ids(events) == expected_ids(120)
    assert events[0]["message"] == "event 0" and events[0]["@metadata"]["beat"] == "filebeat"
    assert [w.size for w in server.windows] == [50, 50, 20]
    assert all(w.compressed for w in server.windows)
    assert server.errors == [] and server.connections == 1
    stats = run.stats.snapshot()
    assert (stats["acked"], stats["batches"], stats["in_flight"], stats["errors"]) == (120, 3, 0, 0)
    assert stats["bytes_written"] > 0 and stats["rtt_ms"] > 0


def test_uncompressed_windows_carry_plain_j_frames(server: LumberjackServer, run_output) -> None:
    run = run_output([server.address], compression_level=0)
    run.publish(10)
    run.start()
    assert ids(server.wait_for_events(10)) == expected_ids(10)
    run.wait_all_acked()
    assert [w.compressed for w in server.windows] == [False]


def test_the_json_on_the_wire_is_exactly_event_encoders_output() -> None:
    received: list[bytes] = []
    with LumberjackServer(on_window=received.extend) as server:
        problems: list[Problem] = []
        config = OUTPUT_TYPE.parse_config(Section({"hosts": [server.address], "index": "Audit", **FAST},
                                                  "output.logstash", "t.yml", problems))
        encoder = EventEncoder(OUTPUT_TYPE.index(config))
        queue = EventQueue(100, 1 << 20, 1, 0.0)
        events = [
            Event({"message": "a \u00e9\u4e2d\U0001f600", "user": {"name": "x"}, "n": 1.5}, 1.7e9, {"_id": "1"}),
            Event({"message": "b", "tags": ["t"], "nested": {"deep": [1, {"k": None}]}}, 1.7e9 + 0.001, {}),
        ]
        for event in events:
            queue.put(event)
        output = LogstashOutput(config, encoder, OutputStats("logstash"))
        output.start(queue)
        try:
            server.wait_for_events(2)
            wait_until(lambda: queue.active_events == 0, what="events acknowledged")
        finally:
            output.stop(5.0)
    assert received == [encoder.encode(event) for event in events]
    assert server.events[0]["@metadata"]["beat"] == "audit"


@pytest.mark.parametrize("parts", [2, 5])
def test_partial_acks_acknowledge_the_confirmed_events_early(run_output, parts: int) -> None:
    release = threading.Event()
    with LumberjackServer(behaviour=Behaviour(ack_parts=parts, hold=release, keepalive_interval=0.05)) as server:
        run = run_output([server.address])
        run.publish(100)
        run.start()
        server.wait_for_events(100)
        confirmed = 100 * (parts - 1) // parts
        wait_until(lambda: run.committed() == confirmed - 1, what=f"the first {confirmed} events committed")
        assert not run.client.wait_acked(0)
        assert run.stats.acked == confirmed and run.stats.in_flight == 100 - confirmed
        release.set()
        run.wait_all_acked()
        assert server.connections == 1 and run.stats.errors == 0


def test_keepalives_keep_a_slow_window_alive_past_the_timeout(run_output) -> None:
    slow = Behaviour(ack_delay=2.5, keepalive_interval=0.2)
    with LumberjackServer(behaviour=slow) as server:
        run = run_output([server.address], timeout="1s")
        run.publish(20)
        run.start()
        run.wait_all_acked()
        assert server.connections == 1 and server.window_count == 1
        assert run.stats.errors == 0 and run.stats.retries == 0


def test_a_window_without_any_ack_times_out_and_is_resent(run_output, caplog) -> None:
    caplog.set_level(logging.INFO, "forwarder.outputs.logstash")
    with LumberjackServer(behaviour=Behaviour(never_ack=True)) as server:
        run = run_output([server.address], timeout="500ms")
        run.publish(10)
        run.start()
        server.wait_for_events(10)
        wait_until(lambda: run.stats.errors >= 1, what="the ACK timeout")
        server.behaviour = Behaviour()
        run.wait_all_acked()
        assert "no ACK within 0.5s" in run.stats.last_error
        copies = server.window_count
        assert copies >= 2 and Counter(ids(server.events)) == {i: copies for i in expected_ids(10)}
        assert run.stats.errors == copies - 1 and run.stats.retries == 10 * (copies - 1)
        assert any("10 unacknowledged events will be resent" in r.message for r in caplog.records)


def test_a_connection_dropped_mid_window_is_resent_and_acked_only_after_the_resend(run_output) -> None:
    release = threading.Event()
    with LumberjackServer(behaviour=Behaviour(drop_after_events=5, hold=release)) as server:
        run = run_output([server.address])
        run.publish(20)
        run.start()
        server.wait_for(lambda: server.connections == 2 and server.event_count == 25, what="the resent window")
        assert run.committed() is None and not run.client.wait_acked(0)
        release.set()
        run.wait_all_acked()
        assert Counter(ids(server.events)) == Counter(expected_ids(5) * 2 + expected_ids(20)[5:])
        assert run.stats.retries == 20 and run.stats.reconnects == 1 and run.stats.errors == 1
        assert server.errors == []


def test_events_are_kept_while_the_host_is_down_and_sent_when_it_comes_up(server, run_output, caplog) -> None:
    caplog.set_level(logging.INFO, "forwarder.outputs.logstash")
    server.stop_listening()
    run = run_output([server.address])
    run.publish(30)
    run.start()
    wait_until(lambda: run.stats.errors >= 2, what="two failed connection attempts")
    unreachable = [r.message for r in caplog.records if "unreachable" in r.message]
    assert unreachable[0].startswith(f"logstash: {server.address} unreachable (Connection refused); retrying in ")
    assert run.client.wait_acked(0) is False
    server.resume_listening()
    run.wait_all_acked()
    assert ids(server.events) == expected_ids(30)
    assert any(f"connected to {server.address}" in r.message for r in caplog.records)


def test_a_refusing_server_is_retried_with_backoff(run_output) -> None:
    with LumberjackServer(behaviour=Behaviour(refuse=True)) as server:
        run = run_output([server.address])
        run.publish(5)
        run.start()
        server.wait_for(lambda: server.connections >= 3, what="three connection attempts")
        server.behaviour = Behaviour()
        run.wait_all_acked()
        assert ids(server.events)[-5:] == expected_ids(5)
        assert run.stats.errors >= 2


@pytest.mark.parametrize(
    ("reply", "message"),
    [(b"2A\x00\x00\x00\x63", "ACK 99 for a window of 10 events"), (b"HTTP/1.1 400", "expected an ACK frame")],
)
def test_a_bad_ack_is_a_protocol_error_and_the_window_is_resent(run_output, reply: bytes, message: str) -> None:
    with LumberjackServer(behaviour=Behaviour(ack_override=reply)) as server:
        run = run_output([server.address])
        run.publish(10)
        run.start()
        wait_until(lambda: run.stats.errors >= 1, what="the protocol error")
        server.behaviour = Behaviour()
        run.wait_all_acked()
        assert message in run.stats.last_error and "protocol error" in run.stats.last_error


def test_failover_moves_to_the_next_host_and_back(run_output) -> None:
    with LumberjackServer() as first, LumberjackServer() as second:
        first.stop_listening()
        run = run_output([first.address, second.address])
        run.publish(20)
        run.start()
        run.wait_all_acked()
        assert ids(second.events) == expected_ids(20) and first.events == []
        second.stop_listening()
        second.drop_connections()
        first.resume_listening()
        run.publish(20)
        run.wait_all_acked()
        assert ids(first.events) == expected_ids(40)[20:]


def test_loadbalance_spreads_batches_over_all_hosts(run_output) -> None:
    slow = Behaviour(ack_delay=0.05)
    with LumberjackServer(behaviour=slow) as first, LumberjackServer(behaviour=slow) as second:
        run = run_output([first.address, second.address], loadbalance=True, bulk_max_size=10)
        run.publish(200)
        run.start()
        run.wait_all_acked()
        assert first.event_count > 0 and second.event_count > 0
        assert sorted(ids(first.events) + ids(second.events), key=lambda i: int(i[3:])) == expected_ids(200)


def test_loadbalance_hands_a_failed_hosts_batches_to_the_others(run_output) -> None:
    release = threading.Event()
    busy = Behaviour(hold=release, keepalive_interval=0.1)
    flaky_behaviour = Behaviour(drop_after_events=1)
    with LumberjackServer(behaviour=flaky_behaviour) as flaky, LumberjackServer(behaviour=busy) as healthy:
        run = run_output([flaky.address, healthy.address], loadbalance=True, bulk_max_size=10,
                         backoff={"init": "5s", "max": "5s"})
        run.publish(100)
        run.start()
        wait_until(lambda: run.stats.errors == 1, what="the flaky host to fail")
        release.set()
        # Well before the flaky host's 5 s backoff ends: the healthy host took over its batch.
        run.wait_all_acked(timeout=4.0)
        assert set(ids(flaky.events) + ids(healthy.events)) == set(expected_ids(100))
        # Whole batches of 10: the windows in flight to the flaky host, one encoded ahead, one being cut.
        assert flaky.event_count == 1 and run.stats.retries in (10, 20, 30, 40)


def test_several_workers_share_one_queue_without_ever_sending_an_empty_window(server: LumberjackServer) -> None:
    # Events one at a time, so all three workers wait in the queue for a batch to fill up at once.
    problems: list[Problem] = []
    config = OUTPUT_TYPE.parse_config(Section({"hosts": [server.address], "worker": 3, **FAST},
                                              "output.logstash", "t.yml", problems))
    queue = EventQueue(100, 1 << 24, flush_min_events=50, flush_timeout=0.02)
    output = LogstashOutput(config, EventEncoder(), OutputStats("logstash"))
    output.start(queue)
    try:
        for number in range(40):
            queue.put(Event({"message": f"event {number}"}, meta={"_id": f"id-{number}"}))
            server.wait_for_events(number + 1)
        wait_until(lambda: queue.active_events == 0, what="every event acknowledged")
    finally:
        output.stop(5.0)
    assert server.errors == []
    assert ids(server.events) == expected_ids(40)
    assert 0 not in [w.size for w in server.windows]


def test_slow_start_begins_small_and_grows_to_bulk_max_size(server: LumberjackServer, run_output) -> None:
    run = run_output([server.address], slow_start=True, bulk_max_size=100, pipelining=0)
    run.publish(600)
    run.start()
    run.wait_all_acked()
    sizes = [w.size for w in server.windows]
    assert sizes[0] == 10 and max(sizes) == 100 and sum(sizes) == 600
    assert sizes.index(100) > 3


def test_ttl_reconnects_between_batches_without_errors(server: LumberjackServer, run_output) -> None:
    run = run_output([server.address], ttl="200ms")
    run.publish(5)
    run.start()
    run.wait_all_acked()
    started = time.monotonic()
    wait_until(lambda: time.monotonic() - started > 0.3, what="the ttl to pass")
    run.publish(5)
    run.wait_all_acked()
    assert server.connections == 2 and run.stats.errors == 0


def test_a_stalled_logstash_pipeline_is_reported_once(run_output, caplog) -> None:
    caplog.set_level(logging.INFO, "forwarder.outputs.logstash")
    release = threading.Event()
    with LumberjackServer(behaviour=Behaviour(hold=release, keepalive_interval=0.05)) as server:
        run = run_output([server.address], stall_warning_after=0.3)
        run.publish(3)
        run.start()
        wait_until(lambda: any("deadlocked" in r.message for r in caplog.records), what="the stall report")
        release.set()
        run.wait_all_acked()
        stalls = [r for r in caplog.records if "deadlocked" in r.message]
        assert len(stalls) == 1 and stalls[0].levelno == logging.ERROR
        assert "none of 3 pending events" in stalls[0].message


def test_an_idle_connection_closed_by_the_server_is_reopened_quietly(server: LumberjackServer, run_output) -> None:
    run = run_output([server.address])
    run.publish(5)
    run.start()
    run.wait_all_acked()
    server.drop_connections()
    server.wait_for(lambda: server.connections == 2, what="the output to reconnect")
    run.publish(5)
    run.wait_all_acked()
    assert ids(server.events) == expected_ids(10)
    assert run.stats.errors == 0 and server.connections == 2


def test_stop_returns_promptly_with_a_window_in_flight_and_during_backoff(run_output) -> None:
    with LumberjackServer(behaviour=Behaviour(never_ack=True)) as hung, LumberjackServer() as down:
        down.stop_listening()
        waiting = run_output([hung.address], timeout="60s")
        backing_off = run_output([down.address], backoff={"init": "60s", "max": "60s"})
        waiting.publish(3)
        waiting.start()
        backing_off.start()
        hung.wait_for_events(3)
        wait_until(lambda: backing_off.stats.errors == 1, what="the first failed attempt")
        started = time.monotonic()
        waiting.stop()
        backing_off.stop()
        assert time.monotonic() - started < 2.0
        assert waiting.committed() is None
