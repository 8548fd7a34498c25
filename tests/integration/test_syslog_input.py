"""The syslog input end to end: real sockets, util-linux `logger` as the sender, a real pipeline as the receiver."""

from __future__ import annotations

import logging
import random
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest
import trustme

from forwarder.inputs.base import InputContext, PermanentInputError
from forwarder.inputs.syslog import INPUT_TYPE, SyslogInput
from forwarder.pipeline.event import Event
from forwarder.schema.section import ConfigError, Section

LOGGER = shutil.which("logger")
needs_logger = pytest.mark.skipif(LOGGER is None, reason="util-linux logger is not installed")


def parse(config: dict, source: str = "inputs.yml"):
    problems: list = []
    parsed = INPUT_TYPE.parse_config(Section(config, "0", source, problems))
    if problems:
        raise ConfigError(problems)
    return parsed


class RunningInput:
    """An input running in its own thread, as the supervisor runs it."""

    def __init__(self, harness, config: dict, **client_settings) -> None:
        self.client = harness.connect("syslog", input_id="syslog-test", **client_settings)
        self.stop = threading.Event()
        context = InputContext("syslog-test", self.client, self.stop, logging.getLogger("forwarder.input.syslog"),
                               self.client.stats, harness.data_path)
        self.input: SyslogInput = INPUT_TYPE.create(parse(config), context)
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 5
        while not self.input.listening.is_set() and self.failure is None and time.monotonic() < deadline:
            self.input.listening.wait(0.05)

    def _run(self) -> None:
        try:
            self.input.run()
        except BaseException as exc:  # inspected by the test
            self.failure = exc

    def port(self, protocol: str) -> int:
        return self.input.addresses[protocol][1]

    def shut_down(self) -> float:
        started = time.monotonic()
        self.stop.set()
        self.thread.join(5)
        assert not self.thread.is_alive(), "run() did not return after stop"
        return time.monotonic() - started


@pytest.fixture
def start(harness):
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


def udp_and_tcp(**protocol) -> dict:
    defaults = {"udp": {"host": "127.0.0.1:0"}, "tcp": {"host": "127.0.0.1:0"}}
    defaults.update(protocol)
    return {"protocol": defaults}


