"""At-least-once to a Lumberjack receiver: the forwarder process is killed, the receiver goes away."""

from __future__ import annotations

import random
import re
import threading

import orjson

from tests.fakes.lumberjack_server import LumberjackServer
from tests.integration.forwarder_process import ForwarderProcess, wait_until

QUEUE_EVENTS = 4096

FILESTREAM_TO_LOGSTASH = """
    forwarder.inputs:
      - type: filestream
        id: numbered
        paths: ["{path}"]
        prospector.scanner.check_interval: 0.1s
    queue.mem:
      events: {queue_events}
      flush.min_events: 2048
      flush.timeout: 50ms
    forwarder.registry.flush: {registry_flush}
    output.logstash:
      hosts: ["{address}"]
      timeout: 5s
      backoff.init: {backoff_init}
      backoff.max: {backoff_max}
    logging.metrics.enabled: false
"""


class LineCounter:
    """Receives windows from the fake server and keeps only each event's line number."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.numbers: list[int] = []
        self.ids: set[str] = set()

    def __call__(self, payloads: list[bytes]) -> None:
        decoded = [orjson.loads(p) for p in payloads]
        with self.lock:
            for event in decoded:
                self.numbers.append(int(event["message"].split()[1]))
                self.ids.add(event["@metadata"]["_id"])

    def received(self) -> int:
        return len(self.numbers)

    def distinct(self) -> int:
        with self.lock:
            return len(set(self.numbers))


def numbered_file(path, total):
    with open(path, "w") as handle:
        for start in range(0, total, 10_000):
            handle.write("".join(f"line {n:06d} {'x' * 48}\n" for n in range(start, min(total, start + 10_000))))


def test_kill_9_three_times_at_random_moments_loses_nothing(tmp_path):
    total = 100_000
    source = tmp_path / "numbered.log"
    numbered_file(source, total)
    counter = LineCounter()
    seed = random.randrange(1 << 30)
    chooser = random.Random(seed)
    with LumberjackServer(store_events=False, decode_json=False, on_window=counter) as server:
        forwarder = ForwarderProcess(tmp_path / "home", FILESTREAM_TO_LOGSTASH.format(
            path=source, queue_events=QUEUE_EVENTS, registry_flush="0s", address=server.address, backoff_init="0.5s",
            backoff_max="2s"))
        try:
            for kill in range(3):
                forwarder.start()
                target = counter.distinct() + chooser.randint(5_000, 25_000)  # at most 75,000 before the last kill
                wait_until(lambda target=target: counter.distinct() >= target, 90,
                           f"progress before kill {kill} (seed {seed})")
                forwarder.kill_hard()
                assert counter.distinct() < total, f"kill {kill} came after the last line (seed {seed})"
            forwarder.start()
            wait_until(lambda: counter.distinct() >= total, 180, f"all {total} lines (seed {seed})")
            assert forwarder.terminate() == 0
        finally:
            forwarder.stop()
        assert server.errors == [], "the output must speak the protocol exactly"
    assert set(counter.numbers) == set(range(total)), f"lines lost (seed {seed})"
    duplicates = len(counter.numbers) - total
    # A kill can only replay what was in flight: at most the queue's bound per kill.
    assert duplicates <= 3 * QUEUE_EVENTS, f"{duplicates} duplicates (seed {seed})"
    assert len(counter.ids) == total, "a replayed line carries the same @metadata._id"


def test_receiver_down_until_reconnects_back_off_to_their_cap_then_back(tmp_path):
    """The outage lasts until the delay between attempts has grown to backoff.max and stayed there, not a fixed time."""
    first, second = 20_000, 20_000
    source = tmp_path / "numbered.log"
    numbered_file(source, first)
    counter = LineCounter()
    with LumberjackServer(store_events=False, decode_json=False, on_window=counter) as server:
        forwarder = ForwarderProcess(tmp_path / "home", FILESTREAM_TO_LOGSTASH.format(
            path=source, queue_events=QUEUE_EVENTS, registry_flush="1s", address=server.address, backoff_init="0.1s",
            backoff_max="1.6s"))
        try:
            forwarder.start()
            wait_until(lambda: counter.distinct() >= first, 60, "the first lines")
            retries_before = len(_retry_delays(forwarder))
            server.stop_listening()
            server.drop_connections()
            with open(source, "a") as handle:
                handle.write("".join(f"line {n:06d} {'y' * 48}\n" for n in range(first, first + second)))
            # delay ceilings 0.1, 0.2, 0.4, 0.8, 1.6, 1.6 s: the sixth failed attempt waits at the cap, so the
            # receiver stays down through five growing delays
            wait_until(lambda: len(_retry_delays(forwarder)) >= retries_before + 6, 60,
                       "six failed attempts while the receiver is down")
            assert forwarder.alive(), "the forwarder must not exit while the receiver is down"
            server.resume_listening()
            wait_until(lambda: counter.distinct() >= first + second, 60, "every line after the receiver is back")
            assert forwarder.terminate() == 0
        finally:
            forwarder.stop()
    assert set(counter.numbers) == set(range(first + second))
    delays = _retry_delays(forwarder)
    assert len(delays) >= 3, f"backoff must be visible in the log: {delays}"
    assert max(delays) > min(delays), f"the delay grows between attempts: {delays}"
    assert any(line.get("message", "").startswith("logstash: reconnected") or
               line.get("message", "").startswith("logstash: connected") for line in forwarder.log_lines()[-50:])


def _retry_delays(forwarder: ForwarderProcess) -> list[float]:
    retries = [line["message"] for line in forwarder.log_lines() if "retrying in" in line.get("message", "")]
    return [_seconds(re.search(r"retrying in ([\d.]+)(m?s)", m)) for m in retries]


def _seconds(match: re.Match) -> float:
    return float(match.group(1)) / (1000 if match.group(2) == "ms" else 1)
