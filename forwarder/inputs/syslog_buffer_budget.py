"""One bound on the bytes of half-received syslog frames held across all TCP connections.

Each connection may hold up to `max_message_size` of an unfinished frame; twenty
peers each sending 15 MiB without a delimiter would otherwise hold 300 MB. When
the total reaches the bound, connections stop reading (their senders wait, as for
a full queue) except the one holding the most: it keeps reading until its frame
completes or is cut at the size limit, so the held bytes always go down again
and the connections cannot wait on each other for ever.
"""

from __future__ import annotations

import itertools
import threading

_WAIT_SECONDS = 0.25


class BufferBudget:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._held: dict[int, int] = {}
        self._total = 0
        self._changed = threading.Condition()
        self._keys = itertools.count()

    @property
    def total(self) -> int:
        return self._total

    def join(self) -> int:
        """A new connection's key for the calls below."""
        with self._changed:
            key = next(self._keys)
            self._held[key] = 0
        return key

    def hold(self, key: int, size: int) -> None:
        """Connection `key` now holds `size` bytes of an unfinished frame."""
        with self._changed:
            before = self._held.get(key, 0)
            self._held[key] = size
            self._total += size - before
            if size < before:
                self._changed.notify_all()

    def leave(self, key: int) -> None:
        with self._changed:
            self._total -= self._held.pop(key, 0)
            self._changed.notify_all()

    def has_room(self, key: int) -> bool:
        """Whether connection `key` may read now: the bound is not reached, or it holds the most."""
        with self._changed:
            return self._may_read(key)

    def wait_for_room(self, key: int, stop: threading.Event) -> None:
        """Blocks until connection `key` may read, or `stop` is set."""
        with self._changed:
            while not self._may_read(key) and not stop.is_set():
                self._changed.wait(_WAIT_SECONDS)

    def _may_read(self, key: int) -> bool:
        if self._total < self.limit:
            return True
        mine = self._held[key]
        # The largest holder reads on (ties go to the oldest connection) so that held bytes are released.
        return mine > 0 and all(size < mine or (size == mine and other >= key) for other, size in self._held.items())
