"""Cisco Umbrella DNS logs from S3 (moto) through the real forwarder process to the file output.

Three processes: moto's S3 server (tests/fakes/moto_server.py, in a child
process of its own so that serving objects does not share this script's
interpreter lock), this script, and `python -m forwarder` with the cisco
module's umbrella fileset in bucket listing mode (ECS mapping on, the
default) and `output.file`. The bucket holds `dnslogs` objects of
`--rows-per-object` rows (gzip CSV in Umbrella's DNS format, keys laid out as
Umbrella writes them). Figures, all from the same moto:

  ceiling     download + gunzip + csv alone: boto3 get_object, zlib, csv.reader, with as many
              threads as the input's number_of_workers; what reading costs with nothing else.
  stages      per-row cost on one thread of each piece the forwarder runs per row: the aws-s3
              ObjectReader (download, gunzip, lines: what stays in the input's process),
              build_event (line to event), the cisco_umbrella processor and the output's JSON
              encoder (what a worker process runs with `forwarder.workers` above 1), and the
              pickle round trip of the reader's chunks (what shipping them to a worker adds).
  forwarder   rows/s from the forwarder's /stats endpoint answering (the input starts right
              after) to the last row written (fsynced) by the file output.

While the forwarder runs its VmRSS is sampled every second with its progress,
so the report shows whether memory stays flat as the rows go through.

Usage (from the repository root, package installed with `pip install -e '.[test]'`):

    python bench/umbrella_s3.py [--objects 100] [--rows-per-object 10000] [--workers 5] [--forwarder-workers N] [--keep]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import gc
import gzip
import io
import json
import logging
import os
import pickle
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import zlib
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from entraid_graph import (  # noqa: E402
    ForwarderRun,
    memory_report,
    process_cpu_split,
    start_forwarder,
)

from forwarder.inputs.aws_s3_config import parse_config  # noqa: E402
from forwarder.inputs.aws_s3_events import build_event  # noqa: E402
from forwarder.inputs.aws_s3_objects import Bucket, ObjectReader  # noqa: E402
from forwarder.modules.cisco import render_umbrella_input  # noqa: E402
from forwarder.modules.cisco_umbrella_processor import umbrella_processors  # noqa: E402
from forwarder.outputs.codec import EventEncoder  # noqa: E402
from forwarder.pipeline.client import build_events  # noqa: E402
from forwarder.schema.section import Section  # noqa: E402
from forwarder.stats import InputStats  # noqa: E402
from tests.fakes.moto_server import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY  # noqa: E402

BUCKET = "cisco-managed-us-east-1"
PREFIX = "1234567_0123456789abcdef0123456789abcdef01234567"
INPUT_ID = "cisco-umbrella"
MOTO_CHILD = """\
import sys
from tests.fakes.moto_server import MotoServer
with MotoServer() as aws:
    print(aws.endpoint, flush=True)
    sys.stdin.read()
