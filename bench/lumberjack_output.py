"""Throughput of the Logstash output through the whole pipeline, against a Lumberjack receiver in another process.

Two figures from the same receiver process, one after the other:

  receiver ceiling   a minimal client in this script blasts pre-encoded, compressed 2048-event windows
                     (pipelining 2) and waits for the ACKs: what the receiver itself can take.
  forwarder          a publisher thread calls `client.publish(event, cursor)` for ~1.6 KB Entra ID sign-in
                     events; the real queue, acker, registry and Logstash output carry them to the receiver.

Usage (from the repository root):

    python bench/lumberjack_output.py [--events 300000] [--ceiling-windows 150] [--queue-events 4096]
                                      [--python-gc]

The garbage collector is tuned as the runner tunes it (`forwarder.runner.CycleCollector`)
unless `--python-gc` is given.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from forwarder.outputs.codec import EventEncoder  # noqa: E402
from forwarder.outputs.logstash import OUTPUT_TYPE  # noqa: E402
from forwarder.outputs.logstash.frames import encode_window, json_frames, seal_window  # noqa: E402
from forwarder.outputs.logstash.output import LogstashOutput  # noqa: E402
from forwarder.outputs.logstash.window_encoder import WindowEncoder  # noqa: E402
from forwarder.pipeline.client import AgentInfo, ClientSettings  # noqa: E402
from forwarder.pipeline.event import Event  # noqa: E402
from forwarder.pipeline.pipeline import Pipeline  # noqa: E402
from forwarder.pipeline.queue import EventQueue  # noqa: E402
from forwarder.registry import Registry  # noqa: E402
from forwarder.runner import CycleCollector  # noqa: E402
from forwarder.schema.section import Problem, Section  # noqa: E402
from forwarder.stats import OutputStats, StatsTable  # noqa: E402

WINDOW = 2048
APPS = ["Azure Portal", "Microsoft Teams", "Office 365 Exchange Online", "Microsoft Authentication Broker", "Outlook"]
CITIES = [("Redmond", "Washington", "US", 47.68, -122.12), ("Dublin", "Dublin", "IE", 53.35, -6.26),
          ("Berlin", "Berlin", "DE", 52.52, 13.40), ("Sydney", "New South Wales", "AU", -33.87, 151.21)]


def sign_in_record(rng: random.Random, number: int) -> dict[str, Any]:
    """A Graph signIn record shaped like the real ones (ids random, so compression is not flattered)."""
    city, state, country, lat, lon = rng.choice(CITIES)
    failed = rng.random() < 0.2
    user = f"user{rng.randrange(5000)}"
    return {
        "id": str(uuid.UUID(int=rng.getrandbits(128))), "createdDateTime": f"2024-05-01T12:{number // 60 % 60:02d}:"
        f"{number % 60:02d}.{rng.randrange(10**7):07d}Z", "userDisplayName": user.title(),
        "userPrincipalName": f"{user}@contoso.com", "userId": str(uuid.UUID(int=rng.getrandbits(128))),
        "appId": str(uuid.UUID(int=rng.getrandbits(128))), "appDisplayName": rng.choice(APPS),
        "resourceId": "797f4846-ba00-4fd7-ba43-dac1f8f63013",
        "ipAddress": f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
        "clientAppUsed": "Browser", "correlationId": str(uuid.UUID(int=rng.getrandbits(128))),
        "conditionalAccessStatus": "success", "isInteractive": True, "riskDetail": "none", "riskState": "none",
        "status": {"errorCode": 50126 if failed else 0,
                   "failureReason": "Invalid username or password." if failed else None,
                   "additionalDetails": "MFA satisfied by claim in the token" if not failed else None},
        "deviceDetail": {"operatingSystem": "Windows 10", "browser": "Edge 124.0.0", "isCompliant": False},
        "location": {"city": city, "state": state, "countryOrRegion": country,
                     "geoCoordinates": {"latitude": lat, "longitude": lon}},
    }


class EventFactory:
    """Builds events the way a Graph input would hand them over: raw record in `message`, plus a few fields."""

    def __init__(self, distinct: int = 2000, seed: int = 1) -> None:
        rng = random.Random(seed)
        self.records = [sign_in_record(rng, n) for n in range(distinct)]
        self.messages = [json.dumps(record, separators=(",", ":")) for record in self.records]

    def event(self, number: int) -> Event:
        index = number % len(self.records)
        record = self.records[index]
        fields = {
            "message": self.messages[index],
            "event": {"module": "azure", "dataset": "azure.signinlogs", "kind": "event"},
            "cloud": {"provider": "azure"},
            "user": {"name": record["userDisplayName"], "email": record["userPrincipalName"]},
            "source": {"ip": record["ipAddress"]},
        }
        return Event(fields, timestamp=1714564800.0 + number / 1000, meta={"_id": f"{record['id']}-{number}"})


class Receiver:
    """The fake Lumberjack server as a child process; its counter lines are read as they come."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.lumberjack_server", "--port", "0", "--report-interval", "0.25"],
            cwd=ROOT, stdout=subprocess.PIPE, text=True,
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())
        self.latest: dict[str, Any] = {}
        self.latest_at = 0.0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("{"):
                self.latest = json.loads(line)
                self.latest_at = time.monotonic()

    def settled(self) -> dict[str, Any]:
        """The counters once a report newer than now has arrived (every event received so far is in it)."""
        asked = time.monotonic()
        while self.latest_at <= asked:
            time.sleep(0.05)
        return self.latest

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> dict[str, Any]:
        self.process.terminate()
        self.process.wait(10)
        return self.latest


