"""Cutting one S3 object's bytes into what the aws-s3 reader hands on: gunzip, lines, chunks.

Stream-level helpers of aws_s3_objects.ObjectReader, apart from the reader so
that each stays readable: `decompressed` (gzip by magic bytes, concatenated
members, corrupt or truncated streams as `ObjectFailed`), `line_blocks` (one
split per block read, lines over `max_bytes` as `ObjectFailed` after the lines
before them) and `chunked` (records into chunks of `CHUNK_EVENTS`, the
cursor's granularity).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Any

READ_CHUNK = 256 * 1024
# Records per chunk handed to the pipeline: a crash replays at most this many acknowledged lines of an object.
CHUNK_EVENTS = 500
GZIP_MAGIC = b"\x1f\x8b"


class ObjectFailed(Exception):
    """The object itself cannot be read (`counter` names the /stats counter); it is recorded as failed."""

    def __init__(self, counter: str, reason: str) -> None:
        super().__init__(reason)
        self.counter = counter
        self.reason = reason


def read_blocks(body: Any) -> Iterator[bytes]:
    while chunk := body.read(READ_CHUNK):
        yield chunk


def decompressed(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The object's bytes, gunzipped when they start with gzip's magic bytes (concatenated members too)."""
    first = next(chunks, b"")
    if not first:
        raise ObjectFailed("objects_empty", "is empty (0 bytes)")
    if not first.startswith(GZIP_MAGIC):
        yield first
        yield from chunks
        return
    decompressor = zlib.decompressobj(wbits=31)
    member_open = False
    for data in _prepend(first, chunks):
        while data:
            member_open = True
            try:
                out = decompressor.decompress(data, READ_CHUNK * 4)
            except zlib.error as error:
                raise ObjectFailed("objects_invalid_gzip", f"is not a valid gzip stream ({error})") from None
            if out:
                yield out
            if decompressor.eof:
                data = decompressor.unused_data
                decompressor = zlib.decompressobj(wbits=31)
                member_open = False
                if not data.strip(b"\0"):
                    break
            else:
                data = decompressor.unconsumed_tail
    if member_open:
        raise ObjectFailed("objects_invalid_gzip", "is a truncated gzip stream (it ends before the gzip trailer)")


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def line_blocks(stream: Iterator[bytes], start_offset: int,
                 max_bytes: int) -> Iterator[tuple[int, list[bytes], bool]]:
    """(offset of the first line, lines without `\\n`, whether the last one ended with `\\n`), one per block read.

    One split per block instead of one search per line. Lines keep a `\\r` before the `\\n` (the caller
    strips it after counting it into the offsets). A line over `max_bytes` fails the object after the
    lines before it are handed on.
    """
    offset = 0
    pending = b""
    for block in stream:
        if offset < start_offset:
            cut = min(len(block), start_offset - offset)
            block = block[cut:]
            offset += cut
            if not block:
                continue
        data = pending + block if pending else block
        last_newline = data.rfind(b"\n")
        if last_newline < 0:
            pending = data
        else:
            lines = data[:last_newline].split(b"\n")
            pending = data[last_newline + 1:]
            yield from _checked(offset, lines, True, max_bytes)
            offset += last_newline + 1
        if len(pending) > max_bytes:
            raise too_long(offset, max_bytes)
    if pending:
        yield from _checked(offset, [pending], False, max_bytes)


def _checked(offset: int, lines: list[bytes], terminated: bool,
             max_bytes: int) -> Iterator[tuple[int, list[bytes], bool]]:
    if max(map(len, lines)) <= max_bytes:
        yield offset, lines, terminated
        return
    for index, line in enumerate(lines):
        if len(line) - line.endswith(b"\r") > max_bytes:
            if index:
                yield offset, lines[:index], True
            raise too_long(offset + sum(len(before) + 1 for before in lines[:index]), max_bytes)
    yield offset, lines, terminated


def too_long(offset: int, max_bytes: int) -> ObjectFailed:
    return ObjectFailed("objects_line_too_long", f"has a line longer than max_bytes ({max_bytes} bytes) at offset "
                        f"{offset}; raise max_bytes for these objects")


def chunked(records: Iterator[tuple[Any, int, int]], start_offset: int) -> Iterator[tuple[list[Any], int]]:
    """Chunks of up to CHUNK_EVENTS payloads from (payload, offset, end) records, each with its last record's end."""
    chunk: list[Any] = []
    end = start_offset
    try:
        for payload, offset, record_end in records:
            if offset < start_offset:
                continue
            chunk.append(payload)
            end = record_end
            if len(chunk) >= CHUNK_EVENTS:
                yield chunk, end
                chunk = []
    except ObjectFailed:
        # The records before the problem are good, and a failed object is not read again: send them first.
        if chunk:
            yield chunk, end
        raise
    if chunk:
        yield chunk, end


def valid_utf8(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
