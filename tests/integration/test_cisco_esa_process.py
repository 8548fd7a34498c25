"""The cisco module's esa fileset as a site runs it: an ESA pushing its logs to the forwarder host.

SCP push: a real OpenSSH server (tests/fakes/openssh_server.py) on loopback
receives, with the real `scp` and the "appliance's" key, what an ESA pushes
for each subscription: the file still being written (`.c`, `.current`)
before its saved twin (`.s`), and an old compressed file (`.gz`). The real
forwarder process reads the landing directory with the fileset's filestream
input and writes the file output: only `.s` lines arrive, one event each,
every mail_logs line with its MID/ICID/DCID fields. Syslog push: the same
corpus, each subscription sent by the real `logger` with the subscription
name as the tag, over TCP and UDP.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
import textwrap
from functools import partial
from pathlib import Path

import pytest

from tests.fakes.openssh_server import OpenSshServer, openssh_server  # noqa: F401  (pytest fixture)
from tests.integration.forwarder_process import ForwarderProcess, output_events, wait_until
from tests.integration.test_syslog_process import free_port

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "cisco_esa"
FILE_STAMP = re.compile(r"^[A-Z][a-z]{2} +[A-Z][a-z]{2} +\d{1,2} \d\d:\d\d:\d\d \d{4}:? ")
L = "cisco_secure_email_gateway"


def corpus_files() -> list[Path]:
    return sorted(CORPUS.glob("*.s"))


def subscription(path: Path) -> str:
    return path.name.split(".", 1)[0]


def start_forwarder(home: Path, esa_settings: str) -> ForwarderProcess:
    modules = home / "modules.d"
    modules.mkdir(parents=True, exist_ok=True)
    (modules / "cisco.yml").write_text("- module: cisco\n  esa:\n" + textwrap.indent(textwrap.dedent(esa_settings),
                                                                                      "    "))
    os.chmod(modules / "cisco.yml", 0o600)
    process = ForwarderProcess(home, """
        forwarder.config.modules.path: ${path.config}/modules.d/*.yml
        queue.mem.flush.timeout: 10ms
        output.file.path: ${path.data}/events
        logging.metrics.enabled: false
        """).start()
    process.wait_for_log("forwarder started", timeout=60)
    return process


def assert_ids_follow_the_text(event: dict) -> None:
    """Every MID/ICID/DCID written in a mail_logs line is in the event's fields."""
    message = event["message"]
    log = event[L]["log"]
    mid = re.search(r"\bMID (\d+)", message)
    icid = re.search(r"\bICID (\d+)", message)
    dcid = re.search(r"\bDCID (\d+)", message)
    if mid:
        assert event["email"]["message_id"] == mid.group(1), event
    if icid:
        assert log["injection_connection_id"] == int(icid.group(1)), event
    if dcid:
        assert log["delivery_connection_id"] == int(dcid.group(1)), event


def test_scp_pushed_saved_files_only_are_forwarded_with_their_ids(tmp_path: Path,
                                                                   openssh_server: OpenSshServer) -> None:  # noqa: F811
    landing = tmp_path / "cisco-esa"
    staging = tmp_path / "appliance"
    staging.mkdir()
    home = tmp_path / "home"
    # A wider glob than the default (*/*.s), so that the fileset's own filter is what keeps .c/.current/.gz out.
    process = start_forwarder(home, f"""
        var.paths: ["{landing}/*/*"]
        var.timezone: UTC
        input:
          prospector.scanner.check_interval: 200ms
        """)
    try:
        expected: list[str] = []
        for saved in corpus_files():
            directory = landing / subscription(saved)
            directory.mkdir(parents=True, exist_ok=True)
            outgoing = staging / subscription(saved)
            outgoing.mkdir()
            current_text = "Fri Mar 25 20:50:10 2022 Info: CURRENT-FILE-NOT-SAVED MID 999 ICID 999\n"
            current = outgoing / saved.name.replace(".s", ".c")
            current.write_text(current_text)
            still_open = outgoing / f"{subscription(saved)}.current"
            still_open.write_text(current_text)
            old = outgoing / (saved.name + ".gz")
            old.write_bytes(gzip.compress(b"Fri Mar 25 20:50:10 2022 Info: COMPRESSED-OLD-FILE MID 998\n"))
            # one connection per subscription; the .s file arrives last
            openssh_server.push_all([current, still_open, old, saved], directory)
            expected += saved.read_text().splitlines()
        events = wait_until(lambda: len(output_events(home)) >= len(expected) and output_events(home), 120,
                            f"{len(expected)} events from the pushed .s files")
        assert process.terminate() == 0
    finally:
        process.stop()
    events = output_events(home)
    assert sorted(event["message"] for event in events) == sorted(expected)
    assert not any("NOT-SAVED" in event["message"] or "COMPRESSED" in event["message"] for event in events)
    for event in events:
        assert event["event"]["dataset"] == "cisco.esa" and event["fileset"]["name"] == "esa"
        assert "_parse_failure" not in event.get("tags", []), event
        assert event[L]["log"]["category"]["name"] == Path(event["log"]["file"]["path"]).name.split(".", 1)[0]
        if event[L]["log"]["category"]["name"] == "mail_logs":
            assert_ids_follow_the_text(event)
    by_message = {event["message"]: event for event in events}
    start = by_message["Fri Mar 25 20:50:11 2022 Info: Start MID 6 ICID 5"]
    assert start["@timestamp"] == "2022-03-25T20:50:11.000Z"
    assert start["email"]["message_id"] == "6" and start[L]["log"]["injection_connection_id"] == 5
    consolidated = next(event for event in events if "CEF:0" in event["message"])
    assert consolidated["email"]["message_id"] == "1053"


