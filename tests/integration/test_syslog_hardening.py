"""The syslog listener against hostile or broken peers: each test is a scenario that lost or hid data before.

Real sockets, the real listener and a real pipeline (the `harness` fixture), as in test_syslog_input.py.
"""

from __future__ import annotations

import logging
import os
import resource
import socket
import ssl
import struct
import threading
import time
import tracemalloc

import pytest

from tests.integration.test_syslog_input import RunningInput, parse, tls_files, wait_for

LOGGER_NAME = "forwarder.input.syslog"


@pytest.fixture
def listener(harness):
    running: list[RunningInput] = []

    def starter(**config) -> RunningInput:
        instance = RunningInput(harness, config)
        running.append(instance)
        assert instance.failure is None, instance.failure
        return instance

    yield starter
    for instance in running:
        if instance.thread.is_alive():
            instance.shut_down()


def counter(running: RunningInput, name: str) -> int:
    return running.client.stats.extra.get(name, 0)


def warnings_with(caplog, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and text in r.getMessage()]


def test_tls13_sender_that_closes_without_reading_loses_nothing(harness, listener, tmp_path):
    """Session tickets the sender never reads made its kernel answer the close with a reset (1,695 of 5,000 kept)."""
    ca, _ = tls_files(tmp_path)
    running = listener(protocol={"tcp": {"host": "127.0.0.1:0", "ssl": {
        "certificate": str(tmp_path / "server.pem"), "key": str(tmp_path / "server.key")}}})
    context = ssl.create_default_context()
    ca.configure_trust(context)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    lines = 5000
    with socket.create_connection(("127.0.0.1", running.port("tcp"))) as raw:
        conn = context.wrap_socket(raw, server_hostname="localhost")
        assert conn.version() == "TLSv1.3"
        conn.sendall(b"".join(b"<13>Oct 11 22:14:15 host app: line %05d %s\n" % (n, b"x" * 60) for n in range(lines)))
        # The first event proves the handshake is over on the server side, so tickets would have been sent by now.
        events = harness.take(1)
        conn.close()  # without reading and without close_notify, as the senders in the field do
    events += harness.take(lines - 1, timeout=30)
    assert [e.fields["message"] for e in events] == [f"line {n:05d} {'x' * 60}" for n in range(lines)]
    assert counter(running, "tcp_connection_resets") == 0


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
def test_a_reset_that_cuts_a_stream_is_counted_logged_and_the_partial_message_forwarded(
        harness, listener, caplog, tmp_path, tls):
    ca, _ = tls_files(tmp_path)
    settings = {"certificate": str(tmp_path / "server.pem"), "key": str(tmp_path / "server.key")} if tls else None
    running = listener(protocol={"tcp": {"host": "127.0.0.1:0", **({"ssl": settings} if tls else {})}})
    with caplog.at_level(logging.WARNING, logger=LOGGER_NAME):
        conn = socket.create_connection(("127.0.0.1", running.port("tcp")))
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close() sends a reset
        if tls:
            context = ssl.create_default_context()
            ca.configure_trust(context)
            conn = context.wrap_socket(conn, server_hostname="localhost")
        conn.sendall(b"<13>complete\n<13>partial mess")
        [complete] = harness.take(1)
        conn.close()
        [partial] = harness.take(1)
        wait_for(lambda: counter(running, "tcp_connections") == 0)
    assert complete.fields["message"] == "complete"
    assert partial.fields["message"] == "partial mess" and "_truncated" in partial.fields["tags"]
    assert counter(running, "tcp_connection_resets") == 1
    assert counter(running, "tcp_frames_cut") == 1
    assert len(warnings_with(caplog, "was reset by the sender")) == 1
    assert len(warnings_with(caplog, "in the middle of a message")) == 1


