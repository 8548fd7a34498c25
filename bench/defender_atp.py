"""Defender for Endpoint alerts through the real forwarder process, from the fake alerts API to the file output.

Three processes: the fake identity platform and Defender API (this script run
with `--serve`, tests/fakes/defender_api.py holding `--alerts` alerts with two
evidence each), this script, and `python -m forwarder` with the microsoft
module's defender_atp fileset (pages of 1,000 alerts, the ECS mapping on,
request budget lifted) writing to `output.file`. The figure is alerts/s from
the fake's first alerts request to the last line the file output wrote, beside
the fake's ceiling: alerts/s to a client here that only fetches and decodes.

Usage (from the repository root, package installed with `pip install -e .`):

    python bench/defender_atp.py [--alerts 100000] [--step-ms 36] [--split-evidence] [--workers auto|N] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import orjson
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from entraid_graph import descendants_cpu, process_cpu_split, set_workers, start_forwarder  # noqa: E402

from forwarder.net.graph_client import graph_time  # noqa: E402

TENANT = "1f3b5d7f-9b1d-4f3b-8d5f-7b9d1f3b5d79"
CLIENT = "5d7f9b1d-3f5b-4d7f-9b1d-3f5b7d9f1b80"
SECRET_VARIABLE = "BENCH_DEFENDER_SECRET"
PAGE_SIZE = 1000
INPUT_ID = "microsoft-defender_atp"


def bench_alerts(count: int, newest: float, step: float) -> list[dict[str, Any]]:
    """`count` alerts, one every `step` seconds back from `newest`; the evidence lists are shared (read-only)."""
    evidence = [
        {"entityType": "Process", "evidenceCreationTime": "2024-05-01T10:00:00.1234567Z",
         "sha1": "b6d237154f2e528f0b503b58b025862d66b02b73",
         "sha256": "a92056d772260b39a876d01552496b2f8b4610a0b1e084952fe1176784e2ce77", "fileName": "notepad.exe",
         "filePath": "C:\\Windows\\System32", "processId": 4104, "processCommandLine": "\"notepad.exe\"",
         "processCreationTime": "2024-05-01T09:45:38.9784654Z", "parentProcessId": 6012,
         "parentProcessCreationTime": "2024-05-01T09:04:51.487396Z", "parentProcessFileName": "explorer.exe",
         "parentProcessFilePath": "C:\\Windows", "ipAddress": None, "url": None, "registryKey": None,
         "accountName": None, "domainName": None, "userSid": None, "aadUserId": None, "userPrincipalName": None,
         "detectionStatus": "Detected"},
        {"entityType": "User", "evidenceCreationTime": "2024-05-01T10:00:00.1234567Z", "sha1": None,
         "sha256": None, "fileName": None, "filePath": None, "processId": None, "ipAddress": "198.51.100.7",
         "url": None, "accountName": "administrator1", "domainName": "CONTOSO",
         "userSid": "S-1-5-21-11111607-1111760036-109187956-75141", "aadUserId": None,
         "userPrincipalName": "administrator1@contoso.example", "detectionStatus": None},
    ]
    alerts = []
    for number in range(count):
        updated = graph_time(newest - number * step)
        alerts.append({
            "id": f"da63729104891{number:08d}_1126926584", "incidentId": 11 + number % 900,
            "investigationId": 7, "assignedTo": None,
            "severity": ("Informational", "Low", "Medium", "High")[number % 4],
            "status": "New", "classification": None, "determination": None, "investigationState": "Running",
            "detectionSource": "WindowsDefenderAtp", "detectorId": "17e10bbc-3a68-474a-8aad-faef14d43952",
            "category": "DefenseEvasion", "threatFamilyName": None,
            "title": "Suspicious process injection observed",
            "description": "A process abnormally injected code into another process, As a result, unexpected code may"
                           " be running in the target process memory.",
            "alertCreationTime": updated, "firstEventTime": updated, "lastEventTime": updated,
            "lastUpdateTime": updated, "resolvedTime": None, "machineId": f"543bc5a9{number % 5000:032x}",
            "computerDnsName": f"host{number % 5000}.contoso.example", "rbacGroupName": None,
            "aadTenantId": TENANT, "threatName": None, "mitreTechniques": ["T1055"],
            "relatedUser": {"userName": "administrator1", "domainName": "CONTOSO"}, "comments": [],
            "evidence": evidence,
        })
    return alerts


def serve(alerts: int, step: float) -> None:
    """The fake on its own process: prints url and CA, serves until stdin closes."""
    from tests.fakes.defender_api import FakeDefenderApi
    from tests.fakes.https_server import FakeHttpsServer, Reply
    from tests.fakes.identity_platform import FakeIdentityPlatform

    with FakeHttpsServer() as server:
        identity = FakeIdentityPlatform(server)
        identity.register_app(TENANT, CLIENT, secret=os.environ[SECRET_VARIABLE])
        api = FakeDefenderApi(server, identity)
        newest = time.time() - 60
        api.add_many(bench_alerts(alerts, newest, step))

        def stats(request: Any, match: Any) -> Reply:
            since = int(request.param("since") or 0)
            first = api.arrivals[since] if len(api.arrivals) > since else None
            wall = None if first is None else time.time() - (time.monotonic() - first)
            return Reply.json({"requests": len(api.arrivals), "first_request": wall})

        server.route("GET", r"/bench/stats", stats)
        print(json.dumps({"url": server.url, "ca": server.ca_path, "oldest": newest - alerts * step}), flush=True)
        sys.stdin.read()
        if server.handler_errors:
            print(json.dumps({"handler_errors": server.handler_errors}), flush=True)


def fake_ceiling(info: dict[str, Any], secret: str, alerts: int) -> float:
    """Alerts/s to a client that only fetches and decodes the pages (token once, $skip by whole pages)."""
    session = requests.Session()
    token = session.post(f"{info['url']}/{TENANT}/oauth2/v2.0/token", verify=info["ca"], timeout=10, data={
        "grant_type": "client_credentials", "client_id": CLIENT, "client_secret": secret,
        "scope": "https://api.securitycenter.microsoft.com/.default"}).json()["access_token"]
    params = {"$expand": "evidence", "$top": str(PAGE_SIZE),
              "$filter": f"lastUpdateTime gt {graph_time(info['oldest'] - 60)}"}
    received = skip = 0
    started = time.perf_counter()
    while True:
        response = session.get(f"{info['url']}/api/alerts", params={**params, "$skip": str(skip)}, verify=info["ca"],
                               headers={"Authorization": f"Bearer {token}"}, timeout=60)
        response.raise_for_status()
        page = orjson.loads(response.content)["value"]
        received += len(page)
        skip += PAGE_SIZE
        if len(page) < PAGE_SIZE:
            break
    if received != alerts:
        raise SystemExit(f"the ceiling client received {received} alerts, expected {alerts}")
    return received / (time.perf_counter() - started)


def write_config(home: Path, url: str, ca: str, oldest: float, split_evidence: bool) -> None:
    lookback = int(time.time() - oldest + 600)
    (home / "modules.d").mkdir(parents=True)
    module = home / "modules.d" / "microsoft.yml"
    host = url.removeprefix("https://")
    module.write_text(textwrap.dedent(f"""\
        - module: microsoft
          var.tenant_id: "{TENANT}"
          var.client_id: "{CLIENT}"
          var.client_secret: "${{{SECRET_VARIABLE}}}"
          var.api.login_endpoint: "{url}"
          var.ssl.certificate_authorities: ["{ca}"]
          defender_atp:
            enabled: true
            var.api_host: "{host}"
            var.initial_lookback: {lookback}s
            var.page_size: {PAGE_SIZE}
            var.split_evidence: {str(split_evidence).lower()}
            var.requests_per_minute: 1000000
            var.requests_per_hour: 100000000
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--step-ms", type=float, default=36.0, help="milliseconds between two alert updates")
    parser.add_argument("--split-evidence", action="store_true", help="one event per alert × evidence")
    parser.add_argument("--keep", action="store_true", help="keep the forwarder's home directory")
    parser.add_argument("--workers", help="forwarder.workers (auto or a number; unset: the forwarder's default)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.alerts, args.step_ms / 1000)
        return
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit("terminated"))
    secret = secrets.token_urlsafe(24)
    fake = subprocess.Popen([sys.executable, __file__, "--serve", "--alerts", str(args.alerts), "--step-ms",
                             str(args.step_ms)], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, SECRET_VARIABLE: secret})
    assert fake.stdin is not None and fake.stdout is not None
    info = json.loads(fake.stdout.readline() or "null") or sys.exit("the fake did not start")
    home = Path(tempfile.mkdtemp(prefix="bench-defender-"))
    events = args.alerts * (2 if args.split_evidence else 1)
    try:
        print(f"{args.alerts:,} alerts with 2 evidence each, pages of {PAGE_SIZE}, split_evidence "
              f"{args.split_evidence} ({events:,} events), {os.cpu_count()} CPUs, "
              f"load average {os.getloadavg()[0]:.2f} before")
        ceiling = fake_ceiling(info, secret, args.alerts)
        print(f"fake ceiling: {ceiling:,.0f} alerts/s (fetch and decode only)")
        before = requests.get(f"{info['url']}/bench/stats", verify=info["ca"], timeout=10).json()["requests"]
        write_config(home, info["url"], info["ca"], info["oldest"], args.split_evidence)
        print(f"forwarder.workers: {set_workers(home, args.workers)}")
        run = start_forwarder(home, secret, SECRET_VARIABLE)
        try:
            run.sample_until(events, timeout=max(600.0, args.alerts / 200), input_id=INPUT_ID)
            served = requests.get(f"{info['url']}/bench/stats", params={"since": before}, verify=info["ca"],
                                  timeout=10).json()
            user_cpu, system_cpu = process_cpu_split(run.process.pid)
            workers_cpu = descendants_cpu(run.process.pid)
            fake_cpu = sum(process_cpu_split(fake.pid))
            published = run.stats()["inputs"][INPUT_ID]["published"]
        finally:
            exit_code = run.stop() if run.process.poll() is None else run.process.returncode
        elapsed = run.last_write() - served["first_request"]
        print(f"forwarder: {args.alerts / elapsed:,.0f} alerts/s ({events / elapsed:,.0f} events/s; {args.alerts:,} "
              f"alerts in {elapsed:.1f}s, {served['requests'] - before:,} requests; forwarder CPU {user_cpu:.1f}s "
              f"user + {system_cpu:.1f}s system = {(user_cpu + system_cpu) / args.alerts * 1e6:.0f} µs/alert, fake CPU "
              f"{fake_cpu:.1f}s including its start and the ceiling run); "
              f"load average {os.getloadavg()[0]:.2f} after")
        print(f"worker processes CPU {workers_cpu:.1f}s = {workers_cpu / args.alerts * 1e6:.0f} µs/alert")
        print(f"ratio forwarder / fake ceiling: {args.alerts / elapsed / ceiling:.2f}")
        if published != events or exit_code != 0:
            raise SystemExit(f"published {published} of {events} events; forwarder exit code {exit_code}")
    finally:
        fake.stdin.close()
        rest = fake.stdout.read()
        fake.wait(30)
        if "handler_errors" in rest:
            print(f"the fake failed: {rest.strip()}")
        if args.keep:
            print(f"forwarder home kept in {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
