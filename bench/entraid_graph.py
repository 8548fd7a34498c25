"""Entra ID sign-ins through the real forwarder process, from a fake Microsoft Graph to the file output.

Three processes: the fake Graph and identity platform (bench/graph_backfill_fake.py),
this script, and `python -m forwarder` with the entraid module's signinlogs
fileset enabled (pages of 1000) and `output.file`. Two figures from the same fake:

  fake ceiling   a minimal client here pages through the log with requests and decodes every
                 page's JSON, nothing else: what the fake can serve.
  forwarder      records/s from the fake's first sign-in request to the last record written
                 (fsynced) by the file output, for a backfill of `--records` sign-ins.

While the forwarder runs, its resident memory (VmRSS) is sampled every second
with its progress, so the report shows whether memory stays flat as the
backfill goes on.

Usage (from the repository root, package installed with `pip install -e .`):

    python bench/entraid_graph.py [--records 1000000] [--ceiling-records 300000] [--step-ms 72]
                                  [--late-arrival-window 30m] [--workers auto|N] [--keep]
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

from graph_backfill_fake import CLIENT, SECRET_VARIABLE, TENANT  # noqa: E402

# One sign-in every 72 ms by default: 50,000 an hour, 1.2 million a day, a large tenant. The input reads a
# backfill in one-hour chunks, so this density decides how many records each window (and its dedupe set) holds.
DEFAULT_STEP_MS = 72.0
PAGE_SIZE = 1000
INPUT_ID = "entraid-signinlogs"
PAGE_CLIENT_FILTER = "createdDateTime ge {low} and createdDateTime le {high}"


class FakeGraph:
    """The fake as a child process; closing its stdin ends it."""

    def __init__(self, records: int, step: float, secret: str) -> None:
        environment = {**os.environ, SECRET_VARIABLE: secret}
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "graph_backfill_fake.py"), "--records", str(records),
             "--step", str(step)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=environment,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit("the fake Graph did not start")
        info = json.loads(line)
        self.url: str = info["url"]
        self.ca: str = info["ca"]
        self.t0: float = info["t0"]
        self.step = step

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
            raise SystemExit(f"the fake Graph failed: {rest.strip()}")


def process_cpu_seconds(pid: int) -> float:
    return sum(process_cpu_split(pid))


def process_cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks


def descendants_cpu(pid: int) -> float:
    """CPU seconds of `pid`'s live descendants (the worker processes of `forwarder.workers`, their zygote)."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    ticks = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        cpu[int(entry.name)] = (int(fields[11]) + int(fields[12])) / ticks

    def descends(candidate: int) -> bool:
        while candidate in parents and candidate != pid:
            candidate = parents[candidate]
        return candidate == pid

    return sum(seconds for candidate, seconds in cpu.items() if candidate != pid and descends(candidate))


def resident_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def graph_literal(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch % 1 * 1000):03d}Z"


def fake_ceiling(fake: FakeGraph, secret: str, records: int) -> dict[str, float]:
    """Records/s to a client that only fetches and decodes: token once, then nextLink to the end."""
    session = requests.Session()
    token = session.post(f"{fake.url}/{TENANT}/oauth2/v2.0/token", verify=fake.ca, timeout=10, data={
        "grant_type": "client_credentials", "client_id": CLIENT, "client_secret": secret,
        "scope": "https://graph.microsoft.com/.default"}).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    low = fake.t0 - (records - 1) * fake.step - 0.001
    params: dict[str, str] | None = {
        "$filter": PAGE_CLIENT_FILTER.format(low=graph_literal(low), high=graph_literal(fake.t0 + 1)),
        "$top": str(PAGE_SIZE)}
    url: str | None = f"{fake.url}/v1.0/auditLogs/signIns"
    received = pages = 0
    decoding = 0.0
    started = time.perf_counter()
    while url is not None:
        response = session.get(url, params=params, headers=headers, verify=fake.ca, timeout=60)
        response.raise_for_status()
        decode_started = time.perf_counter()
        body = orjson.loads(response.content)
        decoding += time.perf_counter() - decode_started
        received += len(body["value"])
        pages += 1
        url, params = body.get("@odata.nextLink"), None
    elapsed = time.perf_counter() - started
    if received != records:
        raise SystemExit(f"the ceiling client received {received} records, expected {records}")
    return {"rate": received / elapsed, "elapsed": elapsed, "pages": pages, "decode": decoding}


