"""The event store behind the fake Event Hubs peer: append-only partitions and start-position filters.

Event Hubs is a log, not a queue: every receiver reads from a position it names
in the `apache.org:selector-filter:string` source filter, and reading never
removes anything. Offsets here are byte positions in the partition (like the real
service, they differ from sequence numbers), so a consumer that confuses the two
resumes at the wrong event and a test notices.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass

SELECTOR_FILTER = "apache.org:selector-filter:string"
_SELECTOR = re.compile(
    r"^\s*amqp\.annotation\.(?P<field>x-opt-offset|x-opt-sequence-number|x-opt-enqueued-time)\s*"
    r"(?P<op>>=|>|=)\s*'(?P<value>[^']*)'\s*$"
)


class InvalidSelector(ValueError):
    """A selector filter the service would refuse (`amqp:invalid-field` on the link)."""


@dataclass(frozen=True)
class StoredEvent:
    offset: int
    sequence_number: int
    enqueued_ms: int
    body: bytes
    partition_key: str | None


@dataclass(frozen=True)
class StartPosition:
    """Where a receiver starts: `field` compared with `op` against `value` (`-1` = first, `@latest` = next new)."""

    field: str
    op: str
    value: str

    @classmethod
    def parse(cls, selector: str | None) -> StartPosition:
        """Parses the selector string; no filter at all means the start of the stream, as with the service."""
        if selector is None:
            return cls("x-opt-offset", ">", "-1")
        match = _SELECTOR.match(selector)
        if not match:
            raise InvalidSelector(f"unsupported selector filter {selector!r}")
        position = cls(match["field"], match["op"], match["value"])
        if position.value not in ("-1", "@latest"):
            try:
                int(position.value)
            except ValueError:
                raise InvalidSelector(f"selector value {position.value!r} is not a number") from None
        return position

    def first_index(self, events: list[StoredEvent]) -> int:
        """Index of the first event this position selects (len(events) when only new events qualify)."""
        if self.value == "-1":
            return 0
        if self.value == "@latest":
            return len(events)
        limit = int(self.value)
        key = {
            "x-opt-offset": lambda e: e.offset,
            "x-opt-sequence-number": lambda e: e.sequence_number,
            "x-opt-enqueued-time": lambda e: e.enqueued_ms,
        }[self.field]
        for index, event in enumerate(events):
            value = key(event)
            if value > limit or (self.op in (">=", "=") and value == limit):
                return index
        return len(events)


class PartitionLog:
    """One partition's events; thread-safe (tests append while the peer's thread reads)."""

    def __init__(self, partition_id: str) -> None:
        self.partition_id = partition_id
        self._events: list[StoredEvent] = []
        self._next_offset = 0
        self._lock = threading.Lock()

    def append(self, body: bytes, partition_key: str | None = None) -> StoredEvent:
        with self._lock:
            previous_ms = self._events[-1].enqueued_ms if self._events else 0
            event = StoredEvent(
                offset=self._next_offset,
                sequence_number=len(self._events),
                enqueued_ms=max(int(time.time() * 1000), previous_ms),
                body=body,
                partition_key=partition_key,
            )
            self._events.append(event)
            self._next_offset += max(len(body), 1)
            return event

    def snapshot(self) -> list[StoredEvent]:
        with self._lock:
            return list(self._events)

    def read(self, index: int, limit: int) -> list[StoredEvent]:
        with self._lock:
            return self._events[index : index + limit]

    def __len__(self) -> int:
        with self._lock:
            return len(self._events)

    def properties(self, hub: str) -> dict[str, object]:
        """The `com.microsoft:partition` management READ answer, with the service's values for an empty partition."""
        with self._lock:
            last = self._events[-1] if self._events else None
        return {
            "name": hub,
            "partition": self.partition_id,
            "begin_sequence_number": 0,
            "last_enqueued_sequence_number": last.sequence_number if last else -1,
            "last_enqueued_offset": str(last.offset) if last else "-1",
            "last_enqueued_time_utc": last.enqueued_ms if last else 0,
            "is_partition_empty": last is None,
        }
