"""Duo authentication logs through the real forwarder process, from a fake Duo Admin API to the file output.

Three processes: the fake Admin API (bench/duo_backfill_fake.py, which verifies
every request's signature as Duo does), this script, and `python -m forwarder`
with the duo module's auth fileset enabled (`normalize` on: the `duo_ecs`
mapping) and `output.file`. From the same fake, in the same run:

  ceiling     the forwarder's own DuoAdminClient (duo_client's signing, our requests session, orjson
              decoding) pages through the whole backfill alone, with no pipeline: records/s.
  forwarder   records/s from the fake's first auth request to the last record written (fsynced) by the
              file output.
  stages      per-record cost of each piece alone on this thread, on records fetched from the fake: the
              input's part (dedupe, cursor, the record's place in the page as payload, pickling the chunk with
              the page's raw bytes: what stays in the forwarder's main process with workers), the builder's
              part (unpickling, decoding the page, the `message` text, the Event: what a worker process does
              first), the duo_ecs mapping, the encoder.

While the forwarder runs, its resident memory (VmRSS, from /proc) is sampled
every second with the output's acked count.

Usage (from the repository root, package installed with `pip install -e .`):

    python bench/duo_auth.py [--records 300000] [--step-ms 10] [--workers auto|N] [--keep]

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

from duo_backfill_fake import SECRET_VARIABLE  # noqa: E402
from entraid_graph import (  # noqa: E402
    memory_report,
    process_cpu_seconds,
    process_cpu_split,
    start_forwarder,
)

from forwarder.inputs.api_pages import RawPage  # noqa: E402
from forwarder.inputs.duo import build_duo_event, decode_page  # noqa: E402
from forwarder.inputs.duo_cursor import STREAMS, DuoCursor, dedupe_key, time_ms  # noqa: E402
from forwarder.modules.duo import module_fields  # noqa: E402
from forwarder.modules.duo_processor import duo_ecs_processor  # noqa: E402
from forwarder.net.duo_client_api import DuoAdminClient, DuoCredentials  # noqa: E402
from forwarder.outputs.codec import EventEncoder  # noqa: E402
from forwarder.stats import InputStats  # noqa: E402

INPUT_ID = "duo-auth"
PAGE_LIMIT = 1000
STAGE_RECORDS = 50_000


class FakeDuo:
    """The fake as a child process; closing its stdin ends it."""

    def __init__(self, records: int, step_ms: int, secret: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "duo_backfill_fake.py"), "--records", str(records),
             "--step-ms", str(step_ms)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env={**os.environ, SECRET_VARIABLE: secret},
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit("the fake Duo Admin API did not start")
        info = json.loads(line)
        self.url: str = info["url"]
        self.ca: str = info["ca"]
        self.host: str = info["host"]
        self.integration_key: str = info["integration_key"]
        self.first_ms: int = info["first_ms"]
        self.step_ms: int = info["step_ms"]

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
            raise SystemExit(f"the fake Duo Admin API failed: {rest.strip()}")


def admin_client(fake: FakeDuo, secret: str) -> DuoAdminClient:
    return DuoAdminClient(DuoCredentials(fake.host, fake.integration_key, secret), threading.Event(),
                          logging.getLogger("bench"), ca_bundle=fake.ca)


def fetch_pages(fake: FakeDuo, secret: str, limit: int | None = None) -> Iterator[RawPage]:
    """Yields each page (its records and raw bytes), the window [first record, now - 2 min] read with next_offset
    as the input does."""
    client = admin_client(fake, secret)
    params: dict[str, Any] = {"mintime": str(fake.first_ms), "maxtime": str(int((time.time() - 120) * 1000)),
                              "limit": str(PAGE_LIMIT), "sort": "ts:asc"}
    received = 0
    try:
        while limit is None or received < limit:
            body, raw = client.get_page(STREAMS["auth"].path, params)
            response = body["response"]
            records = response["authlogs"]
            received += len(records)
            yield RawPage("auth", raw, records, decode_page)
            next_offset = response["metadata"].get("next_offset")
            if not next_offset or not records:
                return
            params["next_offset"] = [str(part) for part in next_offset]
    finally:
        client.close()


def ceiling(fake: FakeDuo, secret: str, records: int) -> dict[str, float]:
    """Records/s of DuoAdminClient alone: sign, GET, decode, page to the end. No pipeline."""
    received = pages = 0
    cpu = process_cpu_seconds(os.getpid())
    started = time.perf_counter()
    for page in fetch_pages(fake, secret):
        received += len(page.records())
        pages += 1
    elapsed = time.perf_counter() - started
    if received != records:
        raise SystemExit(f"the ceiling client received {received} records, expected {records}")
    return {"rate": received / elapsed, "elapsed": elapsed, "pages": pages,
            "client_cpu_us": (process_cpu_seconds(os.getpid()) - cpu) / received * 1e6}


def stage_costs(fake: FakeDuo, secret: str) -> dict[str, float]:
    """µs per record of the input's event building, the duo_ecs mapping and the encoder, each alone.

    The collector is off as the runner sets it (forwarder.runner.CycleCollector), so the events held here
    are not walked over and over, which the forwarder does not do either.
    """
    pages = list(fetch_pages(fake, secret, STAGE_RECORDS))
    gc.freeze()
    gc.disable()
    try:
        return _stage_costs(pages)
    finally:
        gc.enable()
        gc.unfreeze()


def record_payloads(page: RawPage, cursor: DuoCursor) -> list[tuple[int, float, str]]:
    """What DuoInput._deliver does per record: time, dedupe key, cursor, the record's place in the page."""
    stream = STREAMS["auth"]
    payloads = []
    for index, record in enumerate(page.records()):
        when = stream.record_time(record)
        when_ms = cursor.since if when is None else time_ms(stream, when)
        key = dedupe_key(stream, record)
        if key in cursor.seen:
            continue
        cursor.delivered(stream, key, when_ms)
        payloads.append((index, when, key))
    return payloads