@dataclass
class Sample:
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

    def sample_until(self, total: int, timeout: float, input_id: str = INPUT_ID) -> None:
        """One VmRSS sample a second until the output has acknowledged `total` events (the other benches too)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"the forwarder exited with {self.process.returncode}; see {self.home}/stderr.log")
            stats = self.stats()
            failure = stats["inputs"].get(input_id, {}).get("last_error")
            if failure:
                raise SystemExit(f"the input reported an error: {failure}")
            acked = int(stats.get("output", {}).get("acked", 0))
            self.samples.append(Sample(resident_kib(self.process.pid), acked))
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


def write_config(home: Path, fake: FakeGraph, records: int, late_arrival_window: str) -> None:
    lookback = int(records * fake.step + time.time() - fake.t0 + 600)
    (home / "modules.d").mkdir(parents=True)
    module = home / "modules.d" / "entraid.yml"
    module.write_text(textwrap.dedent(f"""\
        - module: entraid
          var.tenant_id: "{TENANT}"
          var.client_id: "{CLIENT}"
          var.client_secret: "${{{SECRET_VARIABLE}}}"
          var.api.login_endpoint: "{fake.url}"
          var.api.graph_endpoint: "{fake.url}"
          var.ssl.certificate_authorities: ["{fake.ca}"]
          var.initial_lookback: {lookback}s
          var.late_arrival_window: {late_arrival_window}
          var.requests_per_10s: 100000
          signinlogs:
            enabled: true
            var.page_size: {PAGE_SIZE}
        """))
    config = home / "forwarder.yml"
    config.write_text(textwrap.dedent("""\
        output.file:
          path: ${path.data}/events
          rotate_every_kb: 262144
          number_of_files: 2
        http.enabled: true
        http.port: 0
        logging.metrics.enabled: false
        """))
    for path in (module, config):
        path.chmod(0o600)


def set_workers(home: Path, workers: str | None) -> str:
    """Adds `forwarder.workers` to the forwarder's config when given; what the run uses, for the report."""
    if workers is None:
        return "default"
    with open(home / "forwarder.yml", "a") as config:
        config.write(f"forwarder.workers: {workers}\n")
    return workers


def start_forwarder(home: Path, secret: str, secret_variable: str = SECRET_VARIABLE) -> ForwarderRun:
    """The real forwarder on `home`'s config, the fake's secret in `secret_variable`; returns once /stats answers."""
    log_path = home / "stderr.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "forwarder", "-e", "-c", str(home / "forwarder.yml"), "--path.home", str(home)],
            cwd=home, stdout=log, stderr=log, env={**os.environ, secret_variable: secret})
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

    series = ", ".join(f"{fraction * 100:g} % {at_fraction(fraction) / 1024:.0f}"
                       for fraction in (0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0))
    peak = max(s.rss_kib for s in samples) / 1024
    return f"RSS MiB at {series}; max {peak:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--ceiling-records", type=int, default=300_000,
                        help="records the fetch-and-decode client reads for the fake's ceiling (0: skip)")
    parser.add_argument("--step-ms", type=float, default=DEFAULT_STEP_MS,
                        help="milliseconds between two sign-ins (default 72: 50,000 an hour)")
    parser.add_argument("--late-arrival-window", default="30m", help="var.late_arrival_window (default 30m)")
    parser.add_argument("--keep", action="store_true", help="keep the forwarder's home directory")
    parser.add_argument("--workers", help="forwarder.workers (auto or a number; unset: the forwarder's default)")
    args = parser.parse_args()
    # A plain `kill` of this script still stops the forwarder and the fake (the finally blocks run).
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit("terminated"))

    secret = secrets.token_urlsafe(24)
    step = args.step_ms / 1000
    fake = FakeGraph(args.records, step, secret)
    home = Path(tempfile.mkdtemp(prefix="bench-entraid-"))
    try:
        print(f"{args.records:,} sign-ins, one every {step * 1000:.0f} ms "
              f"({args.records * step / 3600:.1f} h), pages of {PAGE_SIZE}, "
              f"late_arrival_window {args.late_arrival_window}, {os.cpu_count()} CPUs, "
              f"load average {os.getloadavg()[0]:.2f} before")
        ceiling = 0.0
        if args.ceiling_records:
            cpu = fake.cpu_seconds()
            result = fake_ceiling(fake, secret, min(args.ceiling_records, args.records))
            ceiling = result["rate"]
            print(f"fake ceiling:  {ceiling:>9,.0f} records/s  ({min(args.ceiling_records, args.records):,} records "
                  f"in {result['elapsed']:.1f}s, {result['pages']} pages, client decoding {result['decode']:.1f}s, "
                  f"fake CPU {fake.cpu_seconds() - cpu:.1f}s)")
        fake.reset_counters()
        write_config(home, fake, args.records, args.late_arrival_window)
        print(f"forwarder.workers: {set_workers(home, args.workers)}")
        fake_cpu = fake.cpu_seconds()
        run = start_forwarder(home, secret)
        try:
            run.sample_until(args.records, timeout=max(600.0, args.records / 500))
            served = fake.counters()
            user_cpu, system_cpu = process_cpu_split(run.process.pid)
            workers_cpu = descendants_cpu(run.process.pid)
            published = run.stats()["inputs"][INPUT_ID]["published"]
        finally:
            exit_code = run.stop() if run.process.poll() is None else run.process.returncode
        elapsed = run.last_write() - served["first_request"]
        rate = args.records / elapsed
        print(f"forwarder:     {rate:>9,.0f} records/s  ({args.records:,} records in {elapsed:.1f}s; "
              f"{served['requests']:,} requests fetched {served['records']:,} records (overlaps re-read); "
              f"forwarder CPU {user_cpu:.1f}s user + {system_cpu:.1f}s system = "
              f"{(user_cpu + system_cpu) / args.records * 1e6:.0f} µs/record, "
              f"fake CPU {fake.cpu_seconds() - fake_cpu:.1f}s)")
        print(f"worker processes CPU {workers_cpu:.1f}s = {workers_cpu / args.records * 1e6:.0f} µs/record")
        if ceiling:
            print(f"ratio forwarder / fake ceiling: {rate / ceiling:.2f}")
        print(memory_report(run.samples, args.records) + f"; load average {os.getloadavg()[0]:.2f} after")
        if published != args.records or exit_code != 0:
            raise SystemExit(f"published {published} of {args.records} records; forwarder exit code {exit_code}")
    finally:
        fake.stop()
        if args.keep:
            print(f"forwarder home kept in {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
