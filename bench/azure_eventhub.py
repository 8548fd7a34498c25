"""Entra ID sign-ins from an Event Hub through the real forwarder process to the file output.

Three processes: the fake Event Hubs namespace (tests/fakes/eventhubs_amqp.py, started by this
script as a child with `--serve`), this script, and `python -m forwarder` with the azure module's
signinlogs fileset (registry checkpoints, ECS normalization on) and `output.file`. The hub holds
`--messages` messages of `--records-per-message` sign-in records over `--partitions` partitions,
the shape a diagnostic setting writes. Two figures from the same fake:

  SDK reference  a bare EventHubConsumerClient in this script drains every partition with
                 receive_batch and counts the records (body parsed with orjson), nothing else:
                 what the SDK and the fake deliver.
  forwarder      records/s from the input's first log line (the hub's partitions read) to the
                 last record written (fsynced) by the file output.

`--records advanced_hunting` fills the hub with Defender XDR Streaming API records instead
(AdvancedHunting-Device{Process,Network,File}Events, EmailEvents, IdentityLogonEvents in turn, from
tests/fixtures/m365_defender) read by the microsoft module's m365_defender_event fileset;
`--records both` runs sign-ins then Advanced Hunting and prints the ratio of the two forwarder figures.

Usage (from the repository root, package installed with `pip install -e .`):

    python bench/azure_eventhub.py [--messages 8000] [--records-per-message 50] [--partitions 4]
                                   [--records signins|advanced_hunting|both] [--workers auto|N] [--keep]

`--workers` writes `forwarder.workers` into the forwarder's config (left out: the forwarder's default).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HUBS = {"signins": "insights-logs-signinlogs", "advanced_hunting": "defender-stream"}
CONNECTION_VARIABLE = "AZURE_EVENTHUB_CONNECTION_STRING"
FIXTURE = ROOT / "tests" / "fixtures" / "azure" / "signinlogs_noninteractive.json"
HUNTING_FIXTURE = ROOT / "tests" / "fixtures" / "m365_defender" / "advanced_hunting.json"


def sign_in_body(message: int, per_message: int) -> bytes:
    """One diagnostic-settings message: `per_message` non-interactive sign-ins with their own ids and users."""
    template = orjson.loads(FIXTURE.read_bytes())["records"][0]
    records = []
    for index in range(per_message):
        number = message * per_message + index
        record = dict(template)
        record["correlationId"] = f"{number:08d}-0000-4000-8000-000000000000"
        record["properties"] = {**template["properties"], "id": f"{number:08d}-1111-4000-8000-000000000000",
                                "userPrincipalName": f"user{number % 5000}@contoso.example"}
        records.append(record)
    return orjson.dumps({"records": records})


def hunting_body(message: int, per_message: int) -> bytes:
    """One Streaming API message: `per_message` Advanced Hunting records of five tables in turn, own ReportIds."""
    templates = orjson.loads(HUNTING_FIXTURE.read_bytes())["records"]
    records = []
    for index in range(per_message):
        number = message * per_message + index
        template = templates[number % len(templates)]
        records.append({**template, "properties": {**template["properties"], "ReportId": f"report-{number:08d}"}})
    return orjson.dumps({"records": records})


BODIES = {"signins": sign_in_body, "advanced_hunting": hunting_body}


def serve(kind: str, messages: int, per_message: int, partitions: int) -> None:
    """The fake's own process: fills the hub, prints its connection string, serves until stdin closes."""
    from tests.fakes.eventhubs_amqp import FakeEventHubs

    with FakeEventHubs(hub=HUBS[kind], partitions=partitions) as hub:
        for message in range(messages):
            hub.send(str(message % partitions), BODIES[kind](message, per_message))
        print(json.dumps({"connection_string": hub.connection_string}), flush=True)
        sys.stdin.read()


