"""The disk queue's segment being written: created, appended to, fsynced, rolled over, cut back.

Only the disk queue's writer thread calls `SegmentAppender`; what the rest of the
queue must know about segments (their sizes and event counts, which ones are
closed) changes under the queue's lock, through `Segment` objects the queue
keeps and the two callbacks it gives.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from forwarder.pipeline.disk_segments import HEADER, FrameInfo, SegmentFiles, segment_name


@dataclass
class Segment:
    id: int
    size: int
    events: int = 0
    closed: bool = False


class SegmentAppender:
    def __init__(self, files: SegmentFiles, directory: Path, segment_size: int, next_id: int, lock: threading.Lock,
                 opened: Callable[[Segment], None], closed: Callable[[Segment, int], None]) -> None:
        """`opened(segment)` when a segment file is created, `closed(segment, size)` when it is done with:
        at `size`, its last good frame, when a failed write could not be cut back off."""
        self._files = files
        self._directory = directory
        self._segment_size = segment_size
        self._next_id = next_id
        self._lock = lock
        self._opened = opened
        self._closed = closed
        self._fd: int | None = None
        self._current: Segment | None = None

    def append(self, frame: bytes, count: int) -> tuple[Segment, FrameInfo]:
        """Appends and fsyncs one frame of `count` events; on OSError the segment holds no part of it."""
        segment = self._current
        if segment is None or segment.size >= self._segment_size:
            segment = self._roll_over()
        start = segment.size
        try:
            self._files.append(self._fd, frame)
            self._files.sync(self._fd)
        except OSError:
            try:
                self._files.truncate(self._fd, start)
            except OSError:
                # The tail cannot be cut now: close this segment at its last good frame (the reader and the
                # start-up check stop there) and write the next frame to a new one.
                self._close_current(size=start)
            raise
        with self._lock:
            info = FrameInfo(start, start + len(frame), count, int(time.time() * 1000), segment.events)
            segment.size += len(frame)
            segment.events += count
        return segment, info

    def close_file(self) -> None:
        """The writer ends: the file is closed, the segment stays open (a restart goes on appending to it)."""
        if self._fd is not None:
            self._files.close(self._fd)
            self._fd = None

    def _roll_over(self) -> Segment:
        if self._current is not None:
            self._close_current(size=self._current.size)
        segment_id = self._next_id
        fd = self._files.create(self._directory / segment_name(segment_id))
        self._next_id += 1
        segment = Segment(segment_id, size=len(HEADER))
        self._opened(segment)
        self._fd, self._current = fd, segment
        return segment

    def _close_current(self, size: int) -> None:
        segment = self._current
        if self._fd is not None:
            with contextlib.suppress(OSError):
                self._files.close(self._fd)
        self._fd, self._current = None, None
        if segment is not None:
            self._closed(segment, size)
