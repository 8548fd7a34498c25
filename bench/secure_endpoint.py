"""Cisco Secure Endpoint events through the real forwarder process, from a fake `GET /v1/events` to the file output.

Three processes: the fake API (bench/secure_endpoint_fake.py: HTTP Basic
auth, quota headers, pages of 500 newest first with `links.next`, gzipped),
this script, and `python -m forwarder` with the cisco module's `amp` fileset
(the `cisco_secure_endpoint` ECS mapping) and `output.file`. From the same
fake, in the same run:

  ceiling     the input's own SecureEndpointClient (our requests session, gzip, JSON decoding) pages through
              the whole backfill alone, with no pipeline: events/s.
  forwarder   events/s from the fake's first events request to the last event written (fsynced) by the
              file output.
  stages      per-event cost of each piece alone on this thread, on events fetched from the fake: the
              input's part (key, date, repeat checks, run, the event's place in the page as payload, pickling
              the chunk with the page's raw bytes: what stays in the forwarder's main process with workers),
              the builder's part (unpickling, decoding the page, the `message` text, the Event: what a worker
              process does first), the cisco_secure_endpoint mapping, the output's encoder.

While the forwarder runs, its resident memory (VmRSS, from /proc) is sampled
every second with the output's acked count.

Usage (from the repository root, package installed with `pip install -e .`):

    python bench/secure_endpoint.py [--events 200000] [--step-ms 10] [--workers auto|N] [--keep]

`--workers` writes `forwarder.workers` into the forwarder's config (left out: its default). The
forwarder's CPU is summed over its whole process tree (the worker processes included).
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import pickle
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from duo_auth import tree_cpu_split  # noqa: E402
from entraid_graph import (  # noqa: E402
    memory_report,
    process_cpu_seconds,
    start_forwarder,
)
from secure_endpoint_fake import API_KEY_VARIABLE  # noqa: E402

from forwarder.inputs.api_pages import RawPage  # noqa: E402
from forwarder.inputs.secure_endpoint import (  # noqa: E402
    RECORD_KIND,
    _event_time,
    build_secure_endpoint_event,
    decode_page,
)
from forwarder.inputs.secure_endpoint_client import SecureEndpointClient  # noqa: E402
from forwarder.inputs.secure_endpoint_config import SecureEndpointConfig  # noqa: E402
from forwarder.inputs.secure_endpoint_cursor import Run, SecureEndpointCursor, date_epoch, event_key  # noqa: E402
from forwarder.modules.cisco_secure_endpoint_processor import cisco_secure_endpoint_processor  # noqa: E402
from forwarder.outputs.codec import EventEncoder  # noqa: E402
from forwarder.stats import InputStats  # noqa: E402

INPUT_ID = "cisco-amp"
PAGE_LIMIT = 500
STAGE_EVENTS = 50_000
MODULE_FIELDS = {"event": {"module": "cisco", "dataset": "cisco.amp"}, "fileset": {"name": "amp"},
                 "service": {"type": "cisco"}}


class FakeSecureEndpoint:
    """The fake as a child process; closing its stdin ends it."""

    def __init__(self, events: int, step_ms: int, api_key: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "secure_endpoint_fake.py"), "--events", str(events),
             "--step-ms", str(step_ms)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env={**os.environ, API_KEY_VARIABLE: api_key},
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit("the fake Secure Endpoint API did not start")
        info = json.loads(line)
        self.url: str = info["url"]
        self.ca: str = info["ca"]
        self.client_id: str = info["client_id"]
        self.first_ms: int = info["first_ms"]

    def counters(self) -> dict[str, Any]:
        return requests.get(f"{self.url}/bench/stats", verify=self.ca, timeout=10).json()

    def reset_counters(self) -> None:
        requests.post(f"{self.url}/bench/reset", verify=self.ca, timeout=10).raise_for_status()

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.process.pid)

    def stop(self) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        rest = self.process.stdout.read()
        self.process.wait(10)
        if "handler_errors" in rest:
            raise SystemExit(f"the fake Secure Endpoint API failed: {rest.strip()}")


def api_client(fake: FakeSecureEndpoint, api_key: str) -> SecureEndpointClient:
    config = SecureEndpointConfig(
        base_url=fake.url, client_id=fake.client_id, api_key=api_key, first_interval=86400.0, interval=60.0,
        limit=PAGE_LIMIT, event_types=[], ca_bundle=fake.ca, proxy_url=None, backoff_init=1.0, backoff_max=60.0,
        normalize=True)
    return SecureEndpointClient(config, threading.Event(), logging.getLogger("bench"))


def fetch_pages(fake: FakeSecureEndpoint, api_key: str, limit: int | None = None) -> Iterator[RawPage]:
    """Yields each page (its events and raw bytes), from the oldest event's second through `links.next`, as the
    input reads them."""
    client = api_client(fake, api_key)
    start = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(fake.first_ms // 1000))
    url: str | None = f"{fake.url}/v1/events"
    params: list[tuple[str, str]] | None = [("start_date", start), ("limit", str(PAGE_LIMIT))]
    received = 0
    try:
        while url is not None and (limit is None or received < limit):
            body, raw = client.get_page(url, params)
            events = body["data"]
            received += len(events)
            yield RawPage(RECORD_KIND, raw, events, decode_page)
            url, params = body["metadata"]["links"].get("next"), None
    finally:
        client.close()


def ceiling(fake: FakeSecureEndpoint, api_key: str, events: int) -> dict[str, float]:
    """Events/s of SecureEndpointClient alone: GET, gunzip, decode, page to the end. No pipeline."""
    received = pages = 0
    cpu = process_cpu_seconds(os.getpid())
    started = time.perf_counter()
    for page in fetch_pages(fake, api_key):
        received += len(page.records())
        pages += 1
    elapsed = time.perf_counter() - started
    if received != events:
        raise SystemExit(f"the ceiling client received {received} events, expected {events}")
    return {"rate": received / elapsed, "elapsed": elapsed, "pages": pages,
            "client_cpu_us": (process_cpu_seconds(os.getpid()) - cpu) / received * 1e6}


def stage_costs(fake: FakeSecureEndpoint, api_key: str) -> dict[str, float]:
    """µs per event of the input's event building, the mapping and the encoder, each alone, collector off."""
    pages = list(fetch_pages(fake, api_key, STAGE_EVENTS))
    gc.freeze()
    gc.disable()
    try:
        return _stage_costs(pages)
    finally:
        gc.enable()
        gc.unfreeze()


