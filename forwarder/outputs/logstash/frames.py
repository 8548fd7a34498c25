"""Lumberjack v2 frames as Logstash's beats input and go-lumber read them.

A window is sent as one buffer: the `W` frame and its payload together, so
the receiver never waits on a lone 6-byte write (Nagle plus delayed ACK would
stall every window by ~40 ms). Sequence numbers restart at 1 in every window,
because go-lumber ACKs the event count while Logstash ACKs the highest
sequence number: only per-window numbering satisfies both.
"""

from __future__ import annotations

import struct

from forwarder.outputs.logstash.deflate import compress

# Every frame starts with the version byte '2' and a type byte: W(indow), J(SON), C(ompressed), A(CK).
ACK_SIZE = 6
MAX_SEQUENCE = 0x7FFFFFFF  # Logstash reads u32 into a signed Java int

_WINDOW_HEADER = struct.Struct(">2sI")
_JSON_HEADER = struct.Struct(">2sII")
_COMPRESSED_HEADER = struct.Struct(">2sI")
_ACK = struct.Struct(">2sI")


class LumberjackProtocolError(Exception):
    """The peer sent bytes that are not a valid Lumberjack v2 frame where one was expected."""


def json_frames(payloads: list[bytes], first_sequence: int = 1) -> bytes:
    """`2 J <seq> <len> <json>` for each payload, numbered from `first_sequence` (1 for a whole window)."""
    pack = _JSON_HEADER.pack
    parts: list[bytes] = []
    append = parts.append
    for seq, payload in enumerate(payloads, first_sequence):
        append(pack(b"2J", seq, len(payload)))
        append(payload)
    return b"".join(parts)


def encode_window(payloads: list[bytes], compression_level: int) -> bytes:
    """The complete bytes of one window: `W`, then the `J` frames, zlib-wrapped in one `C` frame unless level 0."""
    return seal_window(len(payloads), json_frames(payloads), compression_level)


def seal_window(count: int, frames: bytes, compression_level: int) -> bytes:
    """`W` + the `count` J `frames`, compressed into one `C` frame unless level 0."""
    if compression_level <= 0:
        return _window_header(count) + frames
    return compressed_window(count, compress(frames, compression_level))


def compressed_window(count: int, compressed: bytes) -> bytes:
    """`W` + one `C` frame around `compressed`, a complete zlib stream of `count` J frames."""
    return b"".join((_window_header(count), _COMPRESSED_HEADER.pack(b"2C", len(compressed)), compressed))


def _window_header(count: int) -> bytes:
    if count > MAX_SEQUENCE:
        raise ValueError(f"a window holds at most {MAX_SEQUENCE} events")
    return _WINDOW_HEADER.pack(b"2W", count)


def parse_ack(frame: bytes | bytearray | memoryview) -> int:
    """The sequence number of a 6-byte `2 A <seq>` frame; anything else is a protocol error."""
    if len(frame) != ACK_SIZE:
        raise LumberjackProtocolError(f"expected a {ACK_SIZE}-byte ACK frame, got {len(frame)} bytes")
    kind, sequence = _ACK.unpack(frame)
    if kind != b"2A":
        raise LumberjackProtocolError(f"expected an ACK frame (2A), got bytes {bytes(frame).hex(' ')}")
    return sequence
