"""`rate_limit`: drop events above a rate, per group of field values, with Filebeat's token bucket.

Each group (the values of `fields`, or one group for everything) has a
bucket that holds up to `limit × burst_multiplier` tokens, starts full and
refills at `limit`; an event takes a token or is dropped. Drops are never
silent: each is counted in the input's `filtered` count in /stats, and the
processor logs how many it dropped, at most once a minute. Buckets of groups
that have gone quiet are removed so that a high-cardinality field cannot grow
memory without bound.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from forwarder.pipeline.client import Processor
from forwarder.pipeline.event import Event
from forwarder.pipeline.field_path import MISSING, FieldPath
from forwarder.schema.declared import DURATION, NUMBER, STRING, STRINGS, Setting, read_settings
from forwarder.schema.section import Section

log = logging.getLogger(__name__)

RATE_LIMIT_SETTINGS = (
    Setting("limit", STRING, doc="the rate allowed, as `NUMBER/UNIT` with unit `s`, `m` or `h` (`10000/m`)"),
    Setting("fields", STRINGS, [], "fields whose values form the groups limited separately; none = one limit for "
            "all events"),
    Setting("algorithm.token_bucket.burst_multiplier", NUMBER, 1.0, "the bucket holds `limit × burst_multiplier` "
            "tokens, the burst allowed after a quiet time"),
    Setting("algorithm.token_bucket.gc.interval", DURATION, "60s", "how often buckets of quiet groups are removed",
            positive=True),
)

_LIMIT = re.compile(r"\s*(\d+(?:\.\d+)?)\s*/\s*([smh])\s*")
_UNIT_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0}
DROP_LOG_INTERVAL = 60.0


def parse_limit(text: str) -> float:
    """Events per second; ValueError for anything but `NUMBER/s|m|h` with a positive number."""
    match = _LIMIT.fullmatch(text)
    if match is None or float(match.group(1)) <= 0:
        raise ValueError(f"{text!r} is not a rate such as 10000/m (a positive number, then /s, /m or /h)")
    return float(match.group(1)) / _UNIT_SECONDS[match.group(2)]


class TokenBuckets:
    """One bucket per group key; `allow(key)` takes a token when there is one. Thread-safe."""

    def __init__(self, per_second: float, capacity: float, gc_interval: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_second = per_second
        self.capacity = max(capacity, 1.0)
        self.gc_interval = gc_interval
        self._clock = clock
        self._lock = threading.Lock()
        # key → (tokens, time they were counted)
        self._buckets: dict[Any, tuple[float, float]] = {}
        self._next_gc = clock() + gc_interval

    def allow(self, key: Any) -> bool:
        with self._lock:
            now = self._clock()
            tokens, counted = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - counted) * self.per_second)
            allowed = tokens >= 1.0
            self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)
            if now >= self._next_gc:
                self._collect(now)
            return allowed

    def __len__(self) -> int:
        return len(self._buckets)

    def _collect(self, now: float) -> None:
        """Drops the buckets that would be full by now: a new bucket for them starts the same."""
        self._buckets = {key: state for key, state in self._buckets.items()
                         if state[0] + (now - state[1]) * self.per_second < self.capacity}
        self._next_gc = now + self.gc_interval


class DropReport:
    """Counts drops and logs them, at most once per interval, so a flood of drops is visible but not a log flood."""

    def __init__(self, limit: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.total = 0
        self._unlogged = 0
        self._clock = clock
        self._next_log = 0.0
        self._lock = threading.Lock()

    def dropped(self) -> None:
        with self._lock:
            self.total += 1
            self._unlogged += 1
            now = self._clock()
            if now < self._next_log:
                return
            count, self._unlogged, self._next_log = self._unlogged, 0, now + DROP_LOG_INTERVAL
        log.warning("rate_limit %s: dropped %d event(s) above the limit (%d in all; counted as filtered in /stats)",
                    self.limit, count, self.total)


def _group_value(value: Any) -> Any:
    """A hashable stand-in for one field's value (missing = None; objects and lists by their text)."""
    if value is MISSING:
        return None
    return value if isinstance(value, (str, int, float, bool)) else repr(value)


def build_rate_limit(options: Section) -> Processor:
    values = read_settings(options, RATE_LIMIT_SETTINGS)
    per_second = 1.0
    try:
        per_second = parse_limit(values["limit"] or "")
    except ValueError as exc:
        values.error("limit", str(exc))
    burst = values["algorithm.token_bucket.burst_multiplier"]
    if burst < 1:
        values.error("algorithm.token_bucket.burst_multiplier", "must be at least 1")
    unit_limit = _LIMIT.fullmatch(values["limit"] or "")
    capacity = float(unit_limit.group(1)) * max(burst, 1.0) if unit_limit else 1.0
    buckets = TokenBuckets(per_second, capacity, values["algorithm.token_bucket.gc.interval"])
    report = DropReport(values["limit"] or "")
    paths = [FieldPath(name) for name in values["fields"]]

    def group_of(event: Event) -> tuple[Any, ...]:
        return tuple(_group_value(path.get(event)) for path in paths)

    def rate_limit(event: Event) -> Event | None:
        if buckets.allow(group_of(event)):
            return event
        report.dropped()
        return None

    return rate_limit