def receiver_ceiling(port: int, factory: EventFactory, windows: int, level: int) -> float:
    """Events/s when the sender costs nothing: pre-encoded windows, 2 in flight, ACKs read as they come."""
    encoder = EventEncoder()
    encoded = []
    for variant in range(4):
        payloads = [encoder.encode(factory.event(variant * WINDOW + n)) for n in range(WINDOW)]
        encoded.append(encode_window(payloads, level))
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    started = time.perf_counter()
    sent = acked = 0
    buffer = b""
    while acked < windows:
        while sent < windows and sent - acked < 2:
            sock.sendall(encoded[sent % len(encoded)])
            sent += 1
        buffer += sock.recv(64)
        while len(buffer) >= 6:
            if int.from_bytes(buffer[2:6], "big") == WINDOW:
                acked += 1
            buffer = buffer[6:]
    elapsed = time.perf_counter() - started
    sock.close()
    return windows * WINDOW / elapsed


class GcClock:
    """Wall time spent in the cyclic garbage collector (it holds the GIL, so it stalls every thread)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.full_collections = 0
        self._started = 0.0

    def __enter__(self) -> GcClock:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        self.seconds += time.perf_counter() - self._started
        self.full_collections += info["generation"] == 2


def cost_breakdown(factory: EventFactory, level: int, windows: int = 10) -> dict[str, float]:
    """Microseconds per event of each stage, one thread at a time, nothing else running."""
    count = windows * WINDOW
    with tempfile.TemporaryDirectory() as data:
        registry = Registry(Path(data) / "registry", flush_interval=1.0)
        queue = EventQueue(count, 1 << 34, flush_min_events=WINDOW, flush_timeout=0.1)
        pipeline = Pipeline(queue, registry, [], AgentInfo(name="bench-host"), StatsTable())
        client = pipeline.connect(ClientSettings(input_id="bench", input_type="azure-signins"))
        encoder = WindowEncoder(EventEncoder(), level)
        timings: dict[str, float] = {}

        def timed(name: str, work: Any) -> Any:
            started = time.perf_counter()
            result = work()
            timings[name] = (time.perf_counter() - started) / count * 1e6
            return result

        events = timed("build event (input)", lambda: [factory.event(n) for n in range(count)])
        timed("publish", lambda: [client.publish(e, cursor={"signins": n}) for n, e in enumerate(events)])
        batches = [queue.get_batch(WINDOW, wait=0) for _ in range(windows)]
        frames = timed("encode JSON + J frames", lambda: [json_frames(encoder.payloads(b.events)) for b in batches])
        timed("zlib (GIL released)", lambda: [seal_window(WINDOW, f, level) for f in frames])
        timed("acknowledge", lambda: [b.ack_all() for b in batches])
        registry.close()
    return timings


def forwarder_run(port: int, factory: EventFactory, total: int, level: int, queue_events: int) -> dict[str, float]:
    """Events/s from the first publish until the acker has seen every event acknowledged."""
    with tempfile.TemporaryDirectory() as data, GcClock() as gc_clock:
        registry = Registry(Path(data) / "registry", flush_interval=1.0)
        registry.start()
        queue = EventQueue(queue_events, 1 << 30, flush_min_events=WINDOW, flush_timeout=0.1)
        stats = StatsTable()
        pipeline = Pipeline(queue, registry, [], AgentInfo(name="bench-host"), stats)
        client = pipeline.connect(ClientSettings(input_id="bench", input_type="azure-signins"))
        problems: list[Problem] = []
        settings = {"hosts": [f"127.0.0.1:{port}"], "bulk_max_size": WINDOW, "compression_level": level,
                    "pipelining": 2}
        config = OUTPUT_TYPE.parse_config(Section(settings, "output.logstash", "bench", problems))
        assert not problems, problems
        output_stats = OutputStats("logstash")
        output = LogstashOutput(config, EventEncoder(OUTPUT_TYPE.index(config)), output_stats)
        output.start(queue)

        def publish() -> None:
            for number in range(total):
                client.publish(factory.event(number), cursor={"signins": number})

        cpu_before = time.process_time()
        started = time.perf_counter()
        publisher = threading.Thread(target=publish, name="publisher")
        publisher.start()
        publisher.join()
        if not client.wait_acked(600):
            raise SystemExit(f"not every event was acknowledged: {output_stats.snapshot()}")
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_before
        output.stop(5)
        committed = registry.with_prefix("azure-signins::bench::").get("signins")
        queue.close()
        registry.close()
    assert committed == total - 1, committed
    return {"rate": total / elapsed, "elapsed": elapsed, "cpu": cpu, "bytes": output_stats.bytes_written,
            "gc": gc_clock.seconds, "full_gc": gc_clock.full_collections}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--ceiling-windows", type=int, default=150)
    parser.add_argument("--compression-level", type=int, default=3)
    parser.add_argument("--queue-events", type=int, default=4096, help="queue bound in events (in flight included)")
    parser.add_argument("--python-gc", action="store_true",
                        help="keep Python's garbage-collector defaults instead of the runner's tuning")
    args = parser.parse_args()

    factory = EventFactory()
    if not args.python_gc:
        CycleCollector().start()
    print(f"batch {WINDOW}, compression {args.compression_level}, pipelining 2, queue {args.queue_events} events, "
          f"gc {'on a timer' if not gc.isenabled() else 'automatic'}, {os.cpu_count()} CPUs")
    costs = cost_breakdown(factory, args.compression_level)
    gil = sum(value for name, value in costs.items() if "GIL released" not in name)
    print("per event, one stage at a time: " + ", ".join(f"{name} {value:.1f} µs" for name, value in costs.items()))
    print(f"  → {gil:.1f} µs hold the GIL: at most {1e6 / gil:,.0f} events/s for one process, however it overlaps")
    receiver = Receiver()
    try:
        cpu = receiver.cpu_seconds()
        ceiling = receiver_ceiling(receiver.port, factory, args.ceiling_windows, args.compression_level)
        ceiling_cpu = receiver.cpu_seconds() - cpu
        print(f"receiver ceiling:  {ceiling:>9,.0f} events/s  ({args.ceiling_windows * WINDOW:,} events, "
              f"receiver CPU {ceiling_cpu:.1f}s)")
        cpu = receiver.cpu_seconds()
        before = receiver.settled()
        result = forwarder_run(receiver.port, factory, args.events, args.compression_level, args.queue_events)
        run_cpu = receiver.cpu_seconds() - cpu
        after = receiver.settled()
        size = (after["payload_bytes"] - before["payload_bytes"]) / (after["events"] - before["events"])
        print(f"forwarder:         {result['rate']:>9,.0f} events/s  ({args.events:,} events of {size:,.0f} bytes "
              f"JSON in {result['elapsed']:.1f}s, forwarder CPU {result['cpu']:.1f}s, receiver CPU {run_cpu:.1f}s, "
              f"{result['bytes'] / args.events:.0f} bytes/event on the wire, GC {result['gc']:.2f}s "
              f"with {result['full_gc']} full collections)")
        print(f"ratio forwarder / receiver ceiling: {result['rate'] / ceiling:.2f}")
    finally:
        final = receiver.stop()
    expected = args.ceiling_windows * WINDOW + args.events
    if final.get("events") != expected or final.get("errors"):
        raise SystemExit(f"receiver counted {final}, expected {expected} events and no errors")


if __name__ == "__main__":
    main()