def _stage_costs(pages: list[RawPage]) -> dict[str, float]:
    count = sum(len(page.records()) for page in pages)
    cursor = DuoCursor(0)
    started = time.perf_counter()
    chunks = [pickle.dumps((page, record_payloads(page, cursor)), pickle.HIGHEST_PROTOCOL) for page in pages]
    payloads = time.perf_counter() - started
    stats = InputStats(INPUT_ID, "bench")
    started = time.perf_counter()
    events = [build_duo_event(page, payload, stats) for page, items in map(pickle.loads, chunks)
              for payload in items]
    built = time.perf_counter() - started
    mapping = duo_ecs_processor(False)
    started = time.perf_counter()
    mapped = [mapping(event) for event in events]
    processed = time.perf_counter() - started
    for event in mapped:
        event.record = None
        for key, value in module_fields("auth").items():
            event.fields.setdefault(key, value)
    encoder = EventEncoder()
    started = time.perf_counter()
    for event in mapped:
        encoder.encode(event)
    encoded = time.perf_counter() - started
    return {"records": count, "payload": payloads / count * 1e6, "event": built / count * 1e6,
            "mapping": processed / count * 1e6, "encoder": encoded / count * 1e6}


def tree_cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process and every process below it still running (worker processes)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    user = system = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            split = process_cpu_split(current)
        except OSError:
            continue
        user, system = user + split[0], system + split[1]
        pending.extend(children.get(current, []))
    return user, system


