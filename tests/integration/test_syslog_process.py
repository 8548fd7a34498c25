"""Two hostile-peer scenarios against the running `forwarder` process (syslog in, file output out)."""

from __future__ import annotations

import socket
import ssl

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
