"""The sophos module in the real forwarder process: util-linux `logger` sends the corpus over UDP and TCP.

Every corpus line (both SFOS generations, every log type) must come out of the
file output as one event with its ECS fields; 10,000 lines of garbage and
half-quoted payloads must each come out once, raw, tagged `_parse_failure`,
with the forwarder still running.
"""

from __future__ import annotations

import random
import re
import shutil
import socket
import string
import subprocess
from pathlib import Path

import pytest

from tests.integration.forwarder_process import ForwarderProcess, output_events, wait_until

LOGGER = shutil.which("logger")
needs_logger = pytest.mark.skipif(LOGGER is None, reason="util-linux logger is not installed")
CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "sophos"
LINES = (CORPUS / "sfos18.log").read_text().splitlines() + (CORPUS / "sfos19.log").read_text().splitlines()
NETWORK_TYPES = {"Firewall", "IDP", "ATP", "Content Filtering", "WAF", "SSL"}
TRANSPORT_TYPES = NETWORK_TYPES - {"WAF"}


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(home: Path, protocol: str, port: int) -> ForwarderProcess:
    (home / "modules.d").mkdir(parents=True)
    (home / "modules.d" / "sophos.yml").write_text(f"""\
- module: sophos
  xg:
    var.input: {protocol}
    var.syslog_host: 127.0.0.1
    var.syslog_port: {port}
    var.timezone: Asia/Kolkata
    var.known_devices:
      - serial_number: X21004ABCDEF
        hostname: fw1.corp.example
""")
    forwarder = ForwarderProcess(home, """
        forwarder.config.modules.path: ${path.config}/modules.d/*.yml
        queue.mem.flush.timeout: 10ms
        output.file.path: ${path.data}/events
        logging.metrics.enabled: false
        """).start()
    forwarder.wait_for_log("listening")
    return forwarder


def send_file(port: int, protocol: str, path: Path, header: str, *extra: str) -> None:
    """One message per line of `path`, the way a relay or a script would use logger."""
    subprocess.run([LOGGER, "--server", "127.0.0.1", "--port", str(port), f"--{protocol}", f"--{header}",
                    "--size", "16384", "-t", "sophos", "-p", "local0.info", *extra, "-f", str(path)],
                   check=True, timeout=120, capture_output=True)


def events_when(home: Path, count: int, timeout: float) -> list[dict]:
    return wait_until(lambda: (lambda found: found if len(found) >= count else None)(output_events(home)),
                      timeout, f"{count} events in the output", interval=0.2)


@needs_logger
@pytest.mark.parametrize(("protocol", "header", "extra"), [
    ("udp", "rfc3164", ()),
    ("tcp", "rfc5424", ()),
    ("tcp", "rfc5424", ("--octet-count",)),
])
def test_every_corpus_line_becomes_one_mapped_event(tmp_path, protocol, header, extra):
    port = free_port(socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM)
    home = tmp_path / "home"
    forwarder = start(home, protocol, port)
    corpus = tmp_path / "corpus.log"
    corpus.write_text("\n".join(LINES) + "\n")
    try:
        send_file(port, protocol, corpus, header, *extra)
        events = events_when(home, len(LINES), 60)
        assert forwarder.alive()
    finally:
        forwarder.terminate()
    assert len(events) == len(LINES)
    by_message = {event["message"]: event for event in events}
    assert set(by_message) == set(LINES)
    for line in LINES:
        event = by_message[line]
        log_type = re.search(r'log_type="([^"]+)"', line).group(1)
        assert "tags" not in event or "_parse_failure" not in event["tags"], event.get("error")
        assert event["event"]["code"] == re.search(r"log_id=(\d{12})", line).group(1)
        assert event["event"]["module"] == "sophos" and event["event"]["dataset"] == "sophos.xg"
        assert event["input"]["type"] == "syslog"
        assert event["log"]["syslog"]["appname"] == "sophos"
        assert event["sophos"]["xg"]["log_type"] == log_type
        assert event["observer"]["vendor"] == "Sophos" and event["observer"]["serial_number"]
        if log_type in NETWORK_TYPES:
            assert event["source"]["ip"], line
            assert "connection" in event["event"]["type"]
        if log_type in TRANSPORT_TYPES:
            assert event["destination"]["ip"], line
            assert event["network"]["transport"] in ("tcp", "udp", "icmp")
    old_firewall = by_message[LINES[0]]
    assert old_firewall["@timestamp"] == "2017-01-31T08:46:19.000Z"
    assert old_firewall["source"]["nat"] == {"ip": "203.0.113.9", "port": 40001}
    assert old_firewall["observer"]["ingress"] == {"interface": {"name": "PortA"}, "zone": "LAN"}
    assert old_firewall["rule"]["id"] == "5" and old_firewall["user"]["name"] == "jsmith"
    assert old_firewall["tags"] == ["sophos-xg", "forwarded"]
    new_event = next(event for line, event in by_message.items() if "DHCP Server" in line)
    assert new_event["@timestamp"] == "2021-11-16T02:52:23.000Z"
    assert new_event["host"]["name"] == "firewall.localgroup.local"
    assert any(event["host"]["name"] == "fw1.corp.example" for event in events)


def garbage_lines(count: int) -> list[str]:
    """Random text, lines cut inside a quoted value before `log_id`, and records whose log_id is half-quoted."""
    generator = random.Random(2024)
    printable = string.ascii_letters + string.digits + string.punctuation + " éß€"
    lines: set[str] = set()
    while len(lines) < count:
        kind = len(lines) % 4
        if kind == 0:
            line = "".join(generator.choice(printable) for _ in range(generator.randrange(1, 200)))
        elif kind == 1:
            source = generator.choice(LINES)
            head = source[:source.index("log_id=")]
            quote = [match.start() for match in re.finditer('"', head)]
            cut = quote[generator.randrange(len(quote))] + 1 + generator.randrange(3) if quote else 1
            line = head[:cut] + f" n={len(lines)}"
        elif kind == 2:
            line = "".join(generator.choice('="k= ') for _ in range(generator.randrange(1, 80))) + f" {len(lines)}"
        else:
            source = generator.choice(LINES)
            line = re.sub(r"log_id=\d{12}", f'log_id="{generator.randrange(10**4)}', source) + f" n={len(lines)}"
        line = line.strip()
        if line:
            lines.add(line)
    return sorted(lines)


@needs_logger
def test_ten_thousand_garbage_lines_each_forwarded_raw_with_parse_failure(tmp_path):
    port = free_port(socket.SOCK_STREAM)
    home = tmp_path / "home"
    forwarder = start(home, "tcp", port)
    lines = garbage_lines(10_000)
    garbage = tmp_path / "garbage.log"
    garbage.write_text("\n".join(lines) + "\n")
    try:
        send_file(port, "tcp", garbage, "rfc3164")
        events = events_when(home, len(lines), 180)
        assert forwarder.alive()
        forwarder.wait_for_log("mapping_failures")
    finally:
        forwarder.terminate()
    assert len(events) == len(lines)
    assert sorted(event["message"] for event in events) == lines
    for event in events:
        assert "_parse_failure" in event["tags"], event
        assert "sophos_xg" in event["error"]["message"]
        assert "sophos" not in event and "source" not in event
        assert event["event"]["dataset"] == "sophos.xg"
