"""Which events of the disk queue the output has acknowledged, and where a restart resumes reading.

Events leave the queue for the output in the order they lie on disk, each
with a read sequence number. The output may acknowledge them out of order
(two workers), so, as the input acker does, only the acknowledged prefix
counts: the position of its end — segment id and event index in that
segment — is what `state.json` keeps, and what is sent again after a crash
starts there. Writing that file lags the acknowledgements by up to a second;
a crash in between re-sends those events (at least once), it never skips one.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from forwarder.disk import write_atomically

STATE_FILE = "state.json"


@dataclass
class Position:
    """The first event not acknowledged by the output: index `index` of segment `segment`."""

    segment: int
    index: int


def load_position(directory: Path) -> Position | None:
    """The saved position, None when there is none (a new queue) or it cannot be read (then all is re-sent)."""
    try:
        saved = json.loads((directory / STATE_FILE).read_text())
        return Position(int(saved["segment"]), int(saved["index"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save_position(directory: Path, position: Position) -> None:
    write_atomically(directory / STATE_FILE, json.dumps({"segment": position.segment,
                                                         "index": position.index}).encode())


@dataclass
class ReadFrame:
    """A frame's events as handed to the output: sequence numbers first_seq… and where they lie on disk."""

    first_seq: int
    count: int
    segment: int
    first_index: int
    written_ms: int


class ReadAcks:
    """The `acker` of events read from the disk queue: `done_many` is called by `Batch.ack_through`."""

    def __init__(self, position: Position, on_advance: Callable[[Position, int], None]) -> None:
        self._lock = threading.Lock()
        self._frames: deque[ReadFrame] = deque()
        self._done: deque[bool] = deque()
        self._base = 0
        self._next_seq = 0
        self.position = position
        # Called with the new position and how many events it moved over; positions only grow, but two
        # acknowledging threads may deliver them out of order, so the callback must not assume they do.
        self._on_advance = on_advance

    def add_frame(self, count: int, segment: int, first_index: int, written_ms: int) -> int:
        """Registers a frame's events in read order; returns the first one's sequence number."""
        with self._lock:
            first = self._next_seq
            self._frames.append(ReadFrame(first, count, segment, first_index, written_ms))
            self._done.extend([False] * count)
            self._next_seq += count
            return first

    def done_many(self, sequences: Iterable[int]) -> None:
        with self._lock:
            done = self._done
            for sequence in sequences:
                index = sequence - self._base
                if 0 <= index < len(done):
                    done[index] = True
            moved = 0
            while done and done[0]:
                done.popleft()
                moved += 1
            if not moved:
                return
            self._base += moved
            frames = self._frames
            finished = None
            while frames and frames[0].first_seq + frames[0].count <= self._base:
                finished = frames.popleft()
            if frames and frames[0].first_seq < self._base:
                head = frames[0]
                self.position = Position(head.segment, head.first_index + self._base - head.first_seq)
            elif frames:
                self.position = Position(frames[0].segment, frames[0].first_index)
            elif finished is not None:
                self.position = Position(finished.segment, finished.first_index + finished.count)
            position = self.position
        # Outside the lock: the queue takes its own lock in there, and holds it while it calls add_frame.
        self._on_advance(position, moved)

    def oldest_written_ms(self) -> int | None:
        with self._lock:
            return self._frames[0].written_ms if self._frames else None