"""

QUERY_TYPES = ("1 (A)", "1 (A)", "1 (A)", "28 (AAAA)", "28 (AAAA)", "5 (CNAME)", "65 (HTTPS)", "16 (TXT)",
               "12 (PTR)", "15 (MX)")
CATEGORIES = ("Software/Technology", "Business Services", "Search Engines", "Cloud Storage", "Social Networking",
              "Chat,Photo Sharing,Social Networking", "News/Media", "Infrastructure and Content Delivery Networks",
              "Advertisements", "SaaS and B2B")
BLOCKED = ("Malware", "Phishing", "Command and Control", "Newly Seen Domains", "Adult Themes")
DOMAINS = ("outlook.office365.com", "www.google.com", "teams.microsoft.com", "s3.amazonaws.com", "api.github.com",
           "login.microsoftonline.com", "cdn.jsdelivr.net", "update.googleapis.com", "slack.com", "zoom.us",
           "graph.facebook.com", "ocsp.digicert.com", "ads.doubleclick.net", "time.windows.com",
           "clients4.google.com", "events.data.microsoft.com", "dropbox.com", "status.example-saas.io")


def dns_rows(rng: random.Random, day: str, hour: int, minute: int, count: int) -> list[str]:
    """Umbrella DNS log rows (v10 schema, 13 columns), as quoted CSV lines."""
    rows = []
    for index in range(count):
        user = f"user{rng.randrange(5000):04d}"
        blocked = rng.random() < 0.03
        action = "Blocked" if blocked else "Allowed"
        name = rng.choice(DOMAINS)
        if rng.random() < 0.4:
            name = f"{rng.choice(('eu', 'us', 'a', 'b', 'edge', 'cdn'))}{rng.randrange(100)}.{name}"
        rcode = "NXDOMAIN" if rng.random() < 0.05 else "NOERROR"
        second = index * 600 // count
        identities = f"{user}@example.com,HQ-Site,Corporate Network"
        rows.append(
            f'"{day} {hour:02d}:{minute + second // 60:02d}:{second % 60:02d}","{user}@example.com",'
            f'"{identities}","10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",'
            f'"198.51.100.{rng.randrange(1, 255)}","{action}","{rng.choice(QUERY_TYPES)}","{rcode}","{name}.",'
            f'"{rng.choice(BLOCKED) if blocked else rng.choice(CATEGORIES)}","AD Users",'
            f'"AD Users,AD Sites,Networks","{rng.choice(BLOCKED) if blocked else ""}"')
    return rows


def object_keys(objects: int, rng: random.Random) -> list[tuple[str, str, int, int]]:
    """(key, day, hour, minute): one object every ten minutes, Umbrella's layout with a random suffix."""
    keys = []
    for number in range(objects):
        day = f"2024-06-{10 + number // 144:02d}"
        hour, minute = divmod(number % 144 * 10, 60)
        suffix = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(4))
        keys.append((f"{PREFIX}/dnslogs/{day}/{day}-{hour:02d}-{minute:02d}-{suffix}.csv.gz", day, hour, minute))
    return keys


class Moto:
    """moto's server as a child process; closing its stdin ends it."""

    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", MOTO_CHILD], cwd=ROOT, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.endpoint = self.process.stdout.readline().strip()
        if not self.endpoint:
            raise SystemExit("moto did not start")

    def client(self, pool: int = 10) -> Any:
        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION, aws_access_key_id=ACCESS_KEY_ID,
                            aws_secret_access_key=SECRET_ACCESS_KEY,
                            config=Config(max_pool_connections=pool, s3={"addressing_style": "path"}))

    def cpu_seconds(self) -> float:
        return sum(process_cpu_split(self.process.pid))

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(30)


def upload(moto: Moto, objects: int, rows_per_object: int, seed: int) -> tuple[list[str], int, int]:
    """Fills the bucket; returns the keys, the rows and the gzip bytes uploaded."""
    rng = random.Random(seed)
    s3 = moto.client()
    s3.create_bucket(Bucket=BUCKET)
    keys = []
    compressed = 0
    for key, day, hour, minute in object_keys(objects, rng):
        body = gzip.compress(("\n".join(dns_rows(rng, day, hour, minute, rows_per_object)) + "\n").encode(), 6)
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        keys.append(key)
        compressed += len(body)
    return keys, objects * rows_per_object, compressed


def ceiling(moto: Moto, keys: list[str], workers: int) -> tuple[float, float]:
    """(rows/s, seconds) to download, gunzip and csv-parse every object, `workers` objects at a time."""
    s3 = moto.client(workers + 1)

    def rows_of(key: str) -> int:
        body = s3.get_object(Bucket=BUCKET, Key=key)["Body"]
        decompressor = zlib.decompressobj(wbits=31)
        text = io.TextIOWrapper(io.BufferedReader(_Inflating(body, decompressor)), encoding="utf-8", newline="")
        return sum(1 for _ in csv.reader(text, skipinitialspace=True))

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        rows = sum(pool.map(rows_of, keys))
    elapsed = time.perf_counter() - started
    return rows / elapsed, elapsed


class _Inflating(io.RawIOBase):
    """A raw stream of the gunzipped bytes of a botocore body."""

    def __init__(self, body: Any, decompressor: Any) -> None:
        self._body = body
        self._decompressor = decompressor
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = self._body.read(256 * 1024)
            if not chunk:
                self._pending = self._decompressor.flush()
                break
            self._pending = self._decompressor.decompress(chunk)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def stage_costs(moto: Moto, keys: list[str], rows_per_object: int) -> dict[str, float]:
    """µs per row of the reader, the cisco_umbrella processor and the encoder, each alone on this thread.

    The collector is off as the runner sets it (forwarder.runner.CycleCollector): with Python's default
    allocation-count collection, the 100,000 events held here would be walked again and again, which
    costs more than the mapping itself and is not what the forwarder does.
    """
    gc.freeze()
    gc.disable()
    try:
        return _stage_costs(moto, keys, rows_per_object)
    finally:
        gc.enable()
        gc.unfreeze()