def write_config(home: Path, fake: FakeDuo, workers: str | None) -> None:
    lookback = int(time.time() - fake.first_ms / 1000 + 600)
    (home / "modules.d").mkdir(parents=True)
    module = home / "modules.d" / "duo.yml"
    module.write_text(textwrap.dedent(f"""\
        - module: duo
          var.api_hostname: "{fake.host}"
          var.integration_key: "{fake.integration_key}"
          var.secret_key: "${{{SECRET_VARIABLE}}}"
          var.ssl.certificate_authorities: ["{fake.ca}"]
          var.initial_lookback: {lookback}s
          auth:
            enabled: true
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
    """Every record once, mapped: as many distinct _ids as records, each with event.dataset cisco_duo.auth."""
    ids = set()
    unmapped = 0
    for path in sorted((home / "data" / "events").glob("*.ndjson")):
        with open(path, "rb") as lines:
            for line in lines:
                document = json.loads(line)
                ids.add(document["@metadata"]["_id"])
                if document.get("event", {}).get("dataset") != "cisco_duo.auth" or "user" not in document:
                    unmapped += 1
    if len(ids) != total or unmapped:
        raise SystemExit(f"the output holds {len(ids)} distinct records of {total}, {unmapped} unmapped")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=300_000)
    parser.add_argument("--step-ms", type=int, default=10, help="ms between two authentications (default 10)")
    parser.add_argument("--workers", help="forwarder.workers for the forwarder (default: its default)")
    parser.add_argument("--keep", action="store_true", help="keep the forwarder's home directory")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit("terminated"))

    secret = secrets.token_urlsafe(30)
    fake = FakeDuo(args.records, args.step_ms, secret)
    home = Path(tempfile.mkdtemp(prefix="bench-duo-"))
    try:
        print(f"{args.records:,} Duo auth records, one every {args.step_ms} ms, forwarder.workers "
              f"{args.workers or 'default'}, "
              f"({args.records * args.step_ms / 3_600_000:.1f} h), pages of {PAGE_LIMIT}, {os.cpu_count()} CPUs, "
              f"load average {os.getloadavg()[0]:.2f} before")
        fake_cpu = fake.cpu_seconds()
        result = ceiling(fake, secret, args.records)
        print(f"ceiling:   {result['rate']:>9,.0f} records/s  ({args.records:,} records in {result['elapsed']:.1f}s, "
              f"{result['pages']} pages; client CPU {result['client_cpu_us']:.1f} µs/record, "
              f"fake CPU {fake.cpu_seconds() - fake_cpu:.1f}s)")
        stages = stage_costs(fake, secret)
        fetch_us = result["client_cpu_us"]
        total_us = fetch_us + stages["payload"] + stages["event"] + stages["mapping"] + stages["encoder"]
        print(f"stages ({stages['records']:,} records, one thread): fetch+decode {fetch_us:.1f} µs, "
              f"input payload+pickle {stages['payload']:.1f} µs, unpickle+build event {stages['event']:.1f} µs, "
              f"duo_ecs {stages['mapping']:.1f} µs, "
              f"encoder {stages['encoder']:.1f} µs = {total_us:.1f} µs/record "
              f"(≈ {1e6 / total_us:,.0f} records/s on one interpreter)")
        fake.reset_counters()
        write_config(home, fake, args.workers)
        fake_cpu = fake.cpu_seconds()
        run = start_forwarder(home, secret, SECRET_VARIABLE)
        try:
            run.sample_until(args.records, timeout=max(600.0, args.records / 500), input_id=INPUT_ID)
            served = fake.counters()
            user_cpu, system_cpu = tree_cpu_split(run.process.pid)
            main_cpu = process_cpu_seconds(run.process.pid)
            published = run.stats()["inputs"][INPUT_ID]["published"]
        finally:
            exit_code = run.stop() if run.process.poll() is None else run.process.returncode
        elapsed = run.last_write() - served["first_request"]
        rate = args.records / elapsed
        print(f"forwarder: {rate:>9,.0f} records/s  ({args.records:,} records in {elapsed:.1f}s; "
              f"{served['requests']:,} requests, {served['records']:,} records served, "
              f"{served['rejected_signatures']} signatures rejected; forwarder CPU {user_cpu:.1f}s user + "
              f"{system_cpu:.1f}s system = {(user_cpu + system_cpu) / args.records * 1e6:.0f} µs/record "
              f"(main process {main_cpu / args.records * 1e6:.0f}), "
              f"fake CPU {fake.cpu_seconds() - fake_cpu:.1f}s)")
        print(f"ratio forwarder / ceiling: {rate / result['rate']:.2f}")
        print(memory_report(run.samples, args.records) + f"; load average {os.getloadavg()[0]:.2f} after")
        if published != args.records or exit_code != 0:
            raise SystemExit(f"published {published} of {args.records} records; forwarder exit code {exit_code}")
        check_output(home, args.records)
    finally:
        fake.stop()
        if args.keep:
            print(f"forwarder home kept in {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
