"""Turns acknowledgements into committed cursors, in publish order.

An input's events may be acknowledged out of order (two output workers, a
partial window, an event dropped by a processor). A cursor attached to event N
is committed only once N and every event that input published before N are
done, which is what makes a crash at any moment replay rather than lose.
This is the only writer of committed cursors.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

_PENDING, _DONE, _ABANDONED = 0, 1, 2

# Called with {registry key: value or None}, in commit order.
CommitFunction = Callable[[dict[str, Any]], None]
# Called with {source: value or None} after each commit, under the acker's lock: it must only hand off, never block.
CommitListener = Callable[[dict[str, Any]], None]


class InputAcker:
    def __init__(self, commit: CommitFunction, key_prefix: str) -> None:
        self._commit = commit
        self._key_prefix = key_prefix
        self._lock = threading.Lock()
        self._all_done = threading.Condition(self._lock)
        # Entries [state, cursor] for sequence numbers _base, _base + 1, ...
        self._pending: deque[list[Any]] = deque()
        self._base = 0
        # Tracked events neither acknowledged nor abandoned yet.
        self._outstanding = 0
        self._listeners: list[CommitListener] = []
        self.acked = 0

    def add_listener(self, listener: CommitListener) -> None:
        """For inputs that must also tell their source what is delivered (an Event Hubs checkpoint store)."""
        with self._lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: CommitListener) -> None:
        with self._lock:
            self._listeners.remove(listener)

    def track(self, cursor: dict[str, Any] | None) -> int:
        """Registers a published event and returns its sequence number."""
        with self._lock:
            self._pending.append([_PENDING, cursor])
            self._outstanding += 1
            return self._base + len(self._pending) - 1

    def track_many(self, count: int, cursor: dict[str, Any] | None) -> int:
        """Registers `count` published events, `cursor` on the last one; returns the first sequence number.

        One lock for a whole batch: a source that reads records in chunks (an S3 object, an API page) pays
        per chunk, not per event. A crash replays at most the chunk, since the cursor moves with its end.
        """
        with self._lock:
            pending = self._pending
            first = self._base + len(pending)
            for _ in range(count - 1):
                pending.append([_PENDING, None])
            pending.append([_PENDING, cursor])
            self._outstanding += count
            return first

    def track_each(self, cursors: list[dict[str, Any] | None]) -> int:
        """Registers one event per cursor (a line and the file position after it); returns the first sequence.

        For sources whose every record has its own resume point: a crash then replays only what was
        not acknowledged, not the rest of the chunk.
        """
        with self._lock:
            pending = self._pending
            first = self._base + len(pending)
            pending.extend([_PENDING, cursor] for cursor in cursors)
            self._outstanding += len(cursors)
            return first

    def abandon(self, sequence: int) -> None:
        """The event never reached the queue (shutdown): it and everything after stay uncommitted."""
        with self._lock:
            index = sequence - self._base
            if 0 <= index < len(self._pending) and self._pending[index][0] == _PENDING:
                self._pending[index][0] = _ABANDONED
                self._outstanding -= 1
                if not self._outstanding:
                    self._all_done.notify_all()

    def done(self, sequence: int) -> None:
        self.done_many((sequence,))

    def dropped(self, sequence: int) -> None:
        """An event the queue had no room for (UDP): later cursors may commit past it, but it was not delivered,
        so `acked` does not count it (`stats.dropped` does)."""
        self.done_many((sequence,), delivered=False)

    def done_many(self, sequences: Iterable[int], delivered: bool = True) -> None:
        """Marks events acknowledged; commits the cursors that became contiguous, in one call."""
        committed: dict[str, Any] = {}
        with self._lock:
            pending = self._pending
            base = self._base
            size = len(pending)
            newly = 0
            for sequence in sequences:
                index = sequence - base
                if 0 <= index < size and pending[index][0] == _PENDING:
                    pending[index][0] = _DONE
                    newly += 1
            self._outstanding -= newly
            if delivered:
                self.acked += newly
            while pending and pending[0][0] == _DONE:
                cursor = pending.popleft()[1]
                self._base += 1
                if cursor:
                    # Later cursors of a source overwrite earlier ones: one commit per source and call.
                    committed.update(cursor)
            # Committed under the lock so two acknowledging threads cannot reorder commits.
            if committed:
                prefix = self._key_prefix
                self._commit({prefix + key: value for key, value in committed.items()})
                for listener in self._listeners:
                    listener(committed)
            if not self._outstanding:
                self._all_done.notify_all()

    @property
    def in_flight(self) -> int:
        return self._outstanding

    def wait_all_done(self, timeout: float) -> bool:
        with self._lock:
            return self._all_done.wait_for(lambda: not self._outstanding, timeout)


class SharedAcknowledgement:
    """One payload that became several events: its sequence is done when all of them are."""

    def __init__(self, acker: Any, sequence: int, events: int) -> None:
        self._acker = acker
        self._sequence = sequence
        self._remaining = events
        self._delivered = False
        self._lock = threading.Lock()

    def done(self, sequence: int) -> None:
        self.done_many([sequence])

    def done_many(self, sequences: list[int], delivered: bool = True) -> None:
        """Done when all its events are; delivered (counted in `acked`) when any of them was."""
        with self._lock:
            self._remaining -= len(sequences)
            self._delivered = self._delivered or delivered
            finished = self._remaining == 0
        if finished:
            self._acker.done_many((self._sequence,), delivered=self._delivered)