class FakeHub:
    def __init__(self, kind: str, messages: int, per_message: int, partitions: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve", "--messages", str(messages),
             "--records-per-message", str(per_message), "--partitions", str(partitions), "--records", kind],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit("the fake Event Hubs namespace did not start")
        self.connection_string: str = json.loads(line)["connection_string"]

    def cpu_seconds(self) -> float:
        return sum(process_cpu_split(self.process.pid))

    def stop(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def process_cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks


def process_tree_cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process and of its descendants still running (the worker processes)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, its_parent in parents.items() if its_parent == parent and child not in tree]
        tree.update(children)
        frontier.extend(children)
    user = system = 0.0
    for member in tree:
        try:
            member_user, member_system = process_cpu_split(member)
        except (OSError, ValueError, IndexError):
            continue
        user += member_user
        system += member_system
    return user, system


def sdk_reference(connection_string: str, total: int) -> tuple[float, float]:
    """Seconds for a bare consumer to receive and parse every record, and its CPU seconds."""
    from azure.eventhub import EventHubConsumerClient

    client = EventHubConsumerClient.from_connection_string(connection_string, consumer_group="$Default")
    received = [0]
    done = threading.Event()
    lock = threading.Lock()

    def on_batch(context: Any, batch: list) -> None:
        count = sum(len(orjson.loads(event.body_as_str())["records"]) for event in batch)
        with lock:
            received[0] += count
            if received[0] >= total:
                done.set()

    cpu = time.process_time()
    started = time.monotonic()
    thread = threading.Thread(target=client.receive_batch, daemon=True, kwargs={
        "on_event_batch": on_batch, "max_batch_size": 100, "max_wait_time": 5.0, "prefetch": 300,
        "starting_position": "-1"})
    thread.start()
    if not done.wait(600):
        raise SystemExit(f"the SDK reference received {received[0]} of {total} records")
    elapsed = time.monotonic() - started
    cpu = time.process_time() - cpu
    client.close()
    return elapsed, cpu


def write_home(home: Path, kind: str, normalize: bool, workers: str | None) -> None:
    (home / "modules.d").mkdir(parents=True)
    module = home / "modules.d" / "module.yml"
    fileset_vars = (f'var.connection_string: "${{{CONNECTION_VARIABLE}}}"\n'
                    f"var.normalize: {str(normalize).lower()}\n"
                    f"var.eventhub: {HUBS[kind]}\n")
    if kind == "signins":
        entry = "- module: azure\n  activitylogs:\n    enabled: false\n  signinlogs:\n    enabled: true\n"
    else:
        entry = "- module: microsoft\n  m365_defender_event:\n    enabled: true\n"
    module.write_text(entry + textwrap.indent(fileset_vars, "    "))
    config = home / "forwarder.yml"
    config.write_text(textwrap.dedent("""\
        output.file:
          path: ${path.data}/events
          rotate_every_kb: 1048576
          number_of_files: 2
        http.enabled: true
        http.port: 0
        logging.metrics.enabled: false
        """) + (f"forwarder.workers: {workers}\n" if workers is not None else ""))
    for path in (module, config):
        path.chmod(0o600)


def start_forwarder(home: Path, connection_string: str) -> tuple[subprocess.Popen, str]:
    log_path = home / "stderr.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "forwarder", "-e", "-c", str(home / "forwarder.yml"), "--path.home", str(home)],
            cwd=home, stdout=log, stderr=log, env={**os.environ, CONNECTION_VARIABLE: connection_string})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = re.search(r"listening on (http://[^ \"]+/stats)", log_path.read_text(errors="replace"))
        if found:
            return process, found.group(1)
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    raise SystemExit(f"the forwarder did not start its /stats endpoint:\n{log_path.read_text()[-3000:]}")


