"""Strict parsing of Lumberjack v2 client frames for the fake server.

Stricter than Logstash on purpose: sequence numbers must restart at 1 in
every window, a `C` frame must hold a complete zlib stream of whole `J`
frames, and every payload must be a JSON object. Any deviation raises
`ProtocolViolation`, which the server records and answers by resetting the
connection, as Logstash does.
"""

from __future__ import annotations

import socket
import struct
import zlib
from collections.abc import Callable
from typing import Any

import orjson

_U32_PAIR = struct.Struct(">II")


class ProtocolViolation(Exception):
    """The client broke the protocol; the message says how."""


class StreamReader:
    """Exact-size reads from a socket, telling a clean end between frames from a cut inside one."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = bytearray()

    def read_or_eof(self, count: int) -> bytes | None:
        """`count` bytes, or None on a clean end of stream between frames."""
        while len(self._buffer) < count:
            data = self._sock.recv(262144)
            if not data:
                if self._buffer:
                    raise ProtocolViolation(f"connection closed inside a frame ({len(self._buffer)} stray bytes)")
                return None
            self._buffer += data
        chunk = bytes(self._buffer[:count])
        del self._buffer[:count]
        return chunk

    def read(self, count: int) -> bytes:
        chunk = self.read_or_eof(count)
        if chunk is None:
            raise EOFError("connection closed mid-window")
        return chunk


def read_json_frame(read: Callable[[int], bytes], expected_seq: int) -> bytes:
    sequence, length = _U32_PAIR.unpack(read(8))
    if sequence != expected_seq:
        raise ProtocolViolation(f"J frame sequence {sequence}, expected {expected_seq} (numbering restarts at 1)")
    if length == 0:
        raise ProtocolViolation("J frame with empty payload")
    return read(length)


def inflate(data: bytes, already: int) -> list[bytes]:
    """The J frames of one C frame; the zlib stream must be complete and hold whole frames only."""
    if len(data) < 2 or data[0] & 0x0F != 8:
        raise ProtocolViolation("C frame payload is not a zlib stream (RFC 1950 header missing)")
    inflater = zlib.decompressobj()
    try:
        content = inflater.decompress(data)
    except zlib.error as exc:
        raise ProtocolViolation(f"C frame: invalid zlib data ({exc})") from None
    if not inflater.eof or inflater.unused_data:
        raise ProtocolViolation("C frame: zlib stream truncated or followed by stray bytes")
    view = memoryview(content)
    payloads: list[bytes] = []
    position = 0
    while position < len(content):
        if len(content) - position < 10 or bytes(view[position:position + 2]) != b"2J":
            raise ProtocolViolation(f"C frame holds something other than complete J frames at byte {position}")
        sequence, length = _U32_PAIR.unpack_from(content, position + 2)
        if sequence != already + len(payloads) + 1:
            raise ProtocolViolation(f"J frame sequence {sequence}, expected {already + len(payloads) + 1}")
        end = position + 10 + length
        if length == 0 or end > len(content):
            raise ProtocolViolation("C frame ends inside a J frame")
        payloads.append(bytes(view[position + 10:end]))
        position = end
    return payloads


def decode(payload: bytes) -> dict[str, Any]:
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise ProtocolViolation(f"J frame payload is not JSON ({exc})") from None
    if not isinstance(document, dict):
        raise ProtocolViolation(f"J frame payload is JSON {type(document).__name__}, not an object")
    return document