def test_tls_sender_closing_without_close_notify_is_a_normal_end(harness, listener, tmp_path, caplog):
    ca, _ = tls_files(tmp_path)
    running = listener(protocol={"tcp": {"host": "127.0.0.1:0", "ssl": {
        "certificate": str(tmp_path / "server.pem"), "key": str(tmp_path / "server.key")}}})
    context = ssl.create_default_context()
    ca.configure_trust(context)
    with caplog.at_level(logging.WARNING, logger=LOGGER_NAME), \
            socket.create_connection(("127.0.0.1", running.port("tcp"))) as raw:
        conn = context.wrap_socket(raw, server_hostname="localhost")
        conn.sendall(b"<13>one\n<13>last line without delimiter")
        conn.close()
        events = harness.take(2)
        wait_for(lambda: counter(running, "tcp_connections") == 0)
    assert [(e.fields["message"], e.meta) for e in events] == [("one", {}), ("last line without delimiter", {})]
    assert counter(running, "tcp_connection_resets") == counter(running, "tcp_frames_cut") == 0
    assert not warnings_with(caplog, "syslog")


@pytest.mark.parametrize(("unfinished", "message"), [
    (b"<13>no delimiter yet", "no delimiter yet"),
    (b"200 <13>fewer than two hundred bytes", "fewer than two hundred bytes"),
])
def test_idle_timeout_forwards_the_unfinished_message(harness, listener, caplog, unfinished, message):
    running = listener(protocol={"tcp": {"host": "127.0.0.1:0", "timeout": "0.5s"}})
    with caplog.at_level(logging.WARNING, logger=LOGGER_NAME), \
            socket.create_connection(("127.0.0.1", running.port("tcp"))) as conn:
        conn.sendall(b"<13>complete\n" + unfinished)
        conn.settimeout(10)
        assert conn.recv(1) == b""  # closed by the listener for idleness
        events = harness.take(2)
    assert [e.fields["message"] for e in events] == ["complete", message]
    assert events[1].meta == {"truncated": True} and "_truncated" in events[1].fields["tags"]
    assert counter(running, "tcp_frames_cut") == 1
    assert "idle for longer than protocol.tcp.timeout" in warnings_with(caplog, "in the middle of a message")[0]


def test_a_bogus_octet_count_does_not_swallow_the_lines_behind_it(harness, listener, caplog):
    """`9999999999 ` then newline-framed lines: every line must arrive as its own event."""
    running = listener(protocol={"tcp": {"host": "127.0.0.1:0", "max_message_size": "64KiB"}})
    lines = [b"<13>Oct 11 22:14:15 host app: line %05d %s" % (n, b"y" * 50) for n in range(3000)]
    stream = b"9999999999 " + b"".join(line + b"\n" for line in lines)
    assert len(stream) > 4 * 64 * 1024
    with caplog.at_level(logging.WARNING, logger=LOGGER_NAME), \
            socket.create_connection(("127.0.0.1", running.port("tcp"))) as conn:
        conn.sendall(stream)
        events = harness.take(len(lines), timeout=30)
    assert [e.fields["message"] for e in events] == [f"line {n:05d} {'y' * 50}" for n in range(3000)]
    assert not any("tags" in e.fields for e in events)
    assert counter(running, "tcp_octet_counts_ignored") == 1
    [warning] = warnings_with(caplog, "octet count 9999999999 is larger than protocol.tcp.max_message_size")
    assert "read as newline-framed messages" in warning


def test_unfinished_messages_across_connections_are_bounded_then_delivered_and_released(harness, listener):
    """Many peers each holding a large half-sent message: reading pauses at max_buffered_bytes, nothing is lost."""
    bound = 4 << 20
    running = listener(protocol={"tcp": {"host": "127.0.0.1:0", "max_buffered_bytes": bound}})
    clients, size = 32, 8 << 20
    body = b"<13>" + b"A" * size
    port = running.port("tcp")
    bodies_sent: list[int] = []
    finish = threading.Event()

    def send() -> None:
        with socket.create_connection(("127.0.0.1", port)) as conn:
            conn.sendall(body)
            bodies_sent.append(1)
            finish.wait(60)
            conn.sendall(b"\n")

    senders = [threading.Thread(target=send, daemon=True) for _ in range(clients)]
    lengths: list[int] = []
    tracemalloc.start()
    try:
        for sender in senders:
            sender.start()
        # Every message stays unfinished until each sender got its body out, or the listener stopped reading.
        wait_for(lambda: len(bodies_sent) == clients or counter(running, "tcp_read_pauses") > 0, timeout=60)
        finish.set()
        deadline = time.monotonic() + 120
        while len(lengths) < clients and time.monotonic() < deadline:
            # One at a time, so that the test itself does not hold the delivered messages.
            lengths.extend(len(event.fields["message"]) for event in harness.take(1, timeout=1))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        finish.set()
        tracemalloc.stop()
    for sender in senders:
        sender.join(10)
    assert lengths == [size] * clients
    # Unbounded, the listener held all 32 x 8 MiB at once (366 MiB measured); bounded (about 50 MiB measured):
    # the bound, the one message allowed to complete and the copies made while it becomes an event.
    assert peak < 160 << 20, f"peak {peak >> 20} MiB"
    assert counter(running, "tcp_read_pauses") > 0
    wait_for(lambda: counter(running, "tcp_connections") == 0)
    assert counter(running, "tcp_buffered_bytes") == 0


