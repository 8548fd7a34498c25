"""Office 365 audit records through the real forwarder process, from a fake Management Activity API to the file output.

Three processes: the fake Management Activity API and identity platform
(bench/o365_backfill_fake.py), this script, and `python -m forwarder` with an
`o365audit` input reading three content types (one poller each) and
`output.file`. Two figures from the same fake:

  fake ceiling   a minimal client here lists every content type's windows, follows NextPageUri
                 and fetches every blob with requests, decoding its JSON, nothing else: what the
                 fake can serve.
  forwarder      records/s from the fake's first API request to the last record written
                 (fsynced) by the file output, for a backlog of `--records` audit records.

While the forwarder runs, its resident memory (VmRSS) is sampled every second
with its progress, so the report shows whether memory stays flat as the
backfill goes on.

Usage (from the repository root, package installed with `pip install -e .`):

    python bench/o365_audit.py [--records 500000] [--blob-records 1500] [--ceiling-records 200000]
                               [--content-type Audit.Exchange ...] [--normalize false] [--workers auto|N] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from entraid_graph import descendants_cpu, set_workers  # noqa: E402
from o365_backfill_fake import CLIENT, CONTENT_SHAPES, SECRET_VARIABLE, TENANT  # noqa: E402

INPUT_ID = "o365-bench"
DAY = 86400.0


class FakeManagementApi:
    """The fake as a child process; closing its stdin ends it."""

    def __init__(self, records: int, blob_records: int, content_types: list[str], secret: str) -> None:
        self.content_types = content_types
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "o365_backfill_fake.py"), "--records", str(records),
             "--blob-records", str(blob_records), *(f"--content-type={name}" for name in content_types)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env={**os.environ, SECRET_VARIABLE: secret},
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit("the fake Management Activity API did not start")
        info = json.loads(line)
        self.url: str = info["url"]
        self.ca: str = info["ca"]
        self.records: int = info["records"]
        self.blobs: int = info["blobs"]

    def counters(self) -> dict[str, Any]:
        return requests.get(f"{self.url}/bench/stats", verify=self.ca, timeout=10).json()

    def reset_counters(self) -> None:
        requests.post(f"{self.url}/bench/reset", verify=self.ca, timeout=10).raise_for_status()

    def cpu_seconds(self) -> float:
        return sum(process_cpu_split(self.process.pid))

    def stop(self) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        rest = self.process.stdout.read()
        self.process.wait(10)
        if "handler_errors" in rest:
            raise SystemExit(f"the fake failed: {rest.strip()}")


def process_cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks


def resident_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def list_time(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch))


def fake_ceiling(fake: FakeManagementApi, secret: str, records: int) -> dict[str, float]:
    """Records/s to a client that only lists, fetches and decodes, oldest window first, until `records` are read."""
    session = requests.Session()
    token = session.post(f"{fake.url}/{TENANT}/oauth2/v2.0/token", verify=fake.ca, timeout=10, data={
        "grant_type": "client_credentials", "client_id": CLIENT, "client_secret": secret,
        "scope": f"{fake.url}/.default"}).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    feed = f"{fake.url}/api/v1.0/{TENANT}/activity/feed"
    received = blobs = 0
    decoding = 0.0
    started = time.perf_counter()
    oldest = time.time() - 7 * DAY + 600
    for content_type in fake.content_types:
        start = oldest
        while start < time.time() and received < records:
            params: dict[str, str] | None = {"contentType": content_type, "startTime": list_time(start),
                                             "endTime": list_time(min(start + DAY, time.time()))}
            url: str | None = f"{feed}/subscriptions/content"
            while url is not None and received < records:
                listing = session.get(url, params=params, headers=headers, verify=fake.ca, timeout=60)
                listing.raise_for_status()
                for entry in listing.json():
                    response = session.get(entry["contentUri"], headers=headers, verify=fake.ca, timeout=60)
                    response.raise_for_status()
                    decode_started = time.perf_counter()
                    received += len(orjson.loads(response.content))
                    decoding += time.perf_counter() - decode_started
                    blobs += 1
                url, params = listing.headers.get("NextPageUri"), None
            start += DAY
    elapsed = time.perf_counter() - started
    return {"rate": received / elapsed, "records": received, "elapsed": elapsed, "blobs": blobs, "decode": decoding}


@dataclass
class Sample:
    at: float
    rss_kib: int
    acked: int


@dataclass
class ForwarderRun:
    home: Path
    process: subprocess.Popen
    stats_url: str
    samples: list[Sample] = field(default_factory=list)

    def stats(self) -> dict[str, Any]:
        return requests.get(self.stats_url, timeout=10).json()

    def sample_until(self, total: int, timeout: float) -> None:
        """One sample a second until the output has acknowledged `total` events."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"the forwarder exited with {self.process.returncode}; see {self.home}/stderr.log")
            acked = int(self.stats().get("output", {}).get("acked", 0))
            self.samples.append(Sample(time.monotonic(), resident_kib(self.process.pid), acked))
            if acked >= total:
                return
            time.sleep(1.0)
        raise SystemExit(f"the forwarder did not finish within {timeout:.0f}s: {self.stats()}")

    def last_write(self) -> float:
        """When the file output wrote (and fsynced) its last line: the newest output file's mtime."""
        return max(path.stat().st_mtime for path in (self.home / "data" / "events").glob("*.ndjson"))

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(60)


