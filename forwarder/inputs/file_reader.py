"""One open log file: its identity, a fingerprint of its head, and the lines read from it.

A file is known by device and inode, not by path, so a renamed file keeps its
place. Because an inode number is reused once a file is deleted, and
copytruncate rewrites a file in place, the first bytes of the file are hashed
too: when they change under a known identity, the content is a new one and is
read from the start. Lines are cut at `\\n` and never held beyond the configured
maximum: the first part of an over-long line is handed over at once and the
rest of it skipped, so one runaway line cannot exhaust memory.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from itertools import accumulate, islice, repeat
from typing import Any

from forwarder.inputs.line_message import TRUNCATED_FLAG, Message

FINGERPRINT_BYTES = 1024
READ_CHUNK = 64 * 1024
# Above this average line length a chunk is cut with `find` rather than `split` (see `_cut`).
LONG_LINE_BYTES = 320
_PLUS_ONE = (1).__add__

# One line as read: (bytes without the newline, cut at the limit; offset; end, right after its newline or
# the bytes consumed of an over-long line; truncated; the rest of the line is being skipped after `end`).
RawLine = tuple[bytes, int, int, bool, bool]


def file_identity(stat: os.stat_result) -> str:
    return f"{stat.st_dev}-{stat.st_ino}"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def decode_line(data: bytes, offset: int, end: int, truncated: bool, skip_to_newline: bool = False) -> Message:
    """UTF-8 with invalid bytes replaced (NULs kept); a byte order mark opening the file is dropped."""
    text = data.decode("utf-8", "replace")
    if offset == 0 and text.startswith("\ufeff"):
        text = text[1:]
    return Message(text, offset, end, len(data), skip_to_newline, flags=[TRUNCATED_FLAG] if truncated else [])


def _cut(chunk: bytes) -> list[bytes]:
    """`chunk.split(b"\\n")` for long lines: `find` is a memchr, while `split` on one byte compares byte by
    byte (64 KiB of 1.6 KB lines: 14 against 24-53 µs; of 57-byte lines, 188 against 41 µs)."""
    parts = []
    append = parts.append
    find = chunk.find
    start = 0
    while (newline := find(b"\n", start)) >= 0:
        append(chunk[start:newline])
        start = newline + 1
    append(chunk[start:])
    return parts


@dataclass
class FilePosition:
    """Where reading resumes in one file, and what the file's head looked like then."""

    offset: int = 0
    # The bytes at `offset` continue an over-long line that was already forwarded truncated.
    skip_to_newline: bool = False
    fingerprint: str = ""
    fingerprint_size: int = 0
    # Counts rewrites of the same inode, so event ids of new content differ from the old.
    generation: int = 0

    def to_cursor(self, path: str) -> dict[str, Any]:
        value: dict[str, Any] = {
            "offset": self.offset,
            "path": path,
            "fingerprint": self.fingerprint,
            "fingerprint_size": self.fingerprint_size,
        }
        if self.skip_to_newline:
            value["skip_to_newline"] = True
        if self.generation:
            value["generation"] = self.generation
        return value

    @classmethod
    def from_cursor(cls, value: Any) -> FilePosition:
        """Raises ValueError when `value` is not a cursor this input wrote."""
        if not isinstance(value, dict):
            raise ValueError(f"expected an object, got {type(value).__name__}")
        position = cls(
            offset=value.get("offset", 0),
            skip_to_newline=value.get("skip_to_newline", False),
            fingerprint=value.get("fingerprint", ""),
            fingerprint_size=value.get("fingerprint_size", 0),
            generation=value.get("generation", 0),
        )
        numbers = (position.offset, position.fingerprint_size, position.generation)
        if any(isinstance(n, bool) or not isinstance(n, int) or n < 0 for n in numbers):
            raise ValueError("offset, fingerprint_size and generation must be non-negative integers")
        if not isinstance(position.fingerprint, str) or not isinstance(position.skip_to_newline, bool):
            raise ValueError("fingerprint must be a string and skip_to_newline a boolean")
        return position


class FileRewritten(Exception):
    """The file under an open handle shrank or its first bytes changed (copytruncate, rewrite)."""


class IdentityChanged(Exception):
    """The path no longer leads to the expected file (it was rotated between scan and open)."""