def test_connection_cap_defaults_and_limit_reached_is_counted_and_logged(harness, listener, caplog):
    defaults = parse({"protocol": {"tcp": {"host": ":514"}}}).tcp
    assert (defaults.max_connections, defaults.max_buffered_bytes) == (512, 64 << 20)
    running = listener(protocol={"tcp": {"host": "127.0.0.1:0", "max_connections": 1}})
    port = running.port("tcp")
    with caplog.at_level(logging.WARNING, logger=LOGGER_NAME), socket.create_connection(("127.0.0.1", port)) as first:
        first.sendall(b"<13>first\n")
        assert [e.fields["message"] for e in harness.take(1)] == ["first"]
        with socket.create_connection(("127.0.0.1", port)) as second:
            second.sendall(b"<13>second waits\n")
            wait_for(lambda: counter(running, "tcp_connection_limit_reached") == 1)
            first.close()
            assert [e.fields["message"] for e in harness.take(1)] == ["second waits"]
    [warning] = warnings_with(caplog, "max_connections (1) reached")
    assert "further connections wait until one closes" in warning


def test_invalid_utf8_is_replaced_and_tagged(harness, listener):
    running = listener(protocol={"udp": {"host": "127.0.0.1:0"}, "tcp": {"host": "127.0.0.1:0"}})
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.sendto(b"<13>Oct 11 22:14:15 host app: udp \xff\xfe bytes", ("127.0.0.1", running.port("udp")))
        [udp] = harness.take(1)
    with socket.create_connection(("127.0.0.1", running.port("tcp"))) as conn:
        conn.sendall(b"<13>Oct 11 22:14:15 host app: tcp caf\xe9\n<13>Oct 11 22:14:15 host app: caf\xc3\xa9\n")
        bad, good = harness.take(2)
    assert udp.fields["message"] == "udp \ufffd\ufffd bytes" and udp.fields["tags"] == ["_invalid_utf8"]
    assert bad.fields["message"] == "tcp caf\ufffd" and bad.fields["tags"] == ["_invalid_utf8"]
    assert good.fields["message"] == "café" and "tags" not in good.fields


def test_accept_failures_are_logged_once_with_a_count_of_the_rest(harness, listener, caplog):
    """Out of file descriptors, accept() fails four times a second: one line, the others counted."""
    running = listener(protocol={"tcp": {"host": "127.0.0.1:0"}})
    port = running.port("tcp")
    clients = [socket.socket() for _ in range(3)]  # their descriptors exist before the limit is lowered
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with caplog.at_level(logging.WARNING, logger=LOGGER_NAME):
        lowest_free = os.open(os.devnull, os.O_RDONLY)
        os.close(lowest_free)
        resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))
        try:
            for number, client in enumerate(clients):
                client.connect(("127.0.0.1", port))
                client.sendall(b"<13>held back %d\n" % number)
            wait_for(lambda: counter(running, "tcp_accept_failures") >= 8, timeout=20)
            during = warnings_with(caplog, "accept failed")
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        events = harness.take(3)
        for client in clients:
            client.close()
        running.shut_down()
    assert len(during) == 1 and "Too many open files" in during[0]
    assert sorted(e.fields["message"] for e in events) == ["held back 0", "held back 1", "held back 2"]
    failures = counter(running, "tcp_accept_failures")
    [summary] = [line for line in warnings_with(caplog, "accept failed") if "since the last report" in line]
    assert f"({failures - 1} time(s) since the last report; only this one is logged)" in summary
