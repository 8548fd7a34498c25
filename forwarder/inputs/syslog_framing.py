"""Splitting a syslog TCP stream into messages (RFC 6587), detecting the framing per frame.

Senders mix octet counting (`LEN SP MSG`) and delimiter-terminated frames, even
on one connection (relays forwarding for several devices), so the framing is
decided again for every frame: a leading digit means octet counting, anything
else runs to the next delimiter. An oversized delimited frame is cut at the
size limit and the rest of it is skipped up to its delimiter.

A count larger than the size limit is not trusted: a sender that really uses
octet counting stays under the limit it was configured for, while a stray
`9999999999 ` in front of newline-framed lines would otherwise swallow
gigabytes of valid messages. Such a frame is read as a delimited frame that
ends at the next delimiter or where the count says, whichever comes first
(`ignored_counts` tells the caller to count and report it).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from typing import NamedTuple

# Longest MSG-LEN we read as a count; a longer digit run is a delimited frame that starts with digits.
_MAX_COUNT_DIGITS = 10
_BETWEEN_FRAMES = b"\r\n\0"
_DIGITS = b"0123456789"


class Frame(NamedTuple):
    payload: bytes
    # True when the frame was longer than the size limit (or cut off by the end of the stream).
    truncated: bool


class FrameBlock:
    """Whole frames that lay one after another in a read: the bytes that hold them and where each lies.

    What a busy sender's read becomes. It goes to the pipeline as one sequence of payloads: it pickles as
    two byte strings (a list of 800 frames pickles frame by frame), and the frames are cut out of it only
    where the events are built (a worker process), so the reading thread copies each byte once.
    """

    __slots__ = ("data", "bounds")

    def __init__(self, data: bytes, bounds: bytes) -> None:
        self.data = data
        # array("Q") bytes: the start and end offset of each frame in `data`.
        self.bounds = bounds

    def __len__(self) -> int:
        return len(self.bounds) // (2 * _BOUND_SIZE)

    def __iter__(self) -> Iterator[bytes]:
        bounds = array("Q")
        bounds.frombytes(self.bounds)
        data = self.data
        return (data[bounds[index]:bounds[index + 1]] for index in range(0, len(bounds), 2))

    def __reduce__(self) -> tuple[type[FrameBlock], tuple[bytes, bytes]]:
        return FrameBlock, (self.data, self.bounds)


_BOUND_SIZE = array("Q").itemsize


def _whole_frame(payload: bytes) -> Frame:
    """Frame(payload, False) without the NamedTuple's Python-level __new__ (a third of a frame's cost)."""
    return tuple.__new__(Frame, (payload, False))


class SyslogFrameSplitter:
    """Feed it received bytes; it returns every frame completed so far, in order.

    NUL also ends a delimited frame: some senders use it as the trailer instead
    of the delimiter (RFC 6587 §3.4.2).
    """

    def __init__(self, max_message_size: int, delimiter: bytes = b"\n") -> None:
        if max_message_size < 1:
            raise ValueError("max_message_size must be at least 1")
        if not delimiter:
            raise ValueError("the line delimiter must not be empty")
        self.max_message_size = max_message_size
        self.delimiter = delimiter
        # Octet counts larger than max_message_size read as delimited frames, and the last of them.
        self.ignored_counts = 0
        self.last_ignored_count = 0
        self._buffer = bytearray()
        # Octet counting (a count within the limit): bytes of the current frame still to read.
        self._counted = False
        self._remaining = 0
        # A delimited frame that announced a count over the limit also ends after that many bytes.
        self._count_bound: int | None = None
        # After an oversized frame: discard up to the next delimiter, or `_skip_left` bytes when not None.
        self._skipping = False
        self._skip_left: int | None = None
        # How far the buffer has been searched for a delimiter already.
        self._scanned = 0
        # The buffer holds only the start of a counted frame, its count not read yet (`feed_blocks`).
        self._waiting = False

    @property
    def buffered_bytes(self) -> int:
        """Bytes of an unfinished frame held in memory."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Frame]:
        frames: list[Frame] = []
        for item in self.feed_blocks(data):
            if type(item) is FrameBlock:
                frames.extend(_whole_frame(payload) for payload in item)
            else:
                frames.append(item)  # type: ignore[arg-type]
        return frames

    def feed_blocks(self, data: bytes) -> list[FrameBlock | Frame]:
        """`feed`, with each run of whole frames that lie one after another as one FrameBlock."""
        self._buffer += data
        items: list[FrameBlock | Frame] = []
        while True:
            if not (self._counted or self._skipping or self._count_bound is not None):
                block, self._waiting = self._take_whole_frames()
                if block is not None:
                    items.append(block)
                if self._waiting:
                    return items
            frame = self._next_frame()
            if frame is None:
                return items
            items.append(frame)

    def _take_whole_frames(self) -> tuple[FrameBlock | None, bool]:
        """The frames that lie whole at the start of the buffer, up to the first that needs `_next_frame`, and
        whether the rest is only the start of a counted frame (nothing for `_next_frame` to do yet).

        The common case of a busy sender, in one pass over the buffer and one deletion at the end instead
        of one per frame: what this leaves (an oversized frame, a count over the limit, a NUL trailer, a
        delimited frame not complete yet) is read by `_next_frame` exactly as before.
        """
        buffer = self._buffer
        size = len(buffer)
        limit = self.max_message_size
        delimiter = self.delimiter
        bounds = array("Q")
        add = bounds.append
        position = 0
        waiting = False
        while position < size:
            first = buffer[position]
            if first in _BETWEEN_FRAMES:
                position += 1
                continue
            if first in _DIGITS:
                space = buffer.find(b" ", position, position + _MAX_COUNT_DIGITS + 1)
                if space < 0 and size - position <= _MAX_COUNT_DIGITS:
                    # Digits so far: a count, or the start of a line, decided by the next bytes.
                    waiting = buffer[position:].isdigit()
                    break
                if space >= 0 and first != 0x30 and buffer[position:space].isdigit():
                    count = int(buffer[position:space])
                    end = space + 1 + count
                    if count > limit:
                        break
                    if end > size:
                        waiting = True
                        break
                    add(space + 1)
                    add(end)
                    position = end
                    continue
            end = buffer.find(delimiter, position)
            if end < 0 or buffer.find(b"\0", position, end) >= 0:
                break
            stop = end - 1 if end > position and buffer[end - 1] == 0x0D else end
            if stop - position > limit:
                break
            add(position)
            add(stop)
            position = end + len(delimiter)
        block = FrameBlock(bytes(buffer[:position]), bounds.tobytes()) if bounds else None
        if position:
            del buffer[:position]
            self._scanned = 0
        return block, waiting

    def finish(self) -> list[Frame]:
        """The stream ended: a frame left incomplete is returned as it is (marked truncated if it announced more)."""
        frames = []
        if self._waiting:
            # The start of a counted frame `feed_blocks` left for more bytes: its count is read now, as
            # `feed` would have, so that what arrived of it goes on without the count.
            self._waiting = False
            frame = self._next_frame()
            if frame is not None:
                frames.append(frame)
        if self._counted:
            frames.append(Frame(bytes(self._buffer), True))
        elif self._count_bound is not None and not self._skipping:
            if self._buffer:
                frames.append(Frame(bytes(self._buffer), True))
        elif not self._skipping:
            rest = bytes(self._buffer).strip(_BETWEEN_FRAMES)
            if rest:
                frames.append(Frame(rest[: self.max_message_size], len(rest) > self.max_message_size))
        self._buffer = bytearray()
        self._counted = self._skipping = False
        self._count_bound = self._skip_left = None
        self._remaining = self._scanned = 0
        self._waiting = False
        return frames

    def _next_frame(self) -> Frame | None:
        if self._counted:
            return self._counted_frame()
        if self._skipping and not self._skip():
            return None
        if self._count_bound is None:
            self._drop_separators()
            if not self._buffer:
                return None
            if self._buffer[0] in _DIGITS:
                decided = self._read_count()
                if decided is None:
                    return None
                if decided:
                    return self._counted_frame()
        return self._delimited_frame()

    def _drop_separators(self) -> None:
        start = 0
        while start < len(self._buffer) and self._buffer[start] in _BETWEEN_FRAMES:
            start += 1
        if start:
            del self._buffer[:start]
            self._scanned = max(0, self._scanned - start)

    def _read_count(self) -> bool | None:
        """True: a count within the limit was read; False: the frame is delimited; None: need more bytes."""
        buffer = self._buffer
        digits = buffer.find(b" ", 0, _MAX_COUNT_DIGITS + 1)
        if digits < 0:
            # No space yet: only a run of digits still short enough to be a count may become one.
            return None if len(buffer) <= _MAX_COUNT_DIGITS and buffer.isdigit() else False
        if not buffer[:digits].isdigit() or buffer[0] == 0x30:
            return False
        count = int(buffer[:digits])
        del self._buffer[: digits + 1]
        self._scanned = 0
        if count > self.max_message_size:
            self.ignored_counts += 1
            self.last_ignored_count = count
            self._count_bound = count
            return False
        self._counted = True
        self._remaining = count
        return True

    def _counted_frame(self) -> Frame | None:
        if len(self._buffer) < self._remaining:
            return None
        payload = bytes(self._buffer[: self._remaining])
        del self._buffer[: self._remaining]
        self._counted = False
        return Frame(payload, False)

    def _delimited_frame(self) -> Frame | None:
        end, trailer = self._find_end()
        if end < 0 or (self._count_bound is not None and end >= self._count_bound):
            if len(self._buffer) <= self.max_message_size:
                return None
            payload = bytes(self._buffer[: self.max_message_size])
            del self._buffer[: self.max_message_size]
            self._scanned = 0
            self._skipping = True
            if self._count_bound is not None:
                self._skip_left = self._count_bound - self.max_message_size
            self._count_bound = None
            return Frame(payload, True)
        payload = bytes(self._buffer[:end])
        del self._buffer[: end + trailer]
        self._scanned = 0
        self._count_bound = None
        if payload.endswith(b"\r"):
            payload = payload[:-1]
        if len(payload) > self.max_message_size:
            return Frame(payload[: self.max_message_size], True)
        return Frame(payload, False)

    def _skip(self) -> bool:
        """Drops the rest of an oversized frame; True once its delimiter (or its announced end) was reached."""
        end, trailer = self._find_end()
        left = self._skip_left
        if end >= 0 and (left is None or end < left):
            del self._buffer[: end + trailer]
        elif left is not None and len(self._buffer) >= left:
            del self._buffer[:left]
        else:
            if left is not None:
                self._skip_left = left - len(self._buffer)
            self._buffer.clear()
            self._scanned = 0
            return False
        self._scanned = 0
        self._skipping = False
        self._skip_left = None
        return True

    def _find_end(self) -> tuple[int, int]:
        """Position and length of the first delimiter or NUL, searching only bytes not searched before."""
        start = max(0, self._scanned - len(self.delimiter) + 1)
        end = self._buffer.find(self.delimiter, start)
        nul = self._buffer.find(b"\0", start, end if end >= 0 else len(self._buffer))
        if nul >= 0:
            return nul, 1
        if end >= 0:
            return end, len(self.delimiter)
        self._scanned = len(self._buffer)
        return -1, 0