def has_events(home: Path, count: int) -> bool:
    return len(output_events(home)) >= count


def syslog_bodies(saved: Path) -> list[str]:
    """The corpus lines as an ESA pushes them by syslog: without the file's own time stamp."""
    return [FILE_STAMP.sub("", line) for line in saved.read_text().splitlines()]


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
def test_syslog_pushed_corpus_is_mapped_by_its_tag(tmp_path: Path, protocol: str) -> None:
    if shutil.which("logger") is None:
        pytest.skip("util-linux logger is not installed")
    port = free_port()
    home = tmp_path / "home"
    process = start_forwarder(home, f"""
        var.input: syslog
        var.syslog_host: 127.0.0.1
        var.syslog_port: {port}
        var.protocol: {protocol}
        """)
    try:
        process.wait_for_log("listening")
        expected: list[tuple[str, str]] = []
        for saved in corpus_files():
            bodies = syslog_bodies(saved)
            lines = tmp_path / f"{subscription(saved)}.lines"
            lines.write_text("\n".join(bodies) + "\n")
            transport = ["--tcp"] if protocol == "tcp" else ["--udp"]
            subprocess.run(["logger", *transport, "-n", "127.0.0.1", "-P", str(port), "--rfc3164", "--size", "8192",
                            "-t", subscription(saved), "-f", str(lines)], check=True, timeout=30)
            expected += [(subscription(saved), body) for body in bodies]
            # UDP may drop under load: each subscription's lines are in before the next ones are sent.
            wait_until(partial(has_events, home, len(expected)), 60, f"{len(expected)} syslog events")
        events = output_events(home)
        assert process.terminate() == 0
    finally:
        process.stop()
    assert sorted((event[L]["log"]["category"]["name"], event["message"]) for event in events) == sorted(expected)
    for event in events:
        assert "_parse_failure" not in event.get("tags", []), event
        if event[L]["log"]["category"]["name"] == "mail_logs":
            assert_ids_follow_the_text(event)
    by_message = {event["message"]: event for event in events}
    recipient = by_message["Info: MID 6 ICID 5 RID 0 To: <mary@yourdomain.com>"]
    assert recipient["email"]["to"]["address"] == ["mary@yourdomain.com"]
    assert recipient["log"]["level"] == "info"
    consolidated = next(event for event in events if event["message"].startswith("CEF:0"))
    assert consolidated["email"]["message_id"] == "1053"
    assert consolidated[L]["log"]["injection_connection_id"] == 134
