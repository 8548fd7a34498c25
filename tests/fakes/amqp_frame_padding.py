"""Completes the AMQP 1.0 frames proton writes, for clients that read performative fields by position.

AMQP lets a peer leave out trailing null fields of a composite (a `list`). Proton
does so; the pure-Python decoder inside azure-eventhub (`_pyamqp`) does not cope:
it indexes the decoded list (`frame[13]` of an attach, `frame[11]` as the payload
of a transfer, `frame[0][2]` of a close error) and fails with `list index out of
range` or mistakes a field for the payload. Real Event Hubs sends every field, so a
fake peer has to as well: `FramePadder` rewrites proton's outgoing byte stream,
padding each performative, and the error, source and target composites inside
it, with explicit nulls up to its full field count. Everything else passes through
unchanged, byte for byte.
"""

from __future__ import annotations

import struct

# descriptor code → number of fields, from the AMQP 1.0 specification (transport, messaging and security parts)
PERFORMATIVE_FIELDS = {
    0x10: 10,  # open
    0x11: 8,  # begin
    0x12: 14,  # attach
    0x13: 11,  # flow
    0x14: 11,  # transfer (the message payload follows the list)
    0x15: 6,  # disposition
    0x16: 3,  # detach
    0x17: 1,  # end
    0x18: 1,  # close
    0x40: 1,  # sasl-mechanisms
    0x41: 3,  # sasl-init
    0x42: 1,  # sasl-challenge
    0x43: 1,  # sasl-response
    0x44: 2,  # sasl-outcome
}
NESTED_FIELDS = {
    0x1D: 3,  # error
    0x28: 11,  # source
    0x29: 7,  # target
}

_U32 = struct.Struct(">I")
_FRAME_HEADER_SIZE = 8
_PROTOCOL_HEADER = b"AMQP"
_NULL = b"\x40"


class MalformedFrame(ValueError):
    """The outgoing bytes are not AMQP frames (a bug in the fake, never the client's fault)."""


def value_end(buffer: bytes, pos: int) -> int:
    """Returns where the AMQP-encoded value starting at `pos` ends."""
    constructor = buffer[pos]
    if constructor == 0x00:  # described: descriptor, then the value
        return value_end(buffer, value_end(buffer, pos + 1))
    category = constructor >> 4
    fixed = {0x4: 0, 0x5: 1, 0x6: 2, 0x7: 4, 0x8: 8, 0x9: 16}
    if category in fixed:
        return pos + 1 + fixed[category]
    if category in (0xA, 0xC, 0xE):  # one-byte size
        return pos + 2 + buffer[pos + 1]
    if category in (0xB, 0xD, 0xF):  # four-byte size
        return pos + 5 + _U32.unpack_from(buffer, pos + 1)[0]
    raise MalformedFrame(f"unknown AMQP constructor 0x{constructor:02x} at {pos}")


def _descriptor_code(buffer: bytes, pos: int) -> tuple[int | None, int]:
    """Reads a numeric descriptor at `pos` (just after 0x00); returns (code or None, where the value starts)."""
    constructor = buffer[pos]
    if constructor == 0x53:  # smallulong
        return buffer[pos + 1], pos + 2
    if constructor == 0x80:  # ulong
        return struct.unpack_from(">Q", buffer, pos + 1)[0], pos + 9
    return None, value_end(buffer, pos)


def _list_items(buffer: bytes, pos: int) -> list[bytes] | None:
    """The encoded items of the list at `pos`, or None when the value there is not a list."""
    constructor = buffer[pos]
    if constructor == 0x45:
        return []
    if constructor == 0xC0:
        count, start = buffer[pos + 2], pos + 3
    elif constructor == 0xD0:
        count, start = _U32.unpack_from(buffer, pos + 5)[0], pos + 9
    else:
        return None
    items = []
    for _ in range(count):
        end = value_end(buffer, start)
        items.append(buffer[start:end])
        start = end
    return items


def _encode_list(items: list[bytes]) -> bytes:
    body = b"".join(items)
    if len(body) + 1 <= 0xFF and len(items) <= 0xFF:
        return bytes((0xC0, len(body) + 1, len(items))) + body
    return b"\xd0" + _U32.pack(len(body) + 4) + _U32.pack(len(items)) + body


def pad_composite(value: bytes, field_counts: dict[int, int]) -> bytes:
    """Pads a described list whose descriptor is in `field_counts` (and nested errors/sources/targets)."""
    if not value or value[0] != 0x00:
        return value
    code, list_pos = _descriptor_code(value, 1)
    if code not in field_counts:
        return value
    items = _list_items(value, list_pos)
    if items is None:
        return value
    items = [pad_composite(item, NESTED_FIELDS) for item in items]
    items.extend([_NULL] * (field_counts[code] - len(items)))
    return value[:list_pos] + _encode_list(items)


def pad_frame(frame: bytes) -> bytes:
    """Pads the performative of one complete frame; heartbeats (no body) are returned as they are."""
    data_offset = frame[4] * 4
    if len(frame) == data_offset:
        return frame
    performative_end = value_end(frame, data_offset)
    performative = pad_composite(frame[data_offset:performative_end], PERFORMATIVE_FIELDS)
    rest = frame[performative_end:]
    size = data_offset + len(performative) + len(rest)
    return _U32.pack(size) + frame[4:data_offset] + performative + rest


class FramePadder:
    """Stateful rewriter for one connection's outgoing stream: feed it what proton wrote, send what it returns."""

    def __init__(self) -> None:
        self._pending = bytearray()

    def feed(self, data: bytes) -> bytes:
        self._pending += data
        out = bytearray()
        pending, pos = self._pending, 0
        while True:
            if pending[pos : pos + 4] == _PROTOCOL_HEADER:
                if len(pending) - pos < 8:
                    break
                out += pending[pos : pos + 8]
                pos += 8
                continue
            if len(pending) - pos < _FRAME_HEADER_SIZE:
                break
            size = _U32.unpack_from(pending, pos)[0]
            if size < _FRAME_HEADER_SIZE:
                raise MalformedFrame(f"frame size {size} is below the header size")
            if len(pending) - pos < size:
                break
            out += pad_frame(bytes(pending[pos : pos + size]))
            pos += size
        del pending[:pos]  # once per call: trimming per frame would copy a large backlog over and over
        return bytes(out)
