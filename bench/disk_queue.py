"""`queue.disk` against `queue.mem` in the same run: Logstash output events/s, and bytes on disk per event.

Throughput: the pipeline of `lumberjack_output.py` (a publisher thread calling
`client.publish` for ~1.6 KB Entra ID sign-in events, the real acker,
registry and Logstash output, the fake Lumberjack receiver in another
process), once with the memory queue and once with the disk queue (lz4, and
without compression), one after the other against the same receiver. The clock
stops when the output has every event acknowledged (for the disk queue: its
backlog is 0; its input acknowledgements only mean "durable"). Target:
disk ≥ 0.7 × memory.

Bytes on disk: N events put into a DiskQueue with nothing reading them (a
Logstash outage), then the segment files are measured: bytes per event with
lz4 and without, for the sign-in events and for ~300-byte syslog lines.

Usage (from the repository root):

    python bench/disk_queue.py [--events 200000] [--rounds 2] [--size-events 50000]
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.lumberjack_output import WINDOW, EventFactory, Receiver  # noqa: E402
from forwarder.outputs.codec import EventEncoder  # noqa: E402
from forwarder.outputs.logstash import OUTPUT_TYPE  # noqa: E402
from forwarder.outputs.logstash.output import LogstashOutput  # noqa: E402
from forwarder.pipeline.client import AgentInfo, ClientSettings  # noqa: E402
from forwarder.pipeline.disk_queue import DiskQueue  # noqa: E402
from forwarder.pipeline.disk_queue_settings import DiskQueueSettings  # noqa: E402
from forwarder.pipeline.disk_segments import scan_segment, segment_ids, segment_name  # noqa: E402
from forwarder.pipeline.event import Event  # noqa: E402
from forwarder.pipeline.pipeline import Pipeline  # noqa: E402
from forwarder.pipeline.queue import EventQueue  # noqa: E402
from forwarder.registry import Registry  # noqa: E402
from forwarder.runner import CycleCollector  # noqa: E402
from forwarder.schema.section import Problem, Section  # noqa: E402
from forwarder.stats import OutputStats, StatsTable  # noqa: E402

GIB = 1 << 30
# The forwarder's default queue.mem.events; the flush timeout is lumberjack_output.py's 0.1 s (the default 1 s
# would add up to a second of waiting for the last partial batch to the end of every memory-queue run).
MEMORY_QUEUE_EVENTS = 8192


def disk_settings(path: Path, level: int | None) -> DiskQueueSettings:
    """The defaults of `queue.disk` (read_ahead 512, write_ahead 2048), 10 GB, lz4 level `level` (None: off)."""
    return DiskQueueSettings(path=path, max_size=10 * GIB, segment_size=GIB, compression_level=level)


def run_pipeline(port: int, factory: EventFactory, total: int, queue_kind: str) -> dict[str, float]:
    """Events/s from the first publish until the output has every event acknowledged."""
    with tempfile.TemporaryDirectory() as data:
        registry = Registry(Path(data) / "registry", flush_interval=1.0)
        registry.start()
        encoder = EventEncoder()  # the output's: the disk queue stores what it will send
        if queue_kind == "mem":
            queue: EventQueue | DiskQueue = EventQueue(MEMORY_QUEUE_EVENTS, 256 << 20, flush_min_events=WINDOW,
                                                       flush_timeout=0.1)
        else:
            queue = DiskQueue(disk_settings(Path(data) / "diskqueue", None if queue_kind == "disk-none" else 0),
                              encoder.encode)
        pipeline = Pipeline(queue, registry, [], AgentInfo(name="bench-host"), StatsTable())
        client = pipeline.connect(ClientSettings(input_id="bench", input_type="azure-signins"))
        problems: list[Problem] = []
        settings = {"hosts": [f"127.0.0.1:{port}"], "bulk_max_size": WINDOW, "compression_level": 3,
                    "pipelining": 2}
        config = OUTPUT_TYPE.parse_config(Section(settings, "output.logstash", "bench", problems))
        assert not problems, problems
        output_stats = OutputStats("logstash")
        output = LogstashOutput(config, encoder, output_stats)
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
            raise SystemExit(f"not every event was acknowledged to the input: {output_stats.snapshot()}")
        deadline = time.monotonic() + 600
        while queue.active_events or output_stats.snapshot()["acked"] < total:
            if time.monotonic() > deadline:
                raise SystemExit(f"the output did not get every event acknowledged: {output_stats.snapshot()}")
            time.sleep(0.002)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_before
        output.stop(5)
        snapshot = queue.snapshot() if isinstance(queue, DiskQueue) else {}
        if isinstance(queue, DiskQueue):
            queue.finish()
        else:
            queue.close()
        registry.close()
    return {"rate": total / elapsed, "elapsed": elapsed, "cpu": cpu,
            "ratio": snapshot.get("compression_ratio") or 0.0}


def syslog_events(count: int, seed: int = 2) -> list[Event]:
    """Firewall-style syslog lines of ~300 bytes with varying addresses, ports and ids, as the syslog input makes."""
    rng = random.Random(seed)
    actions = ["accept", "deny", "drop"]
    events = []
    for number in range(count):
        source = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        target = f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        message = (f"<134>1 2024-05-01T12:{number // 60 % 60:02d}:{number % 60:02d}.{rng.randrange(1000):03d}Z "
                   f"fw-edge-{rng.randrange(4)} firewall {rng.randrange(1, 65535)} traffic - "
                   f"session_id={rng.getrandbits(48):x} action={rng.choice(actions)} proto=tcp "
                   f"src_ip={source} src_port={rng.randrange(1024, 65535)} dst_ip={target} "
                   f"dst_port={rng.choice([443, 80, 22, 53, 3389])} bytes_in={rng.randrange(10**6)} "
                   f"bytes_out={rng.randrange(10**6)} rule=\"allow-outbound-{rng.randrange(40)}\" "
                   f"user=\"CONTOSO\\\\user{rng.randrange(5000)}\"")
        fields = {"message": message,
                  "log": {"syslog": {"priority": 134, "facility": {"code": 16}, "severity": {"code": 6},
                                     "hostname": "fw-edge-1", "appname": "firewall"},
                          "source": {"address": f"192.0.2.{rng.randrange(1, 255)}:514"}},
                  "input": {"type": "syslog"}}
        events.append(Event(fields, timestamp=1714564800.0 + number / 1000, meta={"input_id": "edge-syslog"}))
    return events


def bytes_on_disk(events: list[Event], level: int | None) -> dict[str, float]:
    """Segment bytes per event when `events` wait on disk (nothing reads them: the receiver is down).

    The events go through `client.publish`, so the queue holds them as a run would: with the fields the
    pipeline adds (agent, ecs, input), framed as the writer batches them.
    """
    directory = Path(tempfile.mkdtemp(prefix="diskqueue-bench-"))
    try:
        registry = Registry(directory / "registry", flush_interval=1.0)
        encoder = EventEncoder()
        queue = DiskQueue(disk_settings(directory / "q", level), encoder.encode)
        pipeline = Pipeline(queue, registry, [], AgentInfo(name="bench-host"), StatsTable())
        client = pipeline.connect(ClientSettings(input_id="bench", input_type="bench"))
        encoded = 0
        for number, event in enumerate(events):
            client.publish(event, cursor={"n": number})
            if number < 2000:
                encoded += len(encoder.encode(event))
        if not client.wait_acked(600):
            raise SystemExit("the disk queue did not make every event durable")
        ratio = queue.snapshot()["compression_ratio"]
        queue.finish()
        registry.close()
        scans = [scan_segment(directory / "q" / segment_name(i)) for i in segment_ids(directory / "q")]
        stored = sum(scan.size for scan in scans)
        frames = sum(len(scan.frames) for scan in scans)
    finally:
        shutil.rmtree(directory)
    return {"per_event": stored / len(events), "ratio": ratio, "events_per_frame": len(events) / frames,
            "json": encoded / min(len(events), 2000)}


def report_sizes(name: str, make_events: Callable[[], list[Event]]) -> None:
    """Each run gets fresh events: publishing adds the pipeline's fields to the event it is given."""
    plain, packed = bytes_on_disk(make_events(), None), bytes_on_disk(make_events(), 0)
    print(f"{name}: {plain['json']:,.0f} bytes of event JSON; on disk {plain['per_event']:,.0f} bytes/event "
          f"without compression, {packed['per_event']:,.0f} with lz4 (ratio {packed['ratio']}, "
          f"{packed['events_per_frame']:,.0f} events per frame)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=2, help="mem / disk-lz4 / disk-none runs, interleaved")
    parser.add_argument("--size-events", type=int, default=50_000, help="events per size measurement (0: skip)")
    args = parser.parse_args()

    factory = EventFactory()
    CycleCollector().start()
    if args.size_events:
        report_sizes("Entra ID sign-ins", lambda: [factory.event(n) for n in range(args.size_events)])
        report_sizes("syslog lines", lambda: syslog_events(args.size_events))
    receiver = Receiver()
    results: dict[str, list[dict[str, Any]]] = {"mem": [], "disk-lz4": [], "disk-none": []}
    try:
        for _ in range(args.rounds):
            for kind in results:
                result = run_pipeline(receiver.port, factory, args.events, kind)
                results[kind].append(result)
                print(f"{kind:>9}: {result['rate']:>9,.0f} events/s ({args.events:,} events in "
                      f"{result['elapsed']:.1f}s, forwarder CPU {result['cpu']:.1f}s = "
                      f"{result['cpu'] / args.events * 1e6:.1f} µs/event)", flush=True)
    finally:
        final = receiver.stop()
    expected = args.rounds * len(results) * args.events
    if final.get("events") != expected or final.get("errors"):
        raise SystemExit(f"receiver counted {final}, expected {expected} events and no errors")
    memory = max(r["rate"] for r in results["mem"])
    memory_cpu = min(r["cpu"] for r in results["mem"])
    for kind in ("disk-lz4", "disk-none"):
        best = max(r["rate"] for r in results[kind])
        cpu = min(r["cpu"] for r in results[kind])
        # On a shared machine the wall-clock rate follows the load; the CPU ratio is what bounds a GIL-bound run.
        print(f"best {kind} / best mem: {best:,.0f} / {memory:,.0f} = {best / memory:.2f}× (target ≥ 0.7×); "
              f"CPU per event mem / {kind}: {memory_cpu / cpu:.2f}×")


if __name__ == "__main__":
    main()
