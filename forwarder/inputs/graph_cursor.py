"""Which time window a Microsoft Graph poll reads, and which records it has already delivered.

Microsoft publishes some records late: a sign-in at 10:00 may first be listed
at 10:20. Each poll therefore re-reads `late_arrival_window` before the end of
the last completed window and remembers the dedupe keys of what it delivered
inside that window, so a late record is delivered and the overlap is not.

A stream read for the first time starts `initial_lookback` ago, fixed in the
cursor at once. A backfill (the first start, or a long outage) is read in chunks of at most
`max_chunk` of new time, so progress is committed chunk by chunk and the set
of keys carried in the cursor stays bounded by one chunk plus the overlap.

The cursor is plain JSON so the registry can hold it:
  {"until": <end of the last completed window, epoch s>, "seen": {key: record time}}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class GraphCursor:
    until: float | None = None
    seen: dict[str, float] = field(default_factory=dict)

    def has_seen(self, key: str) -> bool:
        return key in self.seen

    def remember(self, key: str, record_time: float) -> None:
        """Records a delivery made in the window being read."""
        self.seen[key] = record_time

    def to_json(self) -> dict[str, Any]:
        return {"until": self.until, "seen": dict(self.seen)}

    @classmethod
    def from_json(cls, value: Any) -> GraphCursor:
        """A cursor from the registry; raises ValueError when it is not one of ours."""
        if not isinstance(value, dict) or not isinstance(value.get("seen", {}), dict):
            raise ValueError("not a Graph cursor")
        until = value.get("until")
        if until is not None and not isinstance(until, (int, float)):
            raise ValueError("cursor time is not a number")
        seen = {str(k): float(t) for k, t in value.get("seen", {}).items() if isinstance(t, (int, float))}
        return cls(None if until is None else float(until), seen)


@dataclass(frozen=True)
class PollWindow:
    """Query records with `start <= time <= end`; the window is complete when every page was read."""

    start: float
    end: float


class PollWindowPlanner:
    """Plans the next window from a cursor, and the cursor once a window is complete."""

    def __init__(self, late_arrival_window: float, initial_lookback: float, max_chunk: float,
                 clock: Callable[[], float]) -> None:
        self.late_arrival_window = late_arrival_window
        self.initial_lookback = initial_lookback
        self.max_chunk = max_chunk
        self._clock = clock

    def first_cursor(self) -> GraphCursor:
        """The cursor of a stream never read before: its start is fixed now, so a restart
        during the first backfill does not move it forward and skip what lies between."""
        return GraphCursor(until=self._clock() - self.initial_lookback)

    def next_window(self, cursor: GraphCursor) -> PollWindow:
        if cursor.until is None:
            raise ValueError("next_window needs a cursor with a start; use first_cursor()")
        start = cursor.until - self.late_arrival_window
        end = min(self._clock(), cursor.until + self.max_chunk)
        return PollWindow(start, max(start, end))

    def completed(self, cursor: GraphCursor, window: PollWindow) -> GraphCursor:
        """The cursor after every page of `window` was delivered: keys older than the next overlap are dropped."""
        keep_from = window.end - self.late_arrival_window
        return GraphCursor(window.end, {k: t for k, t in cursor.seen.items() if t >= keep_from})
