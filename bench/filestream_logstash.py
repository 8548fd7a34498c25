"""Filestream ndjson → Logstash output end to end, next to go-lumber's own client and pylogbeat (issue 16).

One file of `--events` Entra ID sign-in records (the six Graph sign-in samples of
tests/fixtures/entraid, each with fresh ids and times, ≈1.6 KB of JSON per line)
goes to Elastic's go-lumber v2 server (`ljserver`, built by
../shared/peers/build-lumber.sh) on loopback three ways, each timed from the
sender's process start until the server has acknowledged every event:

  forwarder   `python -m forwarder`: one filestream input (`parsers: [ndjson: {target: ""}]`),
              output.logstash with bulk_max_size 2048, compression_level 3, pipelining 2
  go-lumber   go-lumber's client (`ljsend -mode map -batch 2048 -compress 3 -pipeline 2`):
              per event it copies a template map (one sign-in record) and JSON-encodes it
  pylogbeat   pylogbeat (PyPI) in its own process: reads the file, json.loads each line,
              sends windows of 2048 (synchronous, zlib at its fixed default level 6)

Best of `--rounds` rounds each (interleaved), with the load average at each
measurement, the forwarder's VmRSS (sampled every 0.2 s) and the ratios
forwarder/go-lumber and forwarder/pylogbeat. `--py-spy DIR` records the forwarder with py-spy
(raw format, DIR/gil.txt and DIR/all.txt): odd rounds with `--gil`, even rounds
without; give enough `--events` to outlast the recording (`--py-spy-seconds`,
default 15) and take the throughput figures from a run without it.

Usage (from the repository root):

    python bench/filestream_logstash.py [--events 200000] [--rounds 2] [--py-spy DIR] [--event-costs] [--keep]

`--event-costs` also times, on this thread, decoding a line, encoding the event
as the forwarder sends it, and pickling events, raw lines and encoded events
(what handing work to a worker process would add), and freeing an event.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from profile_stages import report as profile_report  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "entraid"
SAMPLES = ("signin_failed_password", "signin_interactive_success", "signin_managed_identity",
           "signin_no_location_device", "signin_noninteractive", "signin_service_principal")
TEMPLATE = "signin_noninteractive"  # 1,597 bytes: the closest sample to the average line
PEERS = Path(os.environ.get("LUMBER_PEERS", Path.home() / ".cache" / "lumber-peers")) / "bin"
BATCH = 2048

# pylogbeat numbers frames across windows and waits for an ACK of the running number
# (Logstash's beats input echoes it); go-lumber ACKs each window's own count, as Beats
# expect, so the sender restarts pylogbeat's numbering at every window.
PYLOGBEAT_SENDER = """\
import json, sys, pylogbeat
path, port = sys.argv[1], int(sys.argv[2])

def send(client, window):
    client._sequence = 0
    client.send(window)

with pylogbeat.PyLogBeatClient("127.0.0.1", port) as client, open(path, "rb") as lines:
    window = []
    for line in lines:
        window.append(json.loads(line))
        if len(window) == 2048:
            send(client, window)
            window = []
    if window:
        send(client, window)
"""


def load() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def write_events(path: Path, count: int) -> int:
    """`count` sign-in records, one JSON object a line; returns the file's size."""
    samples = [json.loads((FIXTURES / f"{name}.json").read_text()) for name in SAMPLES]
    generator = random.Random(16)
    start = time.time() - count * 0.01
    with open(path, "w") as out:
        for number in range(count):
            record = dict(samples[number % len(samples)])
            record["id"] = str(uuid.UUID(int=generator.getrandbits(128), version=4))
            record["correlationId"] = str(uuid.UUID(int=generator.getrandbits(128), version=4))
            moment = start + number * 0.01
            record["createdDateTime"] = (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment))
                                         + f".{int(moment % 1 * 1000):03d}Z")
            out.write(json.dumps(record) + "\n")
    return path.stat().st_size