def record_payloads(page: RawPage, cursor: SecureEndpointCursor, run: Run, delivered: set[str]
                    ) -> list[tuple[int, float, str]]:
    """What SecureEndpointInput._payload does per event: key, date, repeat checks, run, its place in the page."""
    payloads = []
    for index, record in enumerate(page.records()):
        key = event_key(record)
        when = date_epoch(record.get("date"))
        if cursor.is_boundary_repeat(when, key) or key in delivered:
            continue
        delivered.add(key)
        run.delivered(when, key)
        payloads.append((index, _event_time(record, when, time.time), key))
    return payloads


def _stage_costs(pages: list[RawPage]) -> dict[str, float]:
    count = sum(len(page.records()) for page in pages)
    cursor, run, delivered = SecureEndpointCursor(0), Run(), set()
    started = time.perf_counter()
    chunks = [pickle.dumps((page, record_payloads(page, cursor, run, delivered)), pickle.HIGHEST_PROTOCOL)
              for page in pages]
    payloads = time.perf_counter() - started
    stats = InputStats(INPUT_ID, "bench")
    started = time.perf_counter()
    events = [build_secure_endpoint_event(page, payload, stats) for page, items in map(pickle.loads, chunks)
              for payload in items]
    built = time.perf_counter() - started
    mapping = cisco_secure_endpoint_processor(False)
    started = time.perf_counter()
    mapped = [mapping(event) for event in events]
    processed = time.perf_counter() - started
    for event in mapped:
        event.record = None
        for key, value in MODULE_FIELDS.items():
            event.fields.setdefault(key, dict(value))
    encoder = EventEncoder()
    started = time.perf_counter()
    for event in mapped:
        encoder.encode(event)
    encoded = time.perf_counter() - started
    return {"events": count, "payload": payloads / count * 1e6, "event": built / count * 1e6,
            "mapping": processed / count * 1e6, "encoder": encoded / count * 1e6}


def write_config(home: Path, fake: FakeSecureEndpoint, workers: str | None) -> None:
    first_interval = int(time.time() - fake.first_ms / 1000 + 600)
    (home / "modules.d").mkdir(parents=True)
    module = home / "modules.d" / "cisco.yml"
    module.write_text(textwrap.dedent(f"""\
        - module: cisco
          amp:
            enabled: true
            var.url: "{fake.url}"
            var.client_id: "{fake.client_id}"
            var.api_key: "${{{API_KEY_VARIABLE}}}"
            var.ssl.certificate_authorities: ["{fake.ca}"]
            var.first_interval: {first_interval}s
            var.limit: {PAGE_LIMIT}
        """))
    config = home / "forwarder.yml"
    config.write_text(textwrap.dedent("""\
        output.file:
          path: ${path.data}/events
          rotate_every_kb: 1048576
          number_of_files: 2
        http.enabled: true
        http.port: 0
        logging.metrics.enabled: false
        """) + (f"forwarder.workers: {workers}\n" if workers else ""))
    for path in (module, config):
        path.chmod(0o600)


