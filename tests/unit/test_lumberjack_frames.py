"""Lumberjack v2 frames, byte for byte against the worked example (two events, `{"a":"hello"}` and `{"b":1}`)."""

from __future__ import annotations

import subprocess
import sys
import zlib

import orjson
import pytest

from forwarder.outputs.codec import ENCODING_FAILURE_TAG, EventEncoder
from forwarder.outputs.logstash import deflate
from forwarder.outputs.logstash.frames import (
    LumberjackProtocolError,
    encode_window,
    json_frames,
    parse_ack,
)
from forwarder.outputs.logstash.window_encoder import WindowEncoder
from forwarder.pipeline.event import Event

EVENTS = [b'{"a":"hello"}', b'{"b":1}']
WINDOW_FRAME = bytes.fromhex("32 57 00 00 00 02")
J_FRAMES = (
    bytes.fromhex("32 4A 00 00 00 01 00 00 00 0D") + b'{"a":"hello"}'
    + bytes.fromhex("32 4A 00 00 00 02 00 00 00 07") + b'{"b":1}'
)


def test_uncompressed_window_matches_the_worked_example() -> None:
    assert encode_window(EVENTS, compression_level=0) == WINDOW_FRAME + J_FRAMES


def test_compressed_window_is_one_c_frame_holding_the_j_frames() -> None:
    data = encode_window(EVENTS, compression_level=3)
    assert data[:6] == WINDOW_FRAME
    assert data[6:8] == b"2C"
    length = int.from_bytes(data[8:12], "big")
    assert len(data) == 12 + length
    payload = data[12:]
    assert payload[0] == 0x78  # RFC 1950 zlib header, not raw deflate or gzip
    assert zlib.decompress(payload) == J_FRAMES


@pytest.mark.parametrize("level", [1, 3, 9])
def test_every_compression_level_inflates_to_the_same_frames(level: int) -> None:
    data = encode_window(EVENTS, compression_level=level)
    assert zlib.decompress(data[12:]) == J_FRAMES


def test_sequence_numbers_restart_at_one_in_every_window() -> None:
    first = json_frames([b"{}"] * 3)
    second = json_frames([b"{}"])
    assert [first[i * 12 + 2:i * 12 + 6] for i in range(3)] == [b"\0\0\0\1", b"\0\0\0\2", b"\0\0\0\3"]
    assert second[2:6] == b"\0\0\0\1"


def test_ack_frames_parse_to_their_sequence() -> None:
    assert parse_ack(bytes.fromhex("32 41 00 00 00 02")) == 2
    assert parse_ack(bytes.fromhex("32 41 00 00 00 00")) == 0
    assert parse_ack(bytes.fromhex("32 41 FF FF FF FF")) == 0xFFFFFFFF
    assert parse_ack(bytearray(bytes.fromhex("32 41 00 00 00 07"))) == 7


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (bytes.fromhex("31 41 00 00 00 02"), "expected an ACK frame"),  # version 1
        (bytes.fromhex("32 57 00 00 00 02"), "expected an ACK frame"),  # a window frame
        (b"HTTP/1", "expected an ACK frame"),
        (bytes.fromhex("32 41 00 00 00"), "6-byte"),
    ],
)
def test_anything_but_an_ack_frame_is_a_protocol_error(frame: bytes, message: str) -> None:
    with pytest.raises(LumberjackProtocolError, match=message):
        parse_ack(frame)


def test_window_encoder_sends_exactly_what_event_encoder_produces() -> None:
    encoder = EventEncoder("filebeat")
    events = [Event({"message": f"line {i}", "n": i}, timestamp=1.7e9 + i, meta={"_id": f"id-{i}"}) for i in range(3)]
    frames = zlib.decompress(WindowEncoder(encoder, 3).encode(events)[12:])
    expected = json_frames([encoder.encode(event) for event in events])
    assert frames == expected


def test_escape_html_escapes_like_go_and_still_decodes_to_the_same_text() -> None:
    event = Event({"message": "<script>alert('x') & more</script>"}, timestamp=0)
    plain, = WindowEncoder(EventEncoder(), 0).payloads([event])
    escaped, = WindowEncoder(EventEncoder(), 0, escape_html=True).payloads([event])
    assert b"<" in plain and b"<" not in escaped and b"&" not in escaped and b">" not in escaped
    assert b"\\u003cscript\\u003e" in escaped and b"\\u0026" in escaped
    assert orjson.loads(escaped) == orjson.loads(plain)


def test_an_event_json_cannot_encode_is_replaced_not_dropped() -> None:
    good = Event({"message": "fine"}, timestamp=0)
    loop: list = []
    loop.append(loop)  # no JSON encoder can write a list that holds itself
    bad = Event({"message": "too big", "count": loop}, timestamp=1, meta={"_id": "x1"})
    payloads = WindowEncoder(EventEncoder(), 0).payloads([good, bad])
    assert len(payloads) == 2
    assert orjson.loads(payloads[0])["message"] == "fine"
    replaced = orjson.loads(payloads[1])
    assert replaced["message"] == "too big"
    assert replaced["tags"] == [ENCODING_FAILURE_TAG]
    assert replaced["@metadata"]["_id"] == "x1"
    assert "could not encode" in replaced["error"]["message"]
    assert "count" not in replaced


def test_isa_l_deflate_is_used_where_installed_and_maps_the_zlib_levels() -> None:
    assert deflate.LIBRARY == "isa-l"
    assert [deflate.library_level(level) for level in range(1, 10)] == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    frames = json_frames([b'{"message":"%d"}' % number for number in range(500)])
    assert zlib.decompress(deflate.compress(frames, 3)) == frames
    assert len(deflate.compress(frames, 3)) < len(frames) // 4


def test_without_isa_l_the_standard_library_deflates_at_the_level_asked() -> None:
    """A platform with no ISA-L wheel: the same windows, from the standard library's zlib."""
    script = (
        "import sys, zlib; sys.modules['isal'] = None\n"
        "from forwarder.outputs.logstash import deflate\n"
        "from forwarder.outputs.logstash.frames import encode_window\n"
        "data = encode_window([b'{}'] * 3, 7)\n"
        "assert deflate.LIBRARY == 'zlib' and deflate.library_level(7) == 7\n"
        "assert data[12:] == zlib.compress(zlib.decompress(data[12:]), 7)\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert result.stdout.strip() == "ok", result.stderr