class Receiver:
    """ljserver for one measurement; `acknowledged_at` is when its count reached the target."""

    def __init__(self, target: int, out: Path | None = None) -> None:
        self.target = target
        self.acknowledged_at: float | None = None
        self.first_at: float | None = None  # when the first window was acknowledged
        self.events = 0
        self.process = subprocess.Popen(
            [str(PEERS / "ljserver"), "-addr", "127.0.0.1:0", "-stats-every", "10ms", "-exit-after", str(target),
             *(["-out", str(out)] if out else [])],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.port = self._port()
        self._reader = threading.Thread(target=self._count, daemon=True)
        self._reader.start()

    def _port(self) -> int:
        line = self.process.stderr.readline()
        if "listening on" not in line:
            raise SystemExit(f"ljserver did not start: {line}{self.process.stderr.read()}")
        return int(line.split(" (")[0].rsplit(":", 1)[1])

    def _count(self) -> None:
        for line in self.process.stdout:
            if line.startswith("stats events="):
                self.events = int(line.split()[1].split("=")[1])
                if self.events and self.first_at is None:
                    self.first_at = time.monotonic()
                if self.events >= self.target and self.acknowledged_at is None:
                    self.acknowledged_at = time.monotonic()

    def wait(self, sender: subprocess.Popen, timeout: float, on_tick=None) -> float:
        deadline = time.monotonic() + timeout
        while self.acknowledged_at is None:
            if time.monotonic() > deadline:
                raise SystemExit(f"not all events acknowledged within {timeout:.0f}s: {self.events}")
            if sender.poll() not in (None, 0):
                raise SystemExit(f"the sender exited with {sender.returncode} after {self.events} events")
            if on_tick:
                on_tick()
            time.sleep(0.2)
        return self.acknowledged_at

    def cpu_per_event(self) -> str:
        """The server's CPU per acknowledged event so far (it shares the machine's cores with the sender)."""
        if self.process.poll() is not None or not self.events:
            return "server CPU n/a"
        return f"server CPU {cpu_seconds(self.process.pid) / self.events * 1e6:.1f} µs an event"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(10)


@dataclass
class Measurement:
    rate: float
    load: str
    note: str = ""


@dataclass
class Results:
    runs: dict[str, list[Measurement]] = field(default_factory=dict)

    def add(self, name: str, measurement: Measurement) -> None:
        self.runs.setdefault(name, []).append(measurement)
        print(f"  {name:<10} {measurement.rate:>9,.0f} events/s  ({measurement.load}) {measurement.note}", flush=True)

    def best(self, name: str) -> float:
        return max(m.rate for m in self.runs.get(name, [])) if name in self.runs else 0.0


def resident_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def children_cpu() -> float:
    """User + system CPU seconds of this script's reaped children (the sender, once it has exited)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cpu_seconds(pid: int, descendants: bool = True) -> float:
    """User + system CPU seconds of a process, with its descendants still running (worker processes) by default."""
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
            ticks[int(entry.name)] = int(fields[11]) + int(fields[12])
    tree = {pid}
    while descendants:
        more = {child for child, parent in parents.items() if parent in tree} - tree
        if not more:
            break
        tree |= more
    return sum(ticks.get(member, 0) for member in tree) / os.sysconf("SC_CLK_TCK")


def forwarder_config(home: Path, events: Path, port: int, workers: str) -> Path:
    config = home / "forwarder.yml"
    config.write_text(textwrap.dedent(f"""\
        filebeat.inputs:
          - type: filestream
            id: signins
            paths: ["{events}"]
            parsers:
              - ndjson:
                  target: ""
        output.logstash:
          hosts: ["127.0.0.1:{port}"]
          bulk_max_size: {BATCH}
          compression_level: 3
          pipelining: 2
        logging.metrics.enabled: false
        forwarder.workers: {workers}
        """))
    config.chmod(0o600)
    return config


def run_forwarder(events: Path, count: int, keep: bool, profile: tuple[Path, int, bool] | None,
                  out: Path | None = None, workers: str = "auto") -> Measurement:
    home = Path(tempfile.mkdtemp(prefix="bench-filestream-"))
    receiver = Receiver(count, out)
    config = forwarder_config(home, events, receiver.port, workers)
    rss: list[int] = []
    progress: list[int] = []  # events acknowledged at each VmRSS sample
    with open(home / "stderr.log", "wb") as log:
        started = time.monotonic()
        process = subprocess.Popen([sys.executable, "-m", "forwarder", "-e", "-c", str(config),
                                    "--path.home", str(home)], cwd=home, stdout=log, stderr=log)
    recorder = start_recording(process.pid, *profile) if profile else None
    try:
        done = receiver.wait(process, timeout=1800, on_tick=lambda: (
            rss.append(resident_kib(process.pid)), progress.append(receiver.events)))
        rss.append(resident_kib(process.pid))
        progress.append(receiver.events)
        cpu = cpu_seconds(process.pid)
        main_cpu = cpu_seconds(process.pid, descendants=False)
        server = receiver.cpu_per_event()
        if recorder:
            recorder.wait(profile[1] + 60)
    finally:
        process.terminate()
        process.wait(60)
        receiver.stop()
        if not keep:
            shutil.rmtree(home, ignore_errors=True)
    first = receiver.first_at or done
    note = (f"first window acknowledged after {first - started:.2f} s; CPU {cpu:.1f} s "
            f"({cpu / count * 1e6:.0f} µs an event, start-up included; main process {main_cpu / count * 1e6:.0f}), "
            f"{server}; VmRSS max {max(rss) / 1024:.0f} MiB, "
            f"at the end {rss[-1] / 1024:.0f} MiB; {memory_series(rss, progress, count)}")
    if profile:
        note += f"; py-spy {'--gil' if profile[2] else 'all samples'} → {profile[0]}"
    return Measurement(count / (done - started), load(), note)


def memory_series(rss: list[int], progress: list[int], count: int) -> str:
    """VmRSS (MiB) at the first sample past each tenth of the events acknowledged."""
    points = []
    for tenth in range(1, 11):
        sample = next((kib for kib, acked in zip(rss, progress, strict=True) if acked >= count * tenth / 10), None)
        if sample is not None:
            points.append(f"{sample / 1024:.0f}")
    return "MiB at each 10 % acknowledged: " + " ".join(points)


def start_recording(pid: int, directory: Path, seconds: int, gil: bool) -> subprocess.Popen:
    """py-spy on the forwarder for `seconds`, raw format: only GIL-holding samples with `gil`, else all active ones."""
    directory.mkdir(parents=True, exist_ok=True)
    name = "gil" if gil else "all"
    with open(directory / f"{name}.log", "wb") as log:
        return subprocess.Popen(["py-spy", "record", *(["--gil"] if gil else []), "-p", str(pid), "-d", str(seconds),
                                 "--format", "raw", "-o", str(directory / f"{name}.txt")], stdout=log, stderr=log)


def run_sender(command: list[str], count: int) -> Measurement:
    receiver = Receiver(count)
    children_before = children_cpu()
    started = time.monotonic()
    sender = subprocess.Popen([part.replace("{port}", str(receiver.port)) for part in command],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        done = receiver.wait(sender, timeout=1800)
        server = receiver.cpu_per_event()
        output = sender.communicate(timeout=120)[0].strip()
        sender_cpu = (children_cpu() - children_before) / count * 1e6
    finally:
        if sender.poll() is None:
            sender.kill()
        receiver.stop()
    last_line = output.splitlines()[-1] if output else ""
    return Measurement(count / (done - started), load(), f"CPU {sender_cpu:.0f} µs an event, {server}; {last_line}")


def pylogbeat_available() -> bool:
    try:
        import pylogbeat  # noqa: F401
    except ImportError:
        return False
    return True


def compile_bytecode() -> None:
    """The forwarder's .pyc files, as a package install leaves them: with PYTHONDONTWRITEBYTECODE set (as on
    these machines) every start would otherwise compile its modules again, a start-up cost no user pays."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "forwarder")], check=True,
                   stdout=subprocess.DEVNULL)


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--events", type=int, default=200_000)
    arguments.add_argument("--rounds", type=int, default=2)
    arguments.add_argument("--py-spy", type=Path, metavar="DIR", help="record the first forwarder run with py-spy")
    arguments.add_argument("--py-spy-seconds", type=int, default=15, help="length of each py-spy recording")
    arguments.add_argument("--only", choices=("forwarder", "go-lumber", "pylogbeat"), action="append")
    arguments.add_argument("--event-costs", action="store_true",
                           help="also time decoding, encoding and pickling one event (for worker processes)")
    arguments.add_argument("--keep", action="store_true", help="keep the forwarder's home directories")
    arguments.add_argument("--workers", action="append",
                           help="forwarder.workers of a forwarder run (repeat to compare; default: auto and 1)")
    options = arguments.parse_args()
    for tool in ("ljserver", "ljsend"):
        if not (PEERS / tool).exists():
            raise SystemExit(f"{PEERS / tool} is missing: run ../shared/peers/build-lumber.sh GO_LUMBER_SRC first "
                             "(or set LUMBER_PEERS to its OUT_DIR)")
    compile_bytecode()
    chosen = set(options.only or ("forwarder", "go-lumber", "pylogbeat"))
    if "pylogbeat" in chosen and not pylogbeat_available():
        print("pylogbeat is not installed (pip install pylogbeat): its column is skipped")
        chosen.discard("pylogbeat")
    work = Path(tempfile.mkdtemp(prefix="bench-signins-"))
    try:
        events = work / "signins.ndjson"
        size = write_events(events, options.events)
        print(f"{options.events:,} sign-in events, {size / options.events:,.0f} bytes a line; {load()}")
        template = work / "template.json"
        template.write_text((FIXTURES / f"{TEMPLATE}.json").read_text())
        ljsend = [str(PEERS / "ljsend"), "-addr", "127.0.0.1:{port}", "-n", str(options.events),
                  "-batch", str(BATCH), "-compress", "3", "-pipeline", "2", "-mode", "map",
                  "-template", str(template)]
        pylogbeat = [sys.executable, "-c", PYLOGBEAT_SENDER, str(events), "{port}"]
        results = Results()
        for number in range(options.rounds):
            print(f"round {number + 1}")
            for workers in (options.workers or ["auto", "1"]) if "forwarder" in chosen else ():
                profile = (options.py_spy, options.py_spy_seconds, number % 2 == 0) if options.py_spy else None
                results.add(f"forwarder workers={workers}",
                            run_forwarder(events, options.events, options.keep, profile, workers=workers))
            if "go-lumber" in chosen:
                results.add("go-lumber", run_sender(ljsend, options.events))
            if "pylogbeat" in chosen:
                results.add("pylogbeat", run_sender(pylogbeat, options.events))
        summary = ", ".join(f"{name} {results.best(name):,.0f}" for name in results.runs)
        print(f"best of {options.rounds}: {summary} events/s")
        for name in [name for name in results.runs if name.startswith("forwarder")]:
            for reference in ("go-lumber", "pylogbeat"):
                if results.best(reference):
                    print(f"{name} / {reference}: {results.best(name) / results.best(reference):.2f}")
        if options.py_spy:
            for name in ("gil.txt", "all.txt"):
                if (options.py_spy / name).exists():
                    print(profile_report(options.py_spy / name))
        if options.event_costs:
            from event_costs import event_costs  # it builds on this module's forwarder run

            event_costs(events)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