class FileReader:
    def __init__(self, fd: int, position: FilePosition, max_line_bytes: int) -> None:
        self._max_line_bytes = max_line_bytes
        self._fd = fd
        self._fingerprint = position.fingerprint
        self._fingerprint_size = position.fingerprint_size
        self._generation = position.generation
        self._line_start = position.offset
        self._read_pos = position.offset
        self._skipping = position.skip_to_newline
        self._buffer = bytearray()
        # The last chunk's lines were long: cut the next one with `_cut`.
        self._long_lines = False
        self.links = 1
        self.at_eof = False
        # Why the given position was not used, when the reader started over.
        self.restarted: str | None = None

    @classmethod
    def open(cls, path: str, identity: str, position: FilePosition, max_line_bytes: int) -> FileReader:
        """Opens `path` at `position`, or at 0 when the file shrank below it or its head changed."""
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            stat = os.fstat(fd)
            if file_identity(stat) != identity:
                raise IdentityChanged(path)
            reason = None
            if stat.st_size < position.offset:
                reason = f"it is {stat.st_size} bytes, shorter than the saved offset {position.offset}"
            elif position.fingerprint_size and not cls._head_matches(fd, position):
                reason = "its first bytes differ from the ones seen before"
        except BaseException:
            os.close(fd)
            raise
        reader = cls(fd, position, max_line_bytes)
        if reason is not None:
            reader.restart()
            reader.restarted = reason
        return reader

    @staticmethod
    def _head_matches(fd: int, position: FilePosition) -> bool:
        head = os.pread(fd, position.fingerprint_size, 0)
        return len(head) == position.fingerprint_size and _digest(head) == position.fingerprint

    @property
    def position(self) -> FilePosition:
        """Where a reopen resumes: after the last complete line handed out."""
        return FilePosition(
            self._line_start, self._skipping, self._fingerprint, self._fingerprint_size, self._generation
        )

    @property
    def bytes_read(self) -> int:
        return self._read_pos

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    @property
    def fingerprint_size(self) -> int:
        return self._fingerprint_size

    @property
    def generation(self) -> int:
        return self._generation

    def cursor(self, identity: str, path: str, end: int, skip_to_newline: bool) -> dict[str, Any]:
        """`{identity: FilePosition(end, …).to_cursor(path)}` with this file's fingerprint, made as one literal:
        the input makes one per line, so that a crash replays only the lines not acknowledged."""
        value: dict[str, Any] = {"offset": end, "path": path, "fingerprint": self._fingerprint,
                                 "fingerprint_size": self._fingerprint_size}
        if skip_to_newline:
            value["skip_to_newline"] = True
        if self._generation:
            value["generation"] = self._generation
        return {identity: value}

    def restart(self) -> None:
        """Reads the file again from its first byte, as new content."""
        self._line_start = self._read_pos = 0
        self._skipping = False
        self._buffer.clear()
        self._fingerprint, self._fingerprint_size = "", 0
        self._generation += 1

    def read_lines(self, budget: int) -> list[Message]:
        """Complete lines among the next `budget` bytes, decoded; an unfinished last line waits for its newline.

        Raises FileRewritten when the file shrank below what was read or its head changed.
        """
        return [decode_line(*line) for line in self.read_raw_lines(budget)]

    def read_raw_lines(self, budget: int) -> list[RawLine]:
        """`read_lines` before decoding: for an input that hands undecoded lines to a worker process."""
        stat = os.fstat(self._fd)
        self.links = stat.st_nlink
        size = stat.st_size
        if size < self._read_pos:
            raise FileRewritten(f"it shrank to {size} bytes, below the {self._read_pos} bytes already read")
        if size == self._read_pos:
            self.at_eof = True
            return []
        self._check_head(size)
        lines: list[RawLine] = []
        want = min(budget, size - self._read_pos)
        while want > 0:
            chunk = os.pread(self._fd, min(READ_CHUNK, want), self._read_pos)
            if not chunk:
                break
            self._read_pos += len(chunk)
            want -= len(chunk)
            self._split(chunk, lines)
        self.at_eof = self._read_pos >= size
        return lines

    def _check_head(self, size: int) -> None:
        if self._fingerprint_size >= FINGERPRINT_BYTES:
            head = os.pread(self._fd, self._fingerprint_size, 0)
            if _digest(head) != self._fingerprint:
                raise FileRewritten("its first bytes changed")
            return
        head = os.pread(self._fd, min(size, FINGERPRINT_BYTES), 0)
        if self._fingerprint_size and _digest(head[: self._fingerprint_size]) != self._fingerprint:
            raise FileRewritten("its first bytes changed")
        self._fingerprint, self._fingerprint_size = _digest(head), len(head)

    def _split(self, chunk: bytes, lines: list[RawLine]) -> None:
        """Cuts a chunk into lines and numbers their bytes in C (`accumulate`, `zip`); only a chunk with a
        carriage return or an over-long line is walked line by line."""
        if self._skipping:
            newline = chunk.find(b"\n")
            if newline < 0:
                self._line_start += len(chunk)
                return
            self._line_start += newline + 1
            chunk = chunk[newline + 1:]
            self._skipping = False
        buffer = self._buffer
        limit = self._max_line_bytes
        if b"\n" in chunk:
            parts = _cut(chunk) if self._long_lines else chunk.split(b"\n")
            self._long_lines = len(chunk) > LONG_LINE_BYTES * len(parts)
            if buffer:
                # The line the previous chunk ended in, without its newline yet.
                parts[0] = bytes(buffer) + parts[0]
            buffer = self._buffer = bytearray(parts.pop())
            # Where each line starts, and after the last one where the next starts: its length plus its newline.
            starts = list(accumulate(map(_PLUS_ONE, map(len, parts)), initial=self._line_start))
            self._line_start = starts[-1]
            # (A one-byte search is a memchr; `b"\r\n" in chunk` cost 50 µs a chunk.)
            if b"\r" in chunk or parts[0].endswith(b"\r") or max(map(len, parts)) > limit:
                self._cut_one_by_one(parts, starts, lines)
            else:
                lines.extend(zip(parts, starts, islice(starts, 1, None), repeat(False), repeat(False)))
        else:
            buffer += chunk
        # One byte of slack: a line of exactly `limit` bytes may still end in "\r\n".
        if len(buffer) > limit + 1:
            consumed = len(buffer)
            lines.append((bytes(buffer[:limit]), self._line_start, self._line_start + consumed, True, True))
            self._line_start += consumed
            buffer.clear()
            self._skipping = True

    def _cut_one_by_one(self, parts: list[bytes], starts: list[int], lines: list[RawLine]) -> None:
        limit = self._max_line_bytes
        append = lines.append
        for part, offset, end in zip(parts, starts, islice(starts, 1, None), strict=False):
            if part.endswith(b"\r"):
                part = part[:-1]
            if len(part) > limit:
                append((part[:limit], offset, end, True, False))
            else:
                append((part, offset, end, False, False))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
