"""The forwarder process end to end with the file output: shipped config, kill -9, bad input."""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from tests.integration.forwarder_process import ForwarderProcess, output_events, wait_until

REPO = Path(__file__).resolve().parents[2]
LOGGER = shutil.which("logger")


def free_port() -> int:
    with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        tcp.bind(("127.0.0.1", 0))
        port = tcp.getsockname()[1]
        udp.bind(("127.0.0.1", port))
        return port


def distinct_lines(home: Path) -> int:
    return len({event["message"] for event in output_events(home)})


@pytest.mark.skipif(LOGGER is None, reason="util-linux logger is not installed")
def test_shipped_config_receives_syslog_and_files_and_stops_cleanly(tmp_path):
    port = free_port()
    config = (REPO / "forwarder.yml").read_text().replace("127.0.0.1:5514", f"127.0.0.1:{port}")
    forwarder = ForwarderProcess(tmp_path, config).start()
    try:
        forwarder.wait_for_log("forwarder started")
        forwarder.wait_for_log("listening")
        subprocess.run([LOGGER, "--server", "127.0.0.1", "--port", str(port), "--tcp", "--rfc5424", "-t", "demo",
                        "-p", "auth.warning", "hello over tcp"], check=True, timeout=10)
        subprocess.run([LOGGER, "--server", "127.0.0.1", "--port", str(port), "--udp", "--rfc3164", "-t", "demo",
                        "hello over udp"], check=True, timeout=10)
        (tmp_path / "input").mkdir()
        with open(tmp_path / "input" / "demo.log", "a") as handle:
            handle.write("hello from a file\n")
        events = wait_until(lambda: (lambda e: e if len(e) >= 3 else None)(output_events(tmp_path)), 30,
                            "three events in the output file")
        by_message = {e["message"]: e for e in events}
        tcp = by_message["hello over tcp"]
        assert tcp["log"]["syslog"]["appname"] == "demo"
        assert tcp["log"]["syslog"]["facility"]["code"] == 4
        assert tcp["log"]["syslog"]["severity"]["code"] == 4
        assert tcp["input"]["type"] == "syslog"
        assert "hello over udp" in by_message
        line = by_message["hello from a file"]
        assert line["log"]["file"]["path"] == str(tmp_path / "input" / "demo.log")
        assert line["log"]["offset"] == 0
        assert line["@metadata"]["beat"] == "filebeat" and line["@metadata"]["_id"]
        assert line["host"]["name"]
        assert forwarder.terminate() == 0
    finally:
        forwarder.stop()
    registry_files = list((tmp_path / "data" / "registry" / "forwarder").glob("snapshot-*.json"))
    entries = json.loads(max(registry_files, key=lambda p: int(p.stem.split("-")[1])).read_text())["entries"]
    assert any(key.startswith("filestream::demo-files::") and value["offset"] == 18 for key, value in entries.items())


FILE_TO_FILE = """
    forwarder.inputs:
      - type: filestream
        id: numbered
        paths: ["{path}"]
        prospector.scanner.check_interval: 0.1s
    queue.mem:
      events: {queue_events}
      flush.min_events: 512
      flush.timeout: 50ms
    forwarder.registry.flush: {flush}
    output.file:
      path: ${{path.data}}/events
      bulk_max_size: 512
    logging.metrics.enabled: false
"""


@pytest.mark.parametrize("registry_flush", ["0s", "1s"])
def test_kill_9_three_times_loses_nothing(tmp_path, registry_flush):
    """Every line arrives at least once; replays are bounded by what was in flight or not yet flushed."""
    total, queue_events = 50_000, 2048
    source = tmp_path / "numbered.log"
    source.write_text("".join(f"line {n:06d} {'p' * 40}\n" for n in range(total)))
    home = tmp_path / "home"
    forwarder = ForwarderProcess(home, FILE_TO_FILE.format(path=source, queue_events=queue_events,
                                                           flush=registry_flush))
    seed = random.randrange(1 << 30)
    chooser = random.Random(seed)
    try:
        for kill in range(3):
            before = distinct_lines(home)
            forwarder.start()
            target = min(total, before + chooser.randint(2_000, 12_000))
            wait_until(lambda target=target: distinct_lines(home) >= target, 60,
                       f"progress before kill {kill} (seed {seed})")
            forwarder.kill_hard()
        forwarder.start()
        seen = wait_until(lambda: (lambda e: e if len({x["message"] for x in e}) >= total else None)(
            output_events(home)), 120, f"all {total} lines after the kills (seed {seed})")
        assert forwarder.terminate() == 0
    finally:
        forwarder.stop()
    numbers = [int(e["message"].split()[1]) for e in seen]
    assert set(numbers) == set(range(total)), f"lost lines (seed {seed})"
    duplicates = len(numbers) - total
    # Per kill: at most the queue's worth in flight, plus (with a 1s flush) what was acknowledged in that second.
    per_kill = queue_events if registry_flush == "0s" else queue_events + 60_000
    assert duplicates <= 3 * per_kill, f"{duplicates} duplicates (seed {seed})"
    offsets = {e["@metadata"]["_id"] for e in seen}
    assert len(offsets) == total, "each line keeps one stable @metadata._id across replays"


@pytest.mark.skipif(LOGGER is None, reason="util-linux logger is not installed")
def test_garbage_and_binary_input_keep_the_process_serving(tmp_path):
    port = free_port()
    (tmp_path / "input").mkdir()
    forwarder = ForwarderProcess(tmp_path, f"""
        forwarder.inputs:
          - type: syslog
            protocol.tcp.host: "127.0.0.1:{port}"
            protocol.tcp.max_message_size: 64KiB
          - type: filestream
            id: bin
            paths: ["{tmp_path}/input/*.bin"]
            prospector.scanner.check_interval: 0.1s
        output.file.path: ${{path.data}}/events
        """).start()
    try:
        forwarder.wait_for_log("forwarder started")
        forwarder.wait_for_log("listening")
        (tmp_path / "input" / "blob.bin").write_bytes(os.urandom(20_000) + b"\x00\xff\xfe\n")
        with socket.create_connection(("127.0.0.1", port)) as connection:
            connection.sendall(b"\x00\x01\x02 not syslog at all\n" + b"A" * 200_000 + b"\n")
            connection.sendall(b"99999999999 <13>1 - - - - - - short\n")
        subprocess.run([LOGGER, "--server", "127.0.0.1", "--port", str(port), "--tcp", "still alive"], check=True,
                       timeout=10)
        def served(events: list[dict]) -> list[dict] | None:
            alive = any(e.get("message", "").endswith("still alive") for e in events)
            read = any(e.get("input", {}).get("type") == "filestream" for e in events)
            return events if alive and read else None

        events = wait_until(lambda: served(output_events(tmp_path)), 30,
                            "the good syslog line after the garbage, and the binary file's line")
        assert forwarder.alive()
        assert any("_parse_failure" in e.get("tags", []) for e in events)
        assert forwarder.terminate() == 0
    finally:
        forwarder.stop()
