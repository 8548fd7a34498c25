"""Splitting a syslog TCP stream into messages (RFC 6587), detecting the framing per frame.

Senders mix octet counting (`LEN SP MSG`) and delimiter-terminated frames, even
on one connection (relays forwarding for several devices), so the framing is
decided again for every frame: a leading digit means octet counting, anything
else runs to the next delimiter. An oversized frame is cut at the size limit
and the rest of it is skipped by its announced length or up to its delimiter,
so the content of a huge message is never mistaken for frames.
"""

from __future__ import annotations

from typing import NamedTuple

# Longest MSG-LEN we read as a count; a longer digit run is a delimited frame that starts with digits.
_MAX_COUNT_DIGITS = 10
_BETWEEN_FRAMES = b"\r\n\0"
_DIGITS = b"0123456789"


class Frame(NamedTuple):
    payload: bytes
    # True when the frame was longer than the size limit (or cut off by the end of the stream).
    truncated: bool


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
        self._buffer = bytearray()
        # Octet counting: bytes of the current frame still to read (payload or skipped excess).
        self._remaining = 0
        self._counted = False
        self._truncated = False
        # Delimited framing after an oversized frame: discard up to the next delimiter.
        self._skipping_line = False
        # How far the buffer has been searched for a delimiter already.
        self._scanned = 0

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        frames: list[Frame] = []
        while True:
            frame = self._next_frame()
            if frame is None:
                return frames
            frames.append(frame)

    def finish(self) -> list[Frame]:
        """The stream ended: a frame left incomplete is returned as it is, marked truncated."""
        frames = []
        if self._counted and self._remaining and not self._truncated:
            frames.append(Frame(bytes(self._buffer), True))
        elif not self._counted and not self._skipping_line:
            rest = bytes(self._buffer).strip(_BETWEEN_FRAMES)
            if rest:
                frames.append(Frame(rest[: self.max_message_size], len(rest) > self.max_message_size))
        self._buffer.clear()
        self._counted = self._skipping_line = self._truncated = False
        self._remaining = self._scanned = 0
        return frames

    def _next_frame(self) -> Frame | None:
        if self._counted:
            return self._counted_frame()
        if self._skipping_line and not self._skip_line():
            return None
        start = 0
        while start < len(self._buffer) and self._buffer[start] in _BETWEEN_FRAMES:
            start += 1
        if start:
            del self._buffer[:start]
            self._scanned = max(0, self._scanned - start)
        if not self._buffer:
            return None
        if self._buffer[0] in _DIGITS:
            decided = self._start_counted_frame()
            if decided is None:
                return None
            if decided:
                return self._counted_frame()
        return self._delimited_frame()

    def _start_counted_frame(self) -> bool | None:
        """True: an octet count was read; False: the frame is delimited; None: need more bytes."""
        digits = 0
        length = len(self._buffer)
        while digits < length and digits <= _MAX_COUNT_DIGITS and self._buffer[digits] in _DIGITS:
            digits += 1
        if digits == length and digits <= _MAX_COUNT_DIGITS:
            return None
        if digits > _MAX_COUNT_DIGITS or self._buffer[digits] != 0x20 or self._buffer[0] == 0x30:
            return False
        self._remaining = int(self._buffer[:digits])
        del self._buffer[: digits + 1]
        self._counted = True
        self._truncated = False
        self._scanned = 0
        return True

    def _counted_frame(self) -> Frame | None:
        if self._truncated:
            skipped = min(self._remaining, len(self._buffer))
            del self._buffer[:skipped]
            self._remaining -= skipped
            if self._remaining:
                return None
            self._counted = False
            return self._next_frame()
        wanted = min(self._remaining, self.max_message_size)
        if len(self._buffer) < wanted:
            return None
        payload = bytes(self._buffer[:wanted])
        del self._buffer[:wanted]
        self._remaining -= wanted
        if self._remaining:
            self._truncated = True
            return Frame(payload, True)
        self._counted = False
        return Frame(payload, False)

    def _delimited_frame(self) -> Frame | None:
        end, trailer = self._find_end()
        if end < 0:
            if len(self._buffer) <= self.max_message_size:
                return None
            payload = bytes(self._buffer[: self.max_message_size])
            del self._buffer[: self.max_message_size]
            self._scanned = 0
            self._skipping_line = True
            return Frame(payload, True)
        payload = bytes(self._buffer[:end])
        del self._buffer[: end + trailer]
        self._scanned = 0
        if payload.endswith(b"\r"):
            payload = payload[:-1]
        if len(payload) > self.max_message_size:
            return Frame(payload[: self.max_message_size], True)
        return Frame(payload, False)

    def _skip_line(self) -> bool:
        """Drops the rest of an oversized delimited frame; True once its delimiter was found."""
        end, trailer = self._find_end()
        if end < 0:
            self._buffer.clear()
            self._scanned = 0
            return False
        del self._buffer[: end + trailer]
        self._scanned = 0
        self._skipping_line = False
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
