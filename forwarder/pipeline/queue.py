"""The bounded in-memory queue between publishing inputs and output workers.

Space is given back only when a batch is acknowledged (or given up at
shutdown), not when an output takes it, so the bound covers events in flight
too: a stalled receiver stops the inputs instead of growing memory.

A partial batch waits for `flush_min_events` only while events keep coming:
once no event arrived for `quiet` seconds, waiting longer cannot fill it and
only delays the tail of a burst (the last events of a file read in bulk, the
end of a cloud poll) by the whole `flush_timeout` (elastic/beats#37754).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from forwarder.pipeline.event import Event


class QueueClosed(Exception):
    """Raised by `put` when the pipeline is shutting down; `queued` is how many of a `put_many` went in first."""

    def __init__(self, queued: int = 0) -> None:
        super().__init__(queued)
        self.queued = queued


class Batch:
    """Events handed to one output worker; acknowledged in order, possibly in parts."""

    __slots__ = ("events", "acked", "_queue")

    def __init__(self, events: list[Event], queue: EventQueue) -> None:
        self.events = events
        self.acked = 0
        self._queue = queue

    def __len__(self) -> int:
        return len(self.events)

    @property
    def pending(self) -> list[Event]:
        return self.events[self.acked:]

    def ack_through(self, count: int) -> None:
        """Marks the first `count` events of the batch delivered."""
        count = min(count, len(self.events))
        if count <= self.acked:
            return
        newly = self.events[self.acked:count]
        self.acked = count
        acknowledge(newly)
        self._queue.release(newly)

    def ack_all(self) -> None:
        self.ack_through(len(self.events))


def acknowledge(events: list[Event]) -> None:
    """Hands each input's acknowledged sequence numbers to its acker in one call per input."""
    by_acker: dict[Any, list[int]] = {}
    for event in events:
        token = event.ack_token
        if token is not None:
            by_acker.setdefault(token[0], []).append(token[1])
    for acker, sequences in by_acker.items():
        acker.done_many(sequences)


QUIET_SECONDS = 0.05


class EventQueue:
    def __init__(self, max_events: int, max_bytes: int, flush_min_events: int, flush_timeout: float,
                 quiet: float = QUIET_SECONDS) -> None:
        self.max_events = max(1, max_events)
        self.max_bytes = max(1, max_bytes)
        self.flush_min_events = max(1, min(flush_min_events, self.max_events))
        self.flush_timeout = flush_timeout
        self.quiet = quiet
        self._last_put = 0.0
        self._ready: deque[Event] = deque()
        self._active_events = 0
        self._active_bytes = 0
        self._closed = False
        self._lock = threading.Lock()
        self._space = threading.Condition(self._lock)
        self._items = threading.Condition(self._lock)
        self._space_listeners: list[Callable[[], None]] = []

    def put(self, event: Event) -> None:
        """Blocks while the queue is full; an event larger than the byte bound still passes alone."""
        self.put_many([event])

    def put_many(self, events: list[Event]) -> None:
        """`put` for a chunk of events under one lock: as many as fit go in, then it waits for space for the rest.

        Raises QueueClosed (with how many went in) when the pipeline shuts down part-way.
        """
        index = 0
        with self._lock:
            while index < len(events):
                while not self._closed and not self._fits(events[index]):
                    self._space.wait()
                if self._closed:
                    raise QueueClosed(index)
                index = self._append_fitting(events, index)

    def try_put(self, event: Event) -> bool:
        """Non-blocking put for sources that cannot wait (UDP); False when full."""
        return self.try_put_many([event]) == 1

    def try_put_many(self, events: list[Event]) -> int:
        """`try_put` for a chunk under one lock: queues events in order while they fit; returns how many did."""
        with self._lock:
            if self._closed:
                raise QueueClosed()
            return self._append_fitting(events, 0)

    def _fits(self, event: Event) -> bool:
        return self._active_events == 0 or (
            self._active_events < self.max_events and self._active_bytes + event.size <= self.max_bytes)

    def _append_fitting(self, events: list[Event], index: int) -> int:
        """Under the lock: appends events from `index` while they fit; returns the index of the first left out.

        The output is woken when the queue was empty or reaches `flush_min_events`, not for every event.
        """
        was_empty = not self._ready
        start = index
        while index < len(events) and self._fits(events[index]):
            event = events[index]
            self._ready.append(event)
            self._active_events += 1
            self._active_bytes += event.size
            index += 1
        if index > start:
            self._last_put = time.monotonic()
            if was_empty or len(self._ready) >= self.flush_min_events:
                self._items.notify()
        return index

    def get_batch(self, max_size: int, wait: float = 1.0) -> Batch | None:
        """Waits up to `wait` for events, then up to `flush_timeout` for `flush_min_events` while they keep coming.

        Returns None when nothing arrived, so a worker can check for shutdown.
        Never returns an empty batch, even when another worker took the events
        this one was waiting for.
        """
        with self._lock:
            deadline = time.monotonic() + wait
            while True:
                while not self._ready:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or self._closed:
                        return None
                    self._items.wait(remaining)
                want = min(max_size, self.flush_min_events)
                flush_deadline = time.monotonic() + self.flush_timeout
                while len(self._ready) < want and not self._closed:
                    remaining = min(flush_deadline, self._last_put + self.quiet) - time.monotonic()
                    if remaining <= 0:
                        break
                    self._items.wait(remaining)
                if self._ready:
                    break
            count = min(max_size, len(self._ready))
            events = [self._ready.popleft() for _ in range(count)]
        return Batch(events, self)

    def on_space(self, listener: Callable[[], None]) -> None:
        """Calls `listener` whenever acknowledged events free space: for publishers that wait elsewhere
        than in `put` (the worker pool counts the records its workers hold against this queue's bound)."""
        self._space_listeners.append(listener)

    def release(self, events: list[Event]) -> None:
        with self._lock:
            self._active_events -= len(events)
            self._active_bytes -= sum(e.size for e in events)
            self._space.notify_all()
        for listener in self._space_listeners:
            listener()

    def finish(self) -> None:
        """Nothing to save at the end: what was not acknowledged is read again from the inputs' cursors."""
        self.close()

    def snapshot(self) -> dict[str, Any]:
        return {"type": "mem", "events": self._active_events, "bytes": self._active_bytes}

    def close(self) -> None:
        """Wakes every waiter; later puts raise QueueClosed."""
        with self._lock:
            self._closed = True
            self._space.notify_all()
            self._items.notify_all()

    @property
    def full(self) -> bool:
        """True while a `put` would block: for sources that would rather refuse work than wait (HTTP 503)."""
        return self._active_events >= self.max_events or self._active_bytes >= self.max_bytes

    @property
    def active_events(self) -> int:
        return self._active_events

    @property
    def active_bytes(self) -> int:
        return self._active_bytes

    @property
    def ready_events(self) -> int:
        return len(self._ready)
