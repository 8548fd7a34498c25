"""The fake Lumberjack server itself: it must catch protocol mistakes, or the output tests prove nothing.

These talk to it with hand-built bytes, independent of the output's own frame encoder.
"""

from __future__ import annotations

import socket
import struct
import threading
import zlib
from collections.abc import Iterator

import pytest

from tests.fakes.lumberjack_server import Behaviour, LumberjackServer


def window(count: int) -> bytes:
    return b"2W" + struct.pack(">I", count)


def j(seq: int, payload: bytes) -> bytes:
    return b"2J" + struct.pack(">II", seq, len(payload)) + payload


def c(content: bytes, level: int = 3) -> bytes:
    data = zlib.compress(content, level)
    return b"2C" + struct.pack(">I", len(data)) + data


def read_acks(sock: socket.socket, until: int) -> list[int]:
    acks: list[int] = []
    buffer = b""
    while not acks or acks[-1] != until:
        data = sock.recv(64)
        assert data, f"connection closed after ACKs {acks}"
        buffer += data
        while len(buffer) >= 6:
            assert buffer[:2] == b"2A"
            acks.append(struct.unpack(">I", buffer[2:6])[0])
            buffer = buffer[6:]
    return acks


@pytest.fixture
def server() -> Iterator[LumberjackServer]:
    with LumberjackServer() as fake:
        yield fake


def connect(server: LumberjackServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    return sock


def test_plain_and_compressed_windows_are_parsed_and_acked(server: LumberjackServer) -> None:
    with connect(server) as sock:
        sock.sendall(window(2) + j(1, b'{"a":"hello"}') + j(2, b'{"b":1}'))
        assert read_acks(sock, 2) == [2]
        sock.sendall(window(2) + c(j(1, b'{"c":3}') + j(2, b'{"d":4}')))
        assert read_acks(sock, 2) == [2]
    assert server.events == [{"a": "hello"}, {"b": 1}, {"c": 3}, {"d": 4}]
    assert [(w.size, w.compressed) for w in server.windows] == [(2, False), (2, True)]
    assert server.errors == []


def test_a_window_may_mix_plain_and_compressed_frames(server: LumberjackServer) -> None:
    with connect(server) as sock:
        sock.sendall(window(3) + j(1, b'{"n":1}') + c(j(2, b'{"n":2}') + j(3, b'{"n":3}')))
        assert read_acks(sock, 3) == [3]
    assert [e["n"] for e in server.events] == [1, 2, 3]


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (window(1) + j(2, b"{}"), "sequence 2, expected 1"),
        (window(1) + j(1, b"[1,2]"), "not an object"),
        (window(1) + j(1, b"{nope"), "not JSON"),
        (b"1W" + struct.pack(">I", 1), "expected a window frame"),
        (window(1) + b"2D" + struct.pack(">II", 1, 0), "unexpected frame"),
        (window(1) + b"2C" + struct.pack(">I", 8) + zlib.compress(j(1, b"{}"))[2:10], "not a zlib stream"),
        (window(1) + b"2C" + struct.pack(">I", 10) + zlib.compress(j(1, b'{"long":"value"}'))[:10], "truncated"),
        (window(2) + c(j(1, b"{}")[:-1]), "C frame ends inside a J frame"),
        (window(1) + c(j(1, b"{}") + b"2W"), "complete J frames"),
    ],
)
def test_protocol_mistakes_are_recorded_and_the_connection_closed(server: LumberjackServer, data: bytes,
                                                                    error: str) -> None:
    with connect(server) as sock:
        sock.sendall(data)
        with pytest.raises(ConnectionResetError):  # closed with a RST, as Logstash does, never ACKed
            sock.recv(64)
    server.wait_for(lambda: bool(server.errors), what="the protocol error")
    assert error in server.errors[0]
    assert server.events == []


def test_partial_acks_then_the_final_one() -> None:
    with LumberjackServer(behaviour=Behaviour(ack_parts=4)) as server, connect(server) as sock:
        sock.sendall(window(10) + c(b"".join(j(n, b"{}") for n in range(1, 11))))
        assert read_acks(sock, 10) == [2, 5, 7, 10]


def test_keepalives_while_the_final_ack_is_held() -> None:
    release = threading.Event()
    with LumberjackServer(behaviour=Behaviour(hold=release, keepalive_interval=0.02)) as server, \
            connect(server) as sock:
        sock.sendall(window(1) + j(1, b"{}"))
        assert sock.recv(6) == b"2A\0\0\0\0"
        assert sock.recv(6) == b"2A\0\0\0\0"
        release.set()
        assert read_acks(sock, 1)[-1] == 1


def test_drop_after_events_keeps_what_was_read_and_then_behaves_normally() -> None:
    with LumberjackServer(behaviour=Behaviour(drop_after_events=2)) as server:
        with connect(server) as sock:
            sock.sendall(window(4) + c(b"".join(j(n, b'{"n":%d}' % n) for n in range(1, 5))))
            with pytest.raises(ConnectionResetError):
                sock.recv(64)
        with connect(server) as sock:
            sock.sendall(window(1) + j(1, b'{"n":9}'))
            assert read_acks(sock, 1) == [1]
    assert [e["n"] for e in server.events] == [1, 2, 9]


def test_refusing_and_stopping_to_listen(server: LumberjackServer) -> None:
    server.behaviour = Behaviour(refuse=True)
    # The RST can come before connect() has returned, or on the first send or receive.
    with pytest.raises((ConnectionResetError, BrokenPipeError)), connect(server) as sock:
        sock.sendall(window(1) + j(1, b"{}"))
        sock.recv(64)
    server.stop_listening()
    with pytest.raises(ConnectionRefusedError):
        connect(server)
    server.behaviour = Behaviour()
    server.resume_listening()
    with connect(server) as sock:
        sock.sendall(window(1) + j(1, b"{}"))
        assert read_acks(sock, 1) == [1]
    assert server.connections == 2


def test_wait_for_events_reports_what_it_saw_on_timeout(server: LumberjackServer) -> None:
    with pytest.raises(AssertionError, match="timed out waiting for 1 events: 0 events"):
        server.wait_for_events(1, timeout=0.05)
