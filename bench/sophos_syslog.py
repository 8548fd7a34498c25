"""Sophos Firewall syslog end to end: TCP in → `sophos` module (xg fileset) → file output, in the real process.

This script sends `--lines` records (the test corpus, both SFOS generations and
every log type, repeated; `--firewall-only`: only the long Firewall records)
over one TCP connection, each as Sophos sends it (`<30>` then the payload, one
per line), as fast as the forwarder takes them: TCP back-pressure paces the
sender. The forwarder (`python -m forwarder`) runs the sophos module with
`var.input: tcp` and `output.file`. Two runs in the same script:

  reference   `var.normalize: false`: the same listener, pipeline and file output, without the mapping
  sophos      the module as shipped: the kv parse and the sophos_xg ECS mapping on every record

Each prints lines/s from the first byte sent to the last event written
(fsynced) by the file output, and the forwarder's CPU per line (user and system);
`sophos` also as a ratio of `reference`. Then the per-line CPU cost of each
stage, timed alone on this thread: syslog header parse, kv parse, kv parse +
ECS mapping, and the output's JSON encoding of a raw and of a mapped event.

Usage (from the repository root):

    python bench/sophos_syslog.py [--lines 200000] [--firewall-only] [--keep]
"""

from __future__ import annotations

import argparse
import shutil
import signal
import socket
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from entraid_graph import ForwarderRun, process_cpu_split, start_forwarder  # noqa: E402
from sophos_kv import corpus  # noqa: E402

from forwarder.inputs.syslog_parser import SyslogParser  # noqa: E402
from forwarder.modules.sophos_processor import build_sophos_xg  # noqa: E402
from forwarder.outputs.codec import EventEncoder  # noqa: E402
from forwarder.pipeline.event import Event  # noqa: E402
from forwarder.processors.kv import KeyValueParser  # noqa: E402
from forwarder.schema.section import Section  # noqa: E402

INPUT_ID = "sophos-xg"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_config(home: Path, port: int, normalize: bool) -> None:
    (home / "modules.d").mkdir(parents=True)
    (home / "modules.d" / "sophos.yml").write_text(textwrap.dedent(f"""\
        - module: sophos
          xg:
            var.input: tcp
            var.syslog_host: 127.0.0.1
            var.syslog_port: {port}
            var.timezone: UTC
            var.normalize: {str(normalize).lower()}
        """))
    (home / "forwarder.yml").write_text(textwrap.dedent("""\
        forwarder.config.modules.path: ${path.config}/modules.d/*.yml
        output.file:
          path: ${path.data}/events
          rotate_every_kb: 262144
          number_of_files: 2
        http.enabled: true
        http.port: 0
        logging.metrics.enabled: false
        """))


def send(port: int, payload: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port)) as connection:
        view = memoryview(payload)
        for start in range(0, len(payload), 1 << 20):
            connection.sendall(view[start:start + (1 << 20)])


def run(label: str, lines: list[str], total: int, normalize: bool, keep: bool) -> float:
    """Lines/s of one forwarder run; prints its figures."""
    home = Path(tempfile.mkdtemp(prefix=f"sophos-{label}-"))
    port = free_port()
    write_config(home, port, normalize)
    payload = b"".join(b"<30>" + line.encode() + b"\n" for line in lines) * (total // len(lines))
    count = len(lines) * (total // len(lines))
    forwarder: ForwarderRun = start_forwarder(home, "unused")
    try:
        deadline = time.monotonic() + 30
        while "listening on tcp" not in (home / "stderr.log").read_text(errors="replace"):
            if time.monotonic() > deadline:
                raise SystemExit(f"the syslog input did not start; see {home}/stderr.log")
            time.sleep(0.05)
        user_before, system_before = process_cpu_split(forwarder.process.pid)
        started = time.time()
        sender = threading.Thread(target=send, args=(port, payload), daemon=True)
        sender.start()
        forwarder.sample_until(count, timeout=1800, input_id=INPUT_ID)
        elapsed = forwarder.last_write() - started
        user_after, system_after = process_cpu_split(forwarder.process.pid)
        user, system = user_after - user_before, system_after - system_before
        failures = forwarder.stats()["inputs"].get(INPUT_ID, {}).get("mapping_failures", 0)
        forwarder.stop()
    finally:
        if forwarder.process.poll() is None:
            forwarder.process.kill()
        if not keep:
            shutil.rmtree(home, ignore_errors=True)
    rate = count / elapsed
    print(f"{label:<10} {count:,} lines in {elapsed:.2f} s: {rate:>9,.0f} lines/s, forwarder CPU per line "
          f"{(user + system) / count * 1e6:.1f} µs (user {user / count * 1e6:.1f}, system "
          f"{system / count * 1e6:.1f}), mapping failures {failures}")
    return rate


def stage_costs(lines: list[str]) -> None:
    """CPU µs per line of each stage alone on this thread (CPU time, so other work on the machine counts less)."""
    framed = [b"<30>" + line.encode() for line in lines] * 200
    texts = lines * 200
    syslog = SyslogParser()
    parser = KeyValueParser()
    mapping = build_sophos_xg(Section({"timezone": "UTC"}, "", "bench", []))
    encoder = EventEncoder()
    raw_events = [Event({"message": text, "log": {"syslog": {"priority": 30}}}, 0.0) for text in texts]
    mapped_events = [mapping(Event({"message": text, "log": {"syslog": {"priority": 30}}}, 0.0)) for text in texts]
    figures = []
    for name, work, items in (
        ("syslog header", syslog.parse, framed),
        ("kv parse", parser.parse, texts),
        ("kv + mapping", lambda item: mapping(Event({"message": item}, 0.0)), texts),
        ("JSON of the raw event", encoder.encode, raw_events),
        ("JSON of the mapped event", encoder.encode, mapped_events),
    ):
        start = time.process_time()
        for item in items:
            work(item)
        figures.append(f"{name} {(time.process_time() - start) / len(items) * 1e6:.1f}")
    print("CPU µs per line of each stage alone on one thread: " + ", ".join(figures))


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--lines", type=int, default=200_000)
    arguments.add_argument("--firewall-only", action="store_true", help="only the long Firewall records")
    arguments.add_argument("--keep", action="store_true", help="keep the forwarders' home directories")
    options = arguments.parse_args()
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit("terminated"))
    lines = corpus(options.firewall_only)
    print(f"{len(lines)} distinct records, {sum(map(len, lines)) / len(lines):.0f} bytes on average")
    reference = run("reference", lines, options.lines, normalize=False, keep=options.keep)
    sophos = run("sophos", lines, options.lines, normalize=True, keep=options.keep)
    print(f"sophos / reference: {sophos / reference:.2f}")
    stage_costs(lines)


if __name__ == "__main__":
    main()
