"""The disk queue's segment files: how events are framed on disk, and how a segment is checked when it is opened.

A segment is `<id>.seg`: an 8-byte header, then frames. A frame holds the
events of one write (one fsync), so that compression works on a block of
similar events rather than one at a time:

    u32 payload length | u32 CRC-32 of the payload | payload
    payload = u8 codec (0 plain, 1 lz4 frame) | u32 event count | u64 write time (ms) | body
    body    = per event: u32 length | the event's output document (JSON)

The length and CRC make a torn write (power cut, SIGKILL mid-write, a full
disk) detectable: `scan_segment` keeps the frames before the first bad one
and reports the bytes after it. What is stored is the document the output
sends (`@timestamp`, `@metadata` and every field, from the output's own
encoder): an event is encoded once, by the queue's writer, and read back as
those bytes with nothing to parse.

`SegmentFiles` is every file operation the queue makes, in one object, so a
test can make any of them fail (or "crash") at a chosen call.
"""

from __future__ import annotations

import os
import struct
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import lz4.frame

from forwarder.disk import FILE_MODE, fsync_directory, write_all
from forwarder.pipeline.event import Event

HEADER = b"FWDQSEG1"
FRAME_HEAD = struct.Struct("<II")
PAYLOAD_HEAD = struct.Struct("<BIQ")
EVENT_HEAD = struct.Struct("<I")
PLAIN, LZ4 = 0, 1
# A frame longer than this is not one we wrote: the length field itself is damaged.
MAX_FRAME = 1 << 30


def segment_name(segment_id: int) -> str:
    return f"{segment_id:020d}.seg"


def segment_ids(directory: Path) -> list[int]:
    ids = []
    for path in directory.glob("*.seg"):
        if path.stem.isdigit():
            ids.append(int(path.stem))
    return sorted(ids)


def encode_frame(events: list[Event], encode: Callable[[Event], bytes],
                 compression_level: int | None) -> tuple[bytes, int]:
    """(the frame's bytes, the size of its documents before compression); sets each event's `encoded`."""
    parts = []
    for event in events:
        document = event.encoded = encode(event)
        parts.append(EVENT_HEAD.pack(len(document)))
        parts.append(document)
    body = b"".join(parts)
    raw_size = len(body)
    codec = PLAIN
    if compression_level is not None:
        body, codec = lz4.frame.compress(body, compression_level=compression_level), LZ4
    payload = PAYLOAD_HEAD.pack(codec, len(events), int(time.time() * 1000)) + body
    return FRAME_HEAD.pack(len(payload), zlib.crc32(payload)) + payload, raw_size


def decode_payload(payload: bytes) -> tuple[list[Event], int]:
    """(the events of a frame, as their documents; its write time in ms)."""
    codec, count, written_ms = PAYLOAD_HEAD.unpack_from(payload)
    body = payload[PAYLOAD_HEAD.size:]
    if codec == LZ4:
        body = lz4.frame.decompress(body)
    events = []
    position = 0
    for _ in range(count):
        (length,) = EVENT_HEAD.unpack_from(body, position)
        position += EVENT_HEAD.size
        events.append(Event.from_encoded(body[position:position + length]))
        position += length
    return events, written_ms


@dataclass
class FrameInfo:
    """Where a frame lies in its segment, and the index (in the segment) of its first event."""

    offset: int
    end: int
    count: int
    written_ms: int
    first_index: int


@dataclass
class SegmentScan:
    frames: list[FrameInfo] = field(default_factory=list)
    valid_end: int = len(HEADER)
    size: int = 0
    # Why the bytes after valid_end are not frames (None when there are none).
    damage: str | None = None

    @property
    def torn_bytes(self) -> int:
        return self.size - self.valid_end


def scan_segment(path: Path) -> SegmentScan:
    """Every whole frame of the segment; stops at the first frame whose length or CRC does not hold."""
    data = path.read_bytes()
    scan = SegmentScan(size=len(data))
    if len(data) < len(HEADER) or not data.startswith(HEADER):
        scan.valid_end = 0
        scan.damage = "the segment header is missing or damaged"
        return scan
    offset = len(HEADER)
    index = 0
    while offset < len(data):
        if offset + FRAME_HEAD.size > len(data):
            scan.damage = "a frame header is cut short"
            break
        length, crc = FRAME_HEAD.unpack_from(data, offset)
        start = offset + FRAME_HEAD.size
        if length < PAYLOAD_HEAD.size or length > MAX_FRAME or start + length > len(data):
            scan.damage = "a frame is cut short"
            break
        payload = data[start:start + length]
        if zlib.crc32(payload) != crc:
            scan.damage = "a frame fails its CRC check"
            break
        _, count, written_ms = PAYLOAD_HEAD.unpack_from(payload)
        scan.frames.append(FrameInfo(offset, start + length, count, written_ms, index))
        index += count
        offset = start + length
    scan.valid_end = offset
    return scan


class SegmentFiles:
    """The queue's file operations; tests subclass it to fail or stop at a chosen call."""

    def create(self, path: Path) -> int:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, FILE_MODE)
        try:
            write_all(fd, HEADER)
            os.fsync(fd)
        except OSError:
            # A full disk may refuse even the header: leave no half-made file for the retry to trip over.
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        fsync_directory(path.parent)
        return fd

    def append(self, fd: int, data: bytes) -> None:
        write_all(fd, data)

    def sync(self, fd: int) -> None:
        os.fsync(fd)

    def truncate(self, fd: int, size: int) -> None:
        os.ftruncate(fd, size)

    def close(self, fd: int) -> None:
        os.close(fd)

    def read(self, path: Path, offset: int, end: int) -> bytes:
        with open(path, "rb") as file:
            file.seek(offset)
            return file.read(end - offset)

    def delete(self, path: Path) -> None:
        path.unlink(missing_ok=True)

    def cut(self, path: Path, size: int) -> None:
        """Cuts a damaged tail off a segment found at start."""
        with open(path, "r+b") as file:
            file.truncate(size)
            file.flush()
            os.fsync(file.fileno())


def read_frame(files: SegmentFiles, path: Path, frame: FrameInfo) -> list[Event]:
    data = files.read(path, frame.offset + FRAME_HEAD.size, frame.end)
    return decode_payload(data)[0]