def _stage_costs(moto: Moto, keys: list[str], rows_per_object: int) -> dict[str, float]:
    settings = {"non_aws_bucket_name": BUCKET, "bucket_list_prefix": PREFIX, "endpoint": moto.endpoint,
                "path_style": True, "region": REGION, "access_key_id": ACCESS_KEY_ID,
                "secret_access_key": SECRET_ACCESS_KEY}
    problems: list[Any] = []
    rendered = render_umbrella_input(settings, Section({}, "var", "bench", problems))
    assert rendered is not None and not problems, problems
    data, log_types, _ = rendered
    config = parse_config(Section(data, "input", "bench", problems))
    assert not problems, problems
    stats = InputStats("bench", "aws-s3")
    reader = ObjectReader(moto.client(), Bucket.from_config(config), logging.getLogger("bench"), stats, "bench")
    (process,) = umbrella_processors(log_types)
    encoder = EventEncoder()
    chunks: list[Any] = []
    sample = keys[: max(1, min(len(keys), 100_000 // rows_per_object))]
    started = time.perf_counter()
    for key in sample:
        reader.read(key, config.reader_options(key), 0,
                    lambda context, payloads, end: chunks.append((context, payloads)) or True)
    read = time.perf_counter() - started
    started = time.perf_counter()
    pickled = [pickle.dumps(chunk, pickle.HIGHEST_PROTOCOL) for chunk in chunks]
    chunks = [pickle.loads(data) for data in pickled]
    shipped = time.perf_counter() - started
    started = time.perf_counter()
    events = [event for context, payloads in chunks for event in build_events(build_event, context, payloads, stats)]
    built = time.perf_counter() - started
    started = time.perf_counter()
    mapped = [process(event) for event in events]
    processed = time.perf_counter() - started
    started = time.perf_counter()
    for event in mapped:
        encoder.encode(event)
    encoded = time.perf_counter() - started
    count = len(events)
    return {"rows": count, "reader": read / count * 1e6, "pickle": shipped / count * 1e6,
            "builder": built / count * 1e6, "processor": processed / count * 1e6, "encoder": encoded / count * 1e6}


def write_config(home: Path, endpoint: str, workers: int, forwarder_workers: str | None) -> None:
    (home / "modules.d").mkdir(parents=True)
    module = home / "modules.d" / "cisco.yml"
    module.write_text(textwrap.dedent(f"""\
        - module: cisco
          umbrella:
            var.non_aws_bucket_name: {BUCKET}
            var.bucket_list_prefix: {PREFIX}
            var.bucket_list_interval: 30s
            var.number_of_workers: {workers}
            var.endpoint: {endpoint}
            var.path_style: true
            var.region: {REGION}
            var.access_key_id: {ACCESS_KEY_ID}
            var.secret_access_key: {SECRET_ACCESS_KEY}
        """))
    config = home / "forwarder.yml"
    config.write_text(textwrap.dedent("""\
        filebeat.config.modules.path: ${path.config}/modules.d/*.yml
        output.file:
          path: ${path.data}/events
          rotate_every_kb: 262144
          number_of_files: 2
        http.enabled: true
        http.port: 0
        logging.metrics.enabled: false
        """) + (f"forwarder.workers: {forwarder_workers}\n" if forwarder_workers else ""))
    for path in (module, config):
        path.chmod(0o600)


def descendants(pid: int) -> list[int]:
    """The processes below `pid` (the worker processes and their zygote), from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        below = children.get(todo.pop(), [])
        found += below
        todo += below
    return found


def tree_cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of the forwarder and its worker processes so far."""
    user = system = 0.0
    for process in [pid, *descendants(pid)]:
        try:
            process_user, process_system = process_cpu_split(process)
        except OSError:
            continue
        user += process_user
        system += process_system
    return user, system


def check_output(home: Path) -> dict[str, Any]:
    """The last event written, to show the mapping was on."""
    newest = max((home / "data" / "events").glob("*.ndjson"), key=lambda path: path.stat().st_mtime)
    with open(newest, "rb") as file:
        file.seek(max(0, file.seek(0, 2) - 8192))
        return json.loads(file.read().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=100)
    parser.add_argument("--rows-per-object", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=5, help="var.number_of_workers, and the ceiling's threads")
    parser.add_argument("--forwarder-workers", help="forwarder.workers (auto or a count; unset: the default)")
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--keep", action="store_true", help="keep the forwarder's home directory")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit("terminated"))
    moto = Moto()
    home = Path(tempfile.mkdtemp(prefix="bench-umbrella-"))
    try:
        started = time.perf_counter()
        keys, rows, compressed = upload(moto, args.objects, args.rows_per_object, args.seed)
        print(f"{rows:,} DNS rows in {len(keys)} gzip CSV objects of {args.rows_per_object:,} rows "
              f"({compressed / len(keys) / 1024:.0f} KiB each; uploaded in {time.perf_counter() - started:.0f}s), "
              f"moto in its own process, {args.workers} workers, forwarder.workers "
              f"{args.forwarder_workers or 'default'}, {os.cpu_count()} CPUs, "
              f"load average {os.getloadavg()[0]:.2f} before")
        moto_cpu = moto.cpu_seconds()
        ceiling_rate, ceiling_seconds = ceiling(moto, keys, args.workers)
        print(f"ceiling:   {ceiling_rate:>9,.0f} rows/s  (download + gunzip + csv.reader, {args.workers} threads, "
              f"{ceiling_seconds:.1f}s, moto CPU {moto.cpu_seconds() - moto_cpu:.1f}s)")
        stages = stage_costs(moto, keys, args.rows_per_object)
        total = stages["reader"] + stages["builder"] + stages["processor"] + stages["encoder"]
        print(f"stages:    ObjectReader {stages['reader']:.1f} µs/row, build_event {stages['builder']:.1f} µs/row, "
              f"cisco_umbrella {stages['processor']:.1f} µs/row, encoder {stages['encoder']:.1f} µs/row = "
              f"{total:.1f} µs/row (≤ {1e6 / total:,.0f} rows/s on one interpreter; {stages['rows']:,} rows, one "
              f"thread); pickle round trip of the reader's chunks {stages['pickle']:.2f} µs/row")
        write_config(home, moto.endpoint, args.workers, args.forwarder_workers)
        moto_cpu = moto.cpu_seconds()
        run: ForwarderRun = start_forwarder(home, "")
        run_started = time.time()
        try:
            run.sample_until(rows, timeout=max(600.0, rows / 500), input_id=INPUT_ID)
            user_cpu, system_cpu = process_cpu_split(run.process.pid)
            tree_user, tree_system = tree_cpu_split(run.process.pid)
            stats = run.stats()["inputs"][INPUT_ID]
        finally:
            exit_code = run.stop() if run.process.poll() is None else run.process.returncode
        elapsed = run.last_write() - run_started
        rate = rows / elapsed
        print(f"forwarder: {rate:>9,.0f} rows/s  ({rows:,} rows in {elapsed:.1f}s; forwarder CPU {user_cpu:.1f}s "
              f"user + {system_cpu:.1f}s system = {(user_cpu + system_cpu) / rows * 1e6:.0f} µs/row, with its worker "
              f"processes {(tree_user + tree_system) / rows * 1e6:.0f} µs/row, moto CPU "
              f"{moto.cpu_seconds() - moto_cpu:.1f}s)")
        print(f"ratio forwarder / ceiling: {rate / ceiling_rate:.2f}")
        print(memory_report(run.samples, rows) + f"; load average {os.getloadavg()[0]:.2f} after")
        last = check_output(home)
        if last.get("event", {}).get("dataset") != "cisco.umbrella" or "dns" not in last:
            raise SystemExit(f"the output is not mapped: {last}")
        if stats["published"] != rows or stats.get("mapping_failures") or exit_code != 0:
            raise SystemExit(f"published {stats['published']} of {rows} rows; input stats {stats}; "
                             f"forwarder exit code {exit_code}")
    finally:
        moto.stop()
        if args.keep:
            print(f"forwarder home kept in {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