def send_with_logger(port: int, *args: str, message: str = "hello from logger") -> int:
    proc = subprocess.run([LOGGER, "--server", "127.0.0.1", "--port", str(port), *args, "-t", "TAG",
                           "-p", "local3.warning", message], capture_output=True, timeout=10, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.returncode


def assert_local3_warning(event) -> None:
    syslog = event.fields["log"]["syslog"]
    assert syslog["priority"] == 156
    assert syslog["facility"] == {"code": 19, "name": "local3"}
    assert syslog["severity"] == {"code": 4, "name": "Warning"}
    assert syslog["appname"] == "TAG"
    assert abs(event.timestamp - time.time()) < 60
    assert "_parse_failure" not in event.fields.get("tags", [])


@needs_logger
def test_logger_rfc5424_over_udp(harness, start, caplog):
    with caplog.at_level(logging.INFO, logger="forwarder.input.syslog"):
        running = start(**udp_and_tcp())
    assert (f"syslog input syslog-test listening on udp 127.0.0.1:{running.port('udp')}, "
            f"tcp 127.0.0.1:{running.port('tcp')}") in caplog.text
    send_with_logger(running.port("udp"), "--udp", "--rfc5424")
    [event] = harness.take(1)
    assert_local3_warning(event)
    syslog = event.fields["log"]["syslog"]
    assert syslog["hostname"] == socket.gethostname()
    assert syslog["version"] == "1"
    assert syslog["structured_data"]["timeQuality"]["tzKnown"] == "1"
    assert event.fields["message"] == "hello from logger"
    assert event.fields["log"]["source"]["address"].startswith("127.0.0.1:")
    assert event.fields["input"]["type"] == "syslog"


@needs_logger
def test_logger_rfc3164_over_udp_infers_the_year(harness, start):
    running = start(**udp_and_tcp())
    send_with_logger(running.port("udp"), "--udp", "--rfc3164")
    [event] = harness.take(1)
    assert_local3_warning(event)
    assert event.fields["log"]["syslog"]["hostname"] == socket.gethostname().split(".")[0]
    assert event.fields["message"] == "hello from logger"


@needs_logger
def test_logger_rfc3164_over_tcp_with_pid(harness, start):
    running = start(**udp_and_tcp())
    proc = subprocess.Popen([LOGGER, "--server", "127.0.0.1", "--port", str(running.port("tcp")), "--tcp",
                             "--rfc3164", "-i", "-t", "TAG", "-p", "local3.warning", "with a pid"])
    assert proc.wait(10) == 0
    [event] = harness.take(1)
    assert_local3_warning(event)
    assert event.fields["log"]["syslog"]["procid"] == str(proc.pid)
    assert event.fields["message"] == "with a pid"


@needs_logger
def test_logger_octet_counted_rfc5424_with_structured_data(harness, start):
    running = start(**udp_and_tcp())
    send_with_logger(running.port("tcp"), "--tcp", "--octet-count", "--rfc5424=notq", "--sd-id", "origin@32473",
                     "--sd-param", 'ip="192.0.2.1"', "--sd-param", 'note="a \\"quoted\\" \\] \\\\ word"',
                     message="structured")
    [event] = harness.take(1)
    assert_local3_warning(event)
    assert event.fields["log"]["syslog"]["structured_data"] == {
        "origin@32473": {"ip": "192.0.2.1", "note": 'a "quoted" ] \\ word'},
    }
    assert event.fields["message"] == "structured"


@needs_logger
def test_many_logger_messages_over_udp_and_tcp_arrive_in_full(harness, start):
    running = start(**udp_and_tcp())
    for index in range(5):
        send_with_logger(running.port("tcp"), "--tcp", "--rfc5424", message=f"tcp {index}")
        send_with_logger(running.port("udp"), "--udp", "--rfc3164", message=f"udp {index}")
    messages = sorted(event.fields["message"] for event in harness.take(10))
    assert messages == sorted([f"tcp {i}" for i in range(5)] + [f"udp {i}" for i in range(5)])


def test_octet_counted_frames_several_per_send_and_split_across_sends(harness, start):
    running = start(protocol={"tcp": {"host": "127.0.0.1:0"}})
    frames = [f"<13>1 2024-05-01T10:00:0{i}Z host app - - - frame {i}".encode() for i in range(4)]
    stream = b"".join(b"%d %s" % (len(frame), frame) for frame in frames)
    with socket.create_connection(("127.0.0.1", running.port("tcp"))) as conn:
        cut = len(stream) - 20
        conn.sendall(stream[:cut])
        first = harness.take(3)
        conn.sendall(stream[cut:])
        last = harness.take(1)
    assert [event.fields["message"] for event in first + last] == [f"frame {i}" for i in range(4)]
    assert [event.timestamp for event in first + last] == [1714557600.0 + i for i in range(4)]


def test_newline_and_octet_framing_mixed_with_crlf(harness, start):
    running = start(protocol={"tcp": {"host": "127.0.0.1:0"}})
    frame = b"<34>Oct 11 22:14:15 mymachine su: counted"
    with socket.create_connection(("127.0.0.1", running.port("tcp"))) as conn:
        conn.sendall(b"<13>one\r\n\r\n%d %s<13>two\n\0<13>three" % (len(frame), frame))
    events = harness.take(4)
    assert [event.fields["message"] for event in events] == ["one", "counted", "two", "three"]


def test_a_hundred_concurrent_tcp_clients_lose_nothing(harness, start):
    running = start(protocol={"tcp": {"host": "127.0.0.1:0"}})
    clients, lines = 100, 40
    barrier = threading.Barrier(clients)

    def send(client: int) -> None:
        with socket.create_connection(("127.0.0.1", running.port("tcp"))) as conn:
            barrier.wait(10)
            payload = b"".join(b"<14>Oct 11 22:14:15 host app[%d]: line %d\n" % (client, n) for n in range(lines))
            for start_at in range(0, len(payload), 700):
                conn.sendall(payload[start_at:start_at + 700])

    senders = [threading.Thread(target=send, args=(client,)) for client in range(clients)]
    for sender in senders:
        sender.start()
    events = harness.take(clients * lines, timeout=30)
    for sender in senders:
        sender.join(10)
    assert len(events) == clients * lines
    per_client = Counter(event.fields["log"]["syslog"]["procid"] for event in events)
    assert per_client == Counter({str(client): lines for client in range(clients)})
    for client in ("0", "99"):
        ordered = [e.fields["message"] for e in events if e.fields["log"]["syslog"]["procid"] == client]
        assert ordered == [f"line {n}" for n in range(lines)]


def test_garbage_flood_is_forwarded_marked_and_the_listener_keeps_serving(harness, start):
    running = start(protocol={"tcp": {"host": "127.0.0.1:0", "max_message_size": "1MiB"}})
    port = running.port("tcp")
    rng = random.Random(7)
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(b"no priority here\n<13>fine after garbage\n")
        conn.sendall(bytes(rng.randrange(256) for _ in range(4096)))
    # The marker comes on a new connection, so wait until the garbage one is fully processed: its first
    # event proves it was accepted, and the connection count drops only after its last event is published.
    first = harness.take(1)
    wait_for(lambda: running.client.stats.extra["tcp_connections"] == 0)
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(b"<13>marker\n")
    events = first + take_until(harness, "marker")
    assert events[0].fields["message"] == "no priority here"
    assert events[0].fields["tags"] == ["_parse_failure"]
    assert "no <PRI>" in events[0].fields["error"]["message"]
    assert events[1].fields["message"] == "fine after garbage"
    assert "tags" not in events[1].fields
    garbage = events[2:-1]
    assert garbage and all("_parse_failure" in event.fields["tags"] for event in garbage)

    with socket.create_connection(("127.0.0.1", port)) as conn:
        chunk = b"A" * (1 << 20)
        for _ in range(30):
            conn.sendall(chunk)
        conn.sendall(b"\n<13>resynchronised\n")
    huge, after = harness.take(2, timeout=20)
    assert huge.meta["truncated"] is True and "_truncated" in huge.fields["tags"]
    assert len(huge.fields["message"]) == 1 << 20
    assert after.fields["message"] == "resynchronised" and not after.meta

    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(b"999999999 <13>claims to be huge, then hangs up")
    [cut] = harness.take(1)
    assert cut.meta["truncated"] is True
    assert cut.fields["message"] == "claims to be huge, then hangs up"

    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(b"<13>Oct 11 22:14:15 host good: still served\n")
    [good] = harness.take(1)
    assert good.fields["message"] == "still served"


def wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def take_until(harness, message: str) -> list:
    """Every event up to and including the first whose message is `message`."""
    events: list = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (events and events[-1].fields["message"] == message):
        events.extend(harness.take(1, timeout=0.5))
    assert events and events[-1].fields["message"] == message
    return events


def test_oversized_udp_datagram_is_truncated(harness, start):
    running = start(protocol={"udp": {"host": "127.0.0.1:0", "max_message_size": 64}})
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.sendto(b"<13>" + b"x" * 200, ("127.0.0.1", running.port("udp")))
        sender.sendto(b"<13>small", ("127.0.0.1", running.port("udp")))
    big, small = harness.take(2)
    assert big.meta == {"truncated": True}
    assert big.fields["message"] == "x" * 60
    assert small.fields["message"] == "small" and small.meta == {}


def test_udp_over_ipv6(harness, start):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    running = start(protocol={"udp": {"host": "[::1]:0"}})
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sender:
        sender.sendto(b"<13>over v6", ("::1", running.port("udp")))
    [event] = harness.take(1)
    assert event.fields["log"]["source"]["address"].startswith("[::1]:")


def tls_files(tmp_path):
    ca = trustme.CA()
    server = ca.issue_cert("localhost", "127.0.0.1")
    client = ca.issue_cert("client.example")
    ca.cert_pem.write_to_path(tmp_path / "ca.pem")
    server.cert_chain_pems[0].write_to_path(tmp_path / "server.pem")
    server.private_key_pem.write_to_path(tmp_path / "server.key")
    return ca, client


def test_tls_with_required_client_certificates(harness, start, tmp_path):
    ca, client_cert = tls_files(tmp_path)
    running = start(protocol={"tcp": {"host": "127.0.0.1:0", "ssl": {
        "certificate": str(tmp_path / "server.pem"), "key": str(tmp_path / "server.key"),
        "certificate_authorities": [str(tmp_path / "ca.pem")], "client_authentication": "required"}}})
    port = running.port("tcp")

    anonymous = ssl.create_default_context()
    ca.configure_trust(anonymous)
    with socket.create_connection(("127.0.0.1", port)) as raw, pytest.raises((ssl.SSLError, ConnectionError)), \
            anonymous.wrap_socket(raw, server_hostname="localhost") as conn:
        conn.sendall(b"<13>must not arrive\n")
        assert conn.recv(1) == b""

    trusted = ssl.create_default_context()
    ca.configure_trust(trusted)
    client_cert.configure_cert(trusted)
    with socket.create_connection(("127.0.0.1", port)) as raw, \
            trusted.wrap_socket(raw, server_hostname="localhost") as conn:
        conn.sendall(b"<13>Oct 11 22:14:15 host app: over tls\n")
    [event] = harness.take(1)
    assert event.fields["message"] == "over tls"


def test_tls_without_client_certificates(harness, start, tmp_path):
    ca, _ = tls_files(tmp_path)
    running = start(protocol={"tcp": {"host": "127.0.0.1:0", "ssl": {
        "certificate": str(tmp_path / "server.pem"), "key": str(tmp_path / "server.key")}}})
    context = ssl.create_default_context()
    ca.configure_trust(context)
    with socket.create_connection(("127.0.0.1", running.port("tcp"))) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as conn:
        conn.sendall(b"21 <13>1 - - - - - - tls")
    [event] = harness.take(1)
    assert event.fields["message"] == "tls"


def test_udp_drops_are_counted_when_the_queue_is_full(harness, start, caplog):
    running = start(protocol={"udp": {"host": "127.0.0.1:0"}})
    filler = harness.connect("filler", input_id="filler")
    while filler.try_publish(Event({"message": "fill"})):
        pass
    queued = harness.queue.active_events
    with caplog.at_level(logging.WARNING, logger="forwarder.input.syslog"), \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for index in range(5):
            sender.sendto(b"<13>dropped %d" % index, ("127.0.0.1", running.port("udp")))
        wait_for(lambda: running.client.stats.dropped >= 5)
    assert running.client.stats.dropped == 5
    assert running.client.stats.published == 0
    warnings = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert len(warnings) == 1 and "because the queue was full" in warnings[0]
    assert len(harness.take(queued)) == queued
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.sendto(b"<13>room again", ("127.0.0.1", running.port("udp")))
    [event] = harness.take(1)
    assert event.fields["message"] == "room again"


def test_a_chunk_of_udp_datagrams_meeting_a_full_queue_is_counted_to_the_last(harness, caplog):
    """The datagrams the socket held go as one chunk: those that find room are queued in order, the rest counted."""
    entered, release = threading.Event(), threading.Event()

    def hold_the_first(event: Event) -> Event:
        if not entered.is_set():
            entered.set()
            release.wait(10)
        return event

    running = RunningInput(harness, {"protocol": {"udp": {"host": "127.0.0.1:0"}}}, processors=[hold_the_first])
    try:
        filler = harness.connect("filler", input_id="filler")
        while filler.try_publish(Event({"message": "fill"})):
            pass
        room = 40
        queued = harness.queue.active_events
        assert len(harness.take(room + 1)) == room + 1  # room for the held datagram and `room` more
        target = ("127.0.0.1", running.port("udp"))
        datagrams = 200
        with caplog.at_level(logging.WARNING, logger="forwarder.input.syslog"), \
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.sendto(b"<13>held", target)
            assert entered.wait(10)
            for index in range(datagrams):  # they wait in the socket while the listener is held
                sender.sendto(b"<13>burst %d" % index, target)
            release.set()
            stats = running.client.stats
            wait_for(lambda: stats.published + stats.dropped + stats.extra.get("udp_kernel_drops", 0)
                     >= datagrams + 1)
        assert stats.extra.get("udp_kernel_drops", 0) == 0
        assert (stats.published, stats.dropped) == (room + 1, datagrams - room)
        ours = [e.fields["message"] for e in harness.take(queued) if e.fields["message"] != "fill"]
        assert ours == ["held"] + [f"burst {index}" for index in range(room)]
        assert len([r for r in caplog.records if "because the queue was full" in r.getMessage()]) == 1
    finally:
        release.set()
        running.stop.set()
        running.thread.join(5)


def test_a_frame_cut_between_whole_ones_in_one_read_keeps_its_place_and_only_it_is_marked(harness, start):
    running = start(protocol={"tcp": {"host": "127.0.0.1:0", "max_message_size": 64}})
    with socket.create_connection(("127.0.0.1", running.port("tcp"))) as conn:
        conn.sendall(b"<13>before\n<13>" + b"x" * 200 + b"\n<13>after one\n<13>after two\n")
        events = harness.take(4)
    assert [(e.fields["message"], e.meta) for e in events] == [
        ("before", {}), ("x" * 60, {"truncated": True}), ("after one", {}), ("after two", {})]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_RXQ_OVFL is Linux-only")
def test_kernel_receive_buffer_drops_are_counted(harness, start):
    running = start(protocol={"udp": {"host": "127.0.0.1:0", "read_buffer": 1024}})
    assert running.client.stats.extra["udp_kernel_drops"] == 0
    target = ("127.0.0.1", running.port("udp"))
    sent = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for _ in range(20000):
            sender.sendto(b"<13>burst", target)
            sent += 1
        stats = running.client.stats
        received = False
        deadline = time.monotonic() + 10
        # The drop counter rides on the next datagram that gets through: send markers until one arrives.
        while not received and time.monotonic() < deadline:
            sender.sendto(b"<13>marker", target)
            sent += 1
            received = any(e.fields["message"] == "marker" for e in harness.take(1 << 20, timeout=0.05))
    assert received
    wait_for(lambda: stats.published + stats.dropped + stats.extra["udp_kernel_drops"] >= sent)
    assert stats.extra["udp_kernel_drops"] > 0
    assert stats.published + stats.dropped + stats.extra["udp_kernel_drops"] == sent


def test_idle_tcp_connection_is_closed(harness, start):
    running = start(protocol={"tcp": {"host": "127.0.0.1:0", "timeout": "0.5s"}})
    with socket.create_connection(("127.0.0.1", running.port("tcp"))) as conn:
        conn.settimeout(5)
        started = time.monotonic()
        assert conn.recv(1) == b""
        assert 0.4 < time.monotonic() - started < 3


def test_max_connections_holds_back_further_clients(harness, start):
    running = start(protocol={"tcp": {"host": "127.0.0.1:0", "max_connections": 1}})
    port = running.port("tcp")
    first = socket.create_connection(("127.0.0.1", port))
    first.sendall(b"<13>first connected\n")
    assert [e.fields["message"] for e in harness.take(1)] == ["first connected"]
    with socket.create_connection(("127.0.0.1", port)) as second:
        second.sendall(b"<13>second waits\n")
        first.sendall(b"<13>first again\n")
        assert [e.fields["message"] for e in harness.take(1)] == ["first again"]
        first.close()
        assert [e.fields["message"] for e in harness.take(1)] == ["second waits"]


def test_stop_returns_within_a_second_with_open_connections(harness, start):
    running = start(**udp_and_tcp())
    idle = socket.create_connection(("127.0.0.1", running.port("tcp")))
    midframe = socket.create_connection(("127.0.0.1", running.port("tcp")))
    midframe.sendall(b"500 <13>1 - - - - - - only part of it")
    try:
        assert running.shut_down() < 1.5
        assert running.failure is None
    finally:
        idle.close()
        midframe.close()


def test_port_in_use_parks_the_input(harness):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        running = RunningInput(harness, {"protocol": {"udp": {"host": "127.0.0.1:0"},
                                                      "tcp": {"host": f"127.0.0.1:{port}"}}})
        running.thread.join(5)
    assert isinstance(running.failure, PermanentInputError)
    assert f"cannot listen on tcp 127.0.0.1:{port}" in str(running.failure)


@pytest.mark.parametrize(("config", "expected"), [
    ({"protocol": {"udp": {"host": "localhost"}}}, "inputs.yml: 0.protocol.udp.host: expected host:port"),
    ({"protocol": {"tcp": {"host": "::1:514"}}}, "0.protocol.tcp.host: write an IPv6 address in brackets"),
    ({"protocol": {"tcp": {"host": "127.0.0.1:70000"}}}, "0.protocol.tcp.host: expected host:port"),
    ({"protocol": {}}, "0.protocol: set protocol.udp.host and/or protocol.tcp.host"),
    ({"timezone": "Mars/Olympus", "protocol": {"udp": {"host": ":514"}}}, "0.timezone: unknown time zone"),
    ({"format": "rfc9999", "protocol": {"udp": {"host": ":514"}}}, "0.format: must be one of"),
    ({"protocol": {"tcp": {"host": ":514", "framming": "x"}}}, "0.protocol.tcp.framming: unknown setting"),
    ({"protocol": {"udp": {"host": ":514", "max_message_size": 0}}},
     "0.protocol.udp.max_message_size: must be greater than 0"),
    ({"protocol": {"tcp": {"host": ":514", "timeout": "0s"}}},
     "0.protocol.tcp.timeout: must be a duration greater than 0"),
    ({"protocol": {"unix": {"path": "/dev/log"}}}, "0.protocol.unix: unix sockets are not supported"),
    ({"protocol": {"tcp": {"host": ":514", "ssl": {"certificate": "/nonexistent.pem", "key": "/x.key"}}}},
     "0.protocol.tcp.ssl.certificate: cannot read /nonexistent.pem"),
    ({"protocol": {"tcp": {"host": ":514", "ssl": {"key": "/x.key"}}}}, "0.protocol.tcp.ssl.certificate: is required"),
])
def test_config_errors_name_the_key(config, expected):
    with pytest.raises(ConfigError) as error:
        parse(config)
    assert expected in str(error.value)
    assert "\n" not in str(error.value)


def test_wrong_key_passphrase_is_a_config_error_without_the_secret(tmp_path):
    tls_files(tmp_path)
    config = {"protocol": {"tcp": {"host": ":514", "ssl": {
        "certificate": str(tmp_path / "server.pem"), "key": str(tmp_path / "server.pem"),
        "key_passphrase": "hunter2"}}}}
    with pytest.raises(ConfigError) as error:
        parse(config)
    assert "0.protocol.tcp.ssl.key: cannot load the certificate and key" in str(error.value)
    assert "hunter2" not in str(error.value)


def test_config_defaults_and_values():
    config = parse({"format": "rfc3164", "timezone": "+0200", "protocol": {
        "udp": {"host": "127.0.0.1:5514", "read_buffer": "1MiB"},
        "tcp": {"host": "[::1]:6514", "framing": "rfc6587", "line_delimiter": "\\r\\n", "timeout": "1m"}}})
    assert config.format == "rfc3164"
    assert config.timezone.utcoffset(None).total_seconds() == 7200
    assert (config.udp.host, config.udp.port, config.udp.max_message_size, config.udp.read_buffer) == (
        "127.0.0.1", 5514, 10 * 1024, 1 << 20)
    assert (config.tcp.host, config.tcp.port, config.tcp.max_message_size) == ("::1", 6514, 20 << 20)
    assert config.tcp.line_delimiter == b"\r\n" and config.tcp.timeout == 60 and config.tcp.tls is None


def test_tcp_messages_read_while_stopping_are_counted_and_logged(harness, start, caplog):
    running = start(protocol={"tcp": {"host": "127.0.0.1:0"}})
    filler = harness.connect("filler", input_id="filler")
    while filler.try_publish(Event({"message": "fill"})):
        pass
    with caplog.at_level(logging.WARNING, logger="forwarder.input.syslog"), \
            socket.create_connection(("127.0.0.1", running.port("tcp"))) as conn:
        conn.sendall(b"<13>blocked one\n<13>blocked two\n")
        wait_for(lambda: running.client.stats.extra.get("tcp_connections") == 1)
        harness.queue.close()  # the pipeline stops taking events while the listener holds two frames
        wait_for(lambda: running.client.stats.dropped == 2)
        running.shut_down()
    assert running.client.stats.published == 0
    assert any("2 message(s) received while stopping were not forwarded" in r.getMessage() for r in caplog.records)


def test_udp_datagrams_read_while_stopping_are_counted_and_logged(harness, start, caplog):
    running = start(protocol={"udp": {"host": "127.0.0.1:0"}})
    harness.queue.close()  # the pipeline stops taking events
    with caplog.at_level(logging.WARNING, logger="forwarder.input.syslog"), \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.sendto(b"<13>too late", ("127.0.0.1", running.port("udp")))
        wait_for(lambda: running.client.stats.dropped == 1)
        running.shut_down()
    assert running.client.stats.published == 0
    assert any("1 message(s) received while stopping were not forwarded" in r.getMessage() for r in caplog.records)
