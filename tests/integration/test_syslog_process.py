"""Two hostile-peer scenarios against the running `forwarder` process (syslog in, file output out)."""

from __future__ import annotations

import json
import re
import socket
import ssl
import urllib.request

import pytest
import trustme

from tests.integration.forwarder_process import ForwarderProcess, output_events, wait_until


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_forwarder(home, port: int, tcp_settings: str) -> ForwarderProcess:
    forwarder = ForwarderProcess(home, f"""
        forwarder.inputs:
          - type: syslog
            id: hostile
            protocol.tcp:
              host: "127.0.0.1:{port}"
{tcp_settings}
        output.file:
          path: ${{path.data}}/events
        queue.mem.flush.timeout: 10ms
        logging.metrics.enabled: false
        """).start()
    forwarder.wait_for_log("listening")
    return forwarder


def messages(home) -> list[str]:
    return [event["message"] for event in output_events(home)]


def test_tls13_sender_closing_without_reading_loses_nothing(tmp_path):
    ca = trustme.CA()
    server = ca.issue_cert("localhost")
    server.cert_chain_pems[0].write_to_path(tmp_path / "server.pem")
    server.private_key_pem.write_to_path(tmp_path / "server.key")
    port = free_port()
    forwarder = start_forwarder(tmp_path / "home", port, f"""
              ssl.certificate: "{tmp_path / 'server.pem'}"
              ssl.key: "{tmp_path / 'server.key'}"
    """)
    context = ssl.create_default_context()
    ca.configure_trust(context)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    # Enough that the forwarder is still reading when the sender closes (it was 5,000 longer lines in the field).
    lines = 20000
    try:
        with socket.create_connection(("127.0.0.1", port)) as raw:
            conn = context.wrap_socket(raw, server_hostname="localhost")
            conn.sendall(b"".join(b"<13>Oct 11 22:14:15 host app: line %05d %s\n" % (n, b"t" * 60)
                                  for n in range(lines)))
            wait_until(lambda: messages(forwarder.home), 30, "the first event in the output")
            conn.close()  # without reading: unread session tickets made this close a reset
        wait_until(lambda: len(messages(forwarder.home)) >= lines, 60, f"{lines} events in the output")
        assert sorted(messages(forwarder.home)) == [f"line {n:05d} {'t' * 60}" for n in range(lines)]
        assert forwarder.terminate() == 0
    finally:
        forwarder.stop()
    assert not any("reset by the sender" in line.get("message", "") for line in forwarder.log_lines())


def test_bogus_octet_count_in_front_of_lines_is_reported_and_every_line_kept(tmp_path):
    port = free_port()
    forwarder = start_forwarder(tmp_path, port, """
              max_message_size: 64KiB
    """)
    lines = 3000
    try:
        with socket.create_connection(("127.0.0.1", port)) as conn:
            conn.sendall(b"9999999999 " + b"".join(b"<13>Oct 11 22:14:15 host app: line %05d %s\n" % (n, b"z" * 60)
                                                   for n in range(lines)))
        wait_until(lambda: len(messages(tmp_path)) >= lines, 60, f"{lines} events in the output")
        assert messages(tmp_path) == [f"line {n:05d} {'z' * 60}" for n in range(lines)]
        warning = forwarder.wait_for_log("octet count 9999999999 is larger than protocol.tcp.max_message_size")
        assert warning["log.level"] == "WARNING" and "(65536)" in warning["message"]
        assert forwarder.terminate() == 0
    finally:
        forwarder.stop()


def stats_of(forwarder: ForwarderProcess) -> dict:
    listening = forwarder.wait_for_log("monitoring endpoint listening")["message"]
    with urllib.request.urlopen(re.search(r"http://\S+/stats", listening).group(0), timeout=5) as response:
        return json.loads(response.read())


@pytest.mark.parametrize("workers", ["auto", "1"])
def test_udp_datagrams_are_each_forwarded_once_or_counted_as_dropped(tmp_path, workers):
    """Datagrams go in chunks (to worker processes by default): every one sent is in the output or counted."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    forwarder = ForwarderProcess(tmp_path, f"""
        forwarder.inputs:
          - type: syslog
            id: udp-chunks
            protocol.udp:
              host: "127.0.0.1:{port}"
              read_buffer: 4MiB
        output.file:
          path: ${{path.data}}/events
        queue.mem.flush.timeout: 10ms
        forwarder.workers: {workers}
        http.enabled: true
        http.host: 127.0.0.1
        http.port: 0
        logging.metrics.enabled: false
        """).start()
    sent = 20000
    try:
        forwarder.wait_for_log("listening on udp")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for number in range(sent):
                sender.sendto(b"<13>1 2024-06-10T08:15:30Z h app - - - datagram %05d" % number, ("127.0.0.1", port))

            def accounted() -> dict | None:
                """The input's counters once every datagram sent is queued or counted as dropped."""
                nonlocal sent
                counters = stats_of(forwarder)["inputs"]["udp-chunks"]
                if counters["published"] + counters["dropped"] + counters.get("udp_kernel_drops", 0) >= sent:
                    return counters
                # The kernel's drop count rides on the next datagram that gets through: send one more.
                sender.sendto(b"<13>1 - h app - - - marker %05d" % sent, ("127.0.0.1", port))
                sent += 1
                return None

            counters = wait_until(accounted, 60, "every datagram queued or counted as dropped", interval=0.5)
        wait_until(lambda: len(output_events(tmp_path)) >= counters["published"], 60, "the queued datagrams written")
        messages = [event["message"] for event in output_events(tmp_path)]
        assert forwarder.terminate() == 0
    finally:
        forwarder.stop()
    assert len(messages) == len(set(messages)) == counters["published"]
    assert counters["published"] + counters["dropped"] + counters.get("udp_kernel_drops", 0) == sent