def wait_acked(process: subprocess.Popen, stats_url: str, total: int, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the forwarder exited with {process.returncode}")
        stats = requests.get(stats_url, timeout=10).json()
        for name, input_stats in stats["inputs"].items():
            if input_stats.get("last_error"):
                raise SystemExit(f"input {name} reported an error: {input_stats['last_error']}")
        if int(stats.get("output", {}).get("acked", 0)) >= total:
            return stats
        time.sleep(0.5)
    raise SystemExit(f"the forwarder did not finish within {timeout:.0f}s")


def input_started_at(home: Path) -> float:
    """The @timestamp of the input's 'reading event hub …' line: its partitions are about to be read."""
    for line in (home / "stderr.log").read_text(errors="replace").splitlines():
        if "reading event hub" in line:
            stamp = json.loads(line)["@timestamp"]
            return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    raise SystemExit("the input never logged that it started reading")


def run(kind: str, args: argparse.Namespace) -> float:
    """One fake hub of `kind` records through the SDK reference and then the forwarder; the forwarder's records/s."""
    total = args.messages * args.records_per_message
    what = "sign-in" if kind == "signins" else "Advanced Hunting"
    print(f"{total:,} {what} records in {args.messages:,} messages of {args.records_per_message} over "
          f"{args.partitions} partitions, normalize {not args.no_normalize}, workers {args.workers or 'default'}, "
          f"{os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f} before")
    fake = FakeHub(kind, args.messages, args.records_per_message, args.partitions)
    home = Path(tempfile.mkdtemp(prefix="bench-eventhub-"))
    try:
        fake_cpu = fake.cpu_seconds()
        elapsed, cpu = sdk_reference(fake.connection_string, total)
        reference = total / elapsed
        print(f"SDK reference: {reference:>9,.0f} records/s  ({total:,} records in {elapsed:.1f}s; "
              f"client CPU {cpu:.1f}s, fake CPU {fake.cpu_seconds() - fake_cpu:.1f}s)")
        write_home(home, kind, normalize=not args.no_normalize, workers=args.workers)
        fake_cpu = fake.cpu_seconds()
        process, stats_url = start_forwarder(home, fake.connection_string)
        try:
            stats = wait_acked(process, stats_url, total, timeout=max(600.0, total / 500))
            user_cpu, system_cpu = process_tree_cpu_split(process.pid)
        finally:
            process.send_signal(signal.SIGTERM)
            exit_code = process.wait(60)
        last_write = max(path.stat().st_mtime for path in (home / "data" / "events").glob("*.ndjson"))
        elapsed = last_write - input_started_at(home)
        rate = total / elapsed
        [input_stats] = stats["inputs"].values()
        print(f"forwarder:     {rate:>9,.0f} records/s  ({total:,} records in {elapsed:.1f}s; forwarder + workers CPU "
              f"{user_cpu:.1f}s user + {system_cpu:.1f}s system = "
              f"{(user_cpu + system_cpu) / total * 1e6:.0f} µs/record, fake CPU {fake.cpu_seconds() - fake_cpu:.1f}s)")
        print(f"ratio forwarder / SDK reference: {rate / reference:.2f}; load average {os.getloadavg()[0]:.2f} after")
        if input_stats["published"] != total or exit_code != 0:
            raise SystemExit(f"published {input_stats['published']} of {total} records; exit code {exit_code}")
        return rate
    finally:
        fake.stop()
        if args.keep:
            print(f"forwarder home kept in {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=8000)
    parser.add_argument("--records-per-message", type=int, default=50)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--records", choices=(*HUBS, "both"), default="signins",
                        help="what the hub holds: Entra ID sign-ins (azure module), Defender XDR Advanced Hunting "
                             "records (microsoft module), or both runs one after the other")
    parser.add_argument("--no-normalize", action="store_true", help="var.normalize: false (raw records, no ECS)")
    parser.add_argument("--workers", help="forwarder.workers for the forwarder (auto or a count; default: not set)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--keep", action="store_true", help="keep the forwarder's home directory")
    args = parser.parse_args()
    if args.serve:
        serve(args.records, args.messages, args.records_per_message, args.partitions)
        return
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit("terminated"))
    kinds = list(HUBS) if args.records == "both" else [args.records]
    rates = {kind: run(kind, args) for kind in kinds}
    if len(rates) == 2:
        print(f"ratio Advanced Hunting / sign-ins (forwarder): {rates['advanced_hunting'] / rates['signins']:.2f}")


if __name__ == "__main__":
    main()
