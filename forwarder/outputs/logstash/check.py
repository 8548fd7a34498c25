"""`forwarder test output` for Logstash: each step of reaching each host, reported separately.

The last step sends one real event: neither Logstash nor go-lumber answers
an empty window, so only a real event proves the listener accepts our
frames. The event is tagged so it can be filtered out downstream.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time

from forwarder.outputs.base import HostCheck
from forwarder.outputs.codec import EventEncoder
from forwarder.outputs.logstash.config import HostAddress, LogstashConfig
from forwarder.outputs.logstash.frames import ACK_SIZE, LumberjackProtocolError, encode_window, parse_ack
from forwarder.outputs.logstash.transport import (
    ConnectError,
    PlainTransport,
    TlsTransport,
    Transport,
    connect_tcp,
    describe_os_error,
    describe_tls_error,
    resolve,
)
from forwarder.pipeline.event import Event

TEST_MESSAGE = "forwarder test output"
TEST_TAG = "forwarder_test_output"


def check(config: LogstashConfig) -> list[HostCheck]:
    results: list[HostCheck] = []
    for address in config.hosts:
        results.extend(check_host(address, config))
    return results


def check_host(address: HostAddress, config: LogstashConfig) -> list[HostCheck]:
    """Stops at the first failing step; every step run is one HostCheck."""
    target = str(address)
    steps: list[HostCheck] = []
    try:
        infos = resolve(address)
    except ConnectError as exc:
        return [HostCheck(target, False, f"dns: {exc}")]
    addresses = sorted({str(info[4][0]) for info in infos})
    steps.append(HostCheck(target, True, f"dns: {address.host} resolves to {', '.join(addresses)}"))
    try:
        sock = connect_tcp(address, config.timeout, threading.Event())
    except ConnectError as exc:
        return [*steps, HostCheck(target, False, f"connect: {exc}")]
    steps.append(HostCheck(target, True, f"connect: TCP connection to {_peer(sock)} established"))
    transport: Transport = PlainTransport(sock)
    try:
        if config.ssl_context is not None:
            tls = TlsTransport(sock, config.ssl_context, address.host)
            try:
                tls.handshake()
            except ssl.SSLError as exc:
                return [*steps, HostCheck(target, False, f"tls: handshake failed: {describe_tls_error(exc)}")]
            except OSError as exc:
                return [*steps, HostCheck(target, False, f"tls: handshake failed: {describe_os_error(exc)}")]
            mode = config.tls.verification_mode if config.tls else "full"
            steps.append(HostCheck(target, True, f"tls: {tls.description} handshake ok (verification_mode {mode})"))
            transport = tls
        steps.append(_round_trip(target, transport, config))
    finally:
        transport.close()
    return steps


def _round_trip(target: str, transport: Transport, config: LogstashConfig) -> HostCheck:
    event = Event({"message": TEST_MESSAGE, "tags": [TEST_TAG]})
    payload = EventEncoder(config.index).encode(event)
    started = time.monotonic()
    try:
        transport.sendall(encode_window([payload], config.compression_level))
        buffer = b""
        while True:
            data = transport.recv()
            if not data:
                return HostCheck(target, False, "round trip: the server closed the connection without an ACK")
            buffer += data
            while len(buffer) >= ACK_SIZE:
                sequence = parse_ack(buffer[:ACK_SIZE])
                buffer = buffer[ACK_SIZE:]
                if sequence > 1:
                    raise LumberjackProtocolError(f"ACK {sequence} for a window of 1 event")
                if sequence == 1:
                    millis = (time.monotonic() - started) * 1000
                    return HostCheck(target, True, f"round trip: test event acknowledged in {millis:.0f} ms")
    except LumberjackProtocolError as exc:
        return HostCheck(target, False, f"round trip: protocol error: {exc}")
    except TimeoutError:
        return HostCheck(target, False, f"round trip: no ACK within {config.timeout:g}s")
    except (OSError, ValueError) as exc:
        return HostCheck(target, False, f"round trip: failed ({describe_os_error(exc)})")


def _peer(sock: socket.socket) -> str:
    host, port = sock.getpeername()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