def write_config(home: Path, fake: FakeManagementApi, normalize: bool) -> None:
    home.mkdir(parents=True, exist_ok=True)
    config = home / "forwarder.yml"
    config.write_text(textwrap.dedent(f"""\
        forwarder.inputs:
          - type: o365audit
            id: {INPUT_ID}
            application_id: "{CLIENT}"
            tenant_id: "{TENANT}"
            client_secret: "${{{SECRET_VARIABLE}}}"
            content_type: {json.dumps(fake.content_types)}
            normalize: {str(normalize).lower()}
            api.authentication_endpoint: "{fake.url}"
            api.resource: "{fake.url}"
            api.max_requests_per_minute: 100000
            ssl.certificate_authorities: ["{fake.ca}"]
        output.file:
          path: ${{path.data}}/events
          rotate_every_kb: 262144
          number_of_files: 2
        http.enabled: true
        http.port: 0
        logging.metrics.enabled: false
        """))
    config.chmod(0o600)


def start_forwarder(home: Path, secret: str) -> ForwarderRun:
    log_path = home / "stderr.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "forwarder", "-e", "-c", str(home / "forwarder.yml"), "--path.home", str(home)],
            cwd=home, stdout=log, stderr=log, env={**os.environ, SECRET_VARIABLE: secret})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = re.search(r"listening on (http://[^ \"]+/stats)", log_path.read_text(errors="replace"))
        if found:
            return ForwarderRun(home, process, found.group(1))
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    raise SystemExit(f"the forwarder did not start its /stats endpoint:\n{log_path.read_text()[-3000:]}")


def memory_report(samples: list[Sample], total: int) -> str:
    def at_fraction(fraction: float) -> int:
        return next(s.rss_kib for s in samples if s.acked >= fraction * total)

    series = ", ".join(f"{int(fraction * 100)} % {at_fraction(fraction) / 1024:.0f}"
                       for fraction in (0.1, 0.25, 0.5, 0.75, 1.0))
    return f"RSS MiB at {series}; max {max(s.rss_kib for s in samples) / 1024:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=500_000)
    parser.add_argument("--blob-records", type=int, default=1500, help="records per content blob")
    parser.add_argument("--ceiling-records", type=int, default=200_000,
                        help="records the fetch-and-decode client reads for the fake's ceiling (0: skip)")
    parser.add_argument("--content-type", action="append", choices=list(CONTENT_SHAPES),
                        help="read only this content type, one poller (repeatable; default: all three)")
    parser.add_argument("--normalize", choices=("true", "false"), default="true", help="the input's normalize")
    parser.add_argument("--keep", action="store_true", help="keep the forwarder's home directory")
    parser.add_argument("--workers", help="forwarder.workers (auto or a number; unset: the forwarder's default)")
    parser.add_argument("--py-spy", metavar="FILE", help="profile the forwarder with py-spy (speedscope JSON to FILE)")
    args = parser.parse_args()

    secret = secrets.token_urlsafe(24)
    content_types = args.content_type or list(CONTENT_SHAPES)
    fake = FakeManagementApi(args.records, args.blob_records, content_types, secret)
    home = Path(tempfile.mkdtemp(prefix="bench-o365-"))
    try:
        print(f"{fake.records:,} audit records in {fake.blobs} blobs of up to {args.blob_records} "
              f"({', '.join(content_types)}), normalize {args.normalize}, {os.cpu_count()} CPUs, "
              f"load average {os.getloadavg()[0]:.2f} before")
        ceiling = 0.0
        if args.ceiling_records:
            cpu = fake.cpu_seconds()
            result = fake_ceiling(fake, secret, min(args.ceiling_records, fake.records))
            ceiling = result["rate"]
            print(f"fake ceiling:  {ceiling:>9,.0f} records/s  ({result['records']:,} records in "
                  f"{result['elapsed']:.1f}s, {result['blobs']} blobs, client decoding {result['decode']:.1f}s, "
                  f"fake CPU {fake.cpu_seconds() - cpu:.1f}s)")
        fake.reset_counters()
        write_config(home, fake, args.normalize == "true")
        print(f"forwarder.workers: {set_workers(home, args.workers)}")
        fake_cpu = fake.cpu_seconds()
        run = start_forwarder(home, secret)
        profiler = None
        if args.py_spy:
            profiler = subprocess.Popen(["py-spy", "record", "--pid", str(run.process.pid), "--format", "speedscope",
                                         "--rate", "100", "--gil", "--nonblocking", "--output", args.py_spy],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            run.sample_until(fake.records, timeout=max(600.0, fake.records / 200))
            if profiler is not None:
                profiler.send_signal(signal.SIGINT)
                profiler.wait(60)
            served = fake.counters()
            user_cpu, system_cpu = process_cpu_split(run.process.pid)
            workers_cpu = descendants_cpu(run.process.pid)
            published = run.stats()["inputs"][INPUT_ID]["published"]
        finally:
            exit_code = run.stop() if run.process.poll() is None else run.process.returncode
        elapsed = run.last_write() - served["first_request"]
        rate = fake.records / elapsed
        print(f"forwarder:     {rate:>9,.0f} records/s  ({fake.records:,} records in {elapsed:.1f}s; "
              f"{served['requests']:,} requests fetched {served['blobs']} blobs; forwarder CPU {user_cpu:.1f}s user + "
              f"{system_cpu:.1f}s system = {(user_cpu + system_cpu) / fake.records * 1e6:.0f} µs/record, "
              f"fake CPU {fake.cpu_seconds() - fake_cpu:.1f}s)")
        print(f"worker processes CPU {workers_cpu:.1f}s = {workers_cpu / fake.records * 1e6:.0f} µs/record")
        if ceiling:
            print(f"ratio forwarder / fake ceiling: {rate / ceiling:.2f}")
        print(memory_report(run.samples, fake.records) + f"; load average {os.getloadavg()[0]:.2f} after")
        if published != fake.records or exit_code != 0:
            raise SystemExit(f"published {published} of {fake.records} records; forwarder exit code {exit_code}")
    finally:
        fake.stop()
        if args.keep:
            print(f"forwarder home kept in {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
