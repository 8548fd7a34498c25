"""Which time window a Microsoft Graph poll reads, and which records it has already delivered.

Microsoft publishes some records late: a sign-in at 10:00 may first be listed
at 10:20. A window read at `read_at` has therefore seen every record up to
`read_at - late_arrival_window` for sure, and the records after that only if
they were already published. The next poll re-reads from there (never later
than the end of the last window) and skips the dedupe keys remembered from that
stretch, so a late record is delivered and the overlap is not. A chunk of a
backfill, read long after its end, needs no overlap at all; a poll at the head
re-reads almost the whole `late_arrival_window`.

A stream read for the first time starts `initial_lookback` ago, fixed in the
cursor at once. A backfill (the first start, or a long outage) is read in
chunks of new time of at most the length the caller asks for, so progress is
committed chunk by chunk and the keys carried in the cursor stay bounded by
one chunk plus the overlap.

The cursor is plain JSON so the registry can hold it:
  {"until": <end of the last completed window, epoch s>, "read_at": <when that window's read began>,
   "seen": {key: record time}}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class GraphCursor:
    until: float | None = None
    seen: dict[str, float] = field(default_factory=dict)
    read_at: float | None = None

    def has_seen(self, key: str) -> bool:
        return key in self.seen

    def remember(self, key: str, record_time: float) -> None:
        """Records a delivery made in the window being read."""
        self.seen[key] = record_time

    def to_json(self) -> dict[str, Any]:
        return {"until": self.until, "read_at": self.read_at, "seen": dict(self.seen)}

    @classmethod
    def from_json(cls, value: Any) -> GraphCursor:
        """A cursor from the registry; raises ValueError when it is not one of ours."""
        if not isinstance(value, dict) or not isinstance(value.get("seen", {}), dict):
            raise ValueError("not a Graph cursor")
        until, read_at = value.get("until"), value.get("read_at")
        for moment in (until, read_at):
            if moment is not None and not isinstance(moment, (int, float)):
                raise ValueError("cursor time is not a number")
        seen = {str(k): float(t) for k, t in value.get("seen", {}).items() if isinstance(t, (int, float))}
        return cls(None if until is None else float(until), seen, None if read_at is None else float(read_at))

    def overlap(self, late_arrival_window: float) -> float:
        """How far before `until` the next read must start; a cursor without `read_at` gets the full window."""
        if self.until is None or self.read_at is None:
            return late_arrival_window
        return max(0.0, late_arrival_window - (self.read_at - self.until))


@dataclass(frozen=True)
class PollWindow:
    """Query records with `start <= time <= end`; the window is complete when every page was read.

    `read_at` is when it was planned, just before its first request: what was
    published after that may be missing, so the next overlap is measured from it.
    """

    start: float
    end: float
    read_at: float


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

    def next_window(self, cursor: GraphCursor, chunk: float | None = None) -> PollWindow:
        """The next window: from the overlap before `until` to now, or `chunk` (default max_chunk) past `until`."""
        if cursor.until is None:
            raise ValueError("next_window needs a cursor with a start; use first_cursor()")
        now = self._clock()
        start = cursor.until - cursor.overlap(self.late_arrival_window)
        end = min(now, cursor.until + min(chunk or self.max_chunk, self.max_chunk))
        return PollWindow(start, max(start, end), now)

    def completed(self, cursor: GraphCursor, window: PollWindow) -> GraphCursor:
        """The cursor after every page of `window` was delivered: keys older than the next overlap are dropped."""
        done = GraphCursor(window.end, {}, window.read_at)
        keep_from = window.end - done.overlap(self.late_arrival_window)
        done.seen = {k: t for k, t in cursor.seen.items() if t >= keep_from}
        return done