def check_output(home: Path, total: int) -> None:
    """Every event once, mapped: as many distinct _ids as events, each with event.dataset cisco.amp and host.*."""
    ids = set()
    unmapped = 0
    for path in sorted((home / "data" / "events").glob("*.ndjson")):
        with open(path, "rb") as lines:
            for line in lines:
                document = json.loads(line)
                ids.add(document["@metadata"]["_id"])
                if document.get("event", {}).get("dataset") != "cisco.amp" or "hostname" not in document.get(
                        "host", {}) or "code" not in document["event"]:
                    unmapped += 1
    if len(ids) != total or unmapped:
        raise SystemExit(f"the output holds {len(ids)} distinct events of {total}, {unmapped} unmapped")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--step-ms", type=int, default=10, help="ms between two events (default 10)")
    parser.add_argument("--workers", help="forwarder.workers for the forwarder (default: its default)")
    parser.add_argument("--keep", action="store_true", help="keep the forwarder's home directory")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit("terminated"))

    api_key = secrets.token_urlsafe(30)
    fake = FakeSecureEndpoint(args.events, args.step_ms, api_key)
    home = Path(tempfile.mkdtemp(prefix="bench-amp-"))
    try:
        print(f"{args.events:,} Secure Endpoint events, one every {args.step_ms} ms, forwarder.workers "
              f"{args.workers or 'default'}, pages of {PAGE_LIMIT} "
              f"(gzipped), {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} before")
        fake_cpu = fake.cpu_seconds()
        result = ceiling(fake, api_key, args.events)
        print(f"ceiling:   {result['rate']:>9,.0f} events/s  ({args.events:,} events in {result['elapsed']:.1f}s, "
              f"{result['pages']} pages; client CPU {result['client_cpu_us']:.1f} µs/event, "
              f"fake CPU {fake.cpu_seconds() - fake_cpu:.1f}s)")
        stages = stage_costs(fake, api_key)
        fetch_us = result["client_cpu_us"]
        total_us = fetch_us + stages["payload"] + stages["event"] + stages["mapping"] + stages["encoder"]
        print(f"stages ({stages['events']:,} events, one thread): fetch+decode {fetch_us:.1f} µs, "
              f"input payload+pickle {stages['payload']:.1f} µs, unpickle+build event {stages['event']:.1f} µs, "
              f"cisco_secure_endpoint {stages['mapping']:.1f} µs, "
              f"encoder {stages['encoder']:.1f} µs = {total_us:.1f} µs/event "
              f"(≈ {1e6 / total_us:,.0f} events/s on one interpreter)")
        fake.reset_counters()
        write_config(home, fake, args.workers)
        fake_cpu = fake.cpu_seconds()
        run = start_forwarder(home, api_key, API_KEY_VARIABLE)
        try:
            run.sample_until(args.events, timeout=max(600.0, args.events / 300), input_id=INPUT_ID)
            served = fake.counters()
            user_cpu, system_cpu = tree_cpu_split(run.process.pid)
            main_cpu = process_cpu_seconds(run.process.pid)
            published = run.stats()["inputs"][INPUT_ID]["published"]
        finally:
            exit_code = run.stop() if run.process.poll() is None else run.process.returncode
        elapsed = run.last_write() - served["first_request"]
        rate = args.events / elapsed
        print(f"forwarder: {rate:>9,.0f} events/s  ({args.events:,} events in {elapsed:.1f}s; "
              f"{served['requests']:,} requests, {served['events']:,} events served, {served['refused']} refused; "
              f"forwarder CPU {user_cpu:.1f}s user + {system_cpu:.1f}s system = "
              f"{(user_cpu + system_cpu) / args.events * 1e6:.0f} µs/event "
              f"(main process {main_cpu / args.events * 1e6:.0f}), "
              f"fake CPU {fake.cpu_seconds() - fake_cpu:.1f}s)")
        print(f"ratio forwarder / ceiling: {rate / result['rate']:.2f}")
        print(memory_report(run.samples, args.events) + f"; load average {os.getloadavg()[0]:.2f} after")
        if published != args.events or exit_code != 0:
            raise SystemExit(f"published {published} of {args.events} events; forwarder exit code {exit_code}")
        check_output(home, args.events)
    finally:
        fake.stop()
        if args.keep:
            print(f"forwarder home kept in {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
