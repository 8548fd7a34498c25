"""What each Duo log is, and where a stream of it has got to.

Duo filters its logs by record time in milliseconds (v2 logs, Trust Monitor's
surfaced time) or seconds (v1 logs), inclusive at both ends, and withholds the
last two minutes. A stream's cursor says: every record older than `since` (ms)
was delivered, and of the records at `since` or later, exactly those whose
dedupe keys are in `seen`. The next request starts at `since` again, so a record
on the boundary comes back and is skipped by its key.

Logs Duo lists oldest first (v2 with `sort=ts:asc`, v1) move `since` to the time
of the last delivered record page by page: a restart mid-window re-reads only
from there. Trust Monitor's order is not documented, so its cursor keeps the
window's start and every key delivered in it until the window is complete; its
windows are capped at an hour to keep that bounded.

The cursor is plain JSON for the registry: {"since": ms, "seen": {key: ms}}.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from forwarder.pipeline.event import parse_timestamp


def _iso_time(field_name: str) -> Callable[[dict[str, Any]], float | None]:
    def read(record: dict[str, Any]) -> float | None:
        value = record.get(field_name)
        if type(value) is not str or not value:
            return None
        try:
            return parse_timestamp(value)
        except (ValueError, OverflowError, OSError):
            return None
    return read


_read_isotimestamp = _iso_time("isotimestamp")


def _isotimestamp(record: dict[str, Any]) -> float | None:
    """`isotimestamp` has the sub-second part; `timestamp` (seconds) is the fallback."""
    return _read_isotimestamp(record) or _epoch(record.get("timestamp"), 1)


def _surfaced_time(record: dict[str, Any]) -> float | None:
    return _epoch(record.get("surfaced_timestamp"), 1000)


def _epoch(value: Any, per_second: int) -> float | None:
    if type(value) not in (int, float) or value <= 0:
        return None
    return value / per_second


@dataclass(frozen=True)
class DuoStream:
    """One Duo log: its endpoint, how it pages, where a record's time and id are."""

    name: str
    path: str
    paging: str  # "v2_list": next_offset [ts, txid] (auth); "v2_string": "ts,id"; "v1": mintime s; "trust_monitor"
    records_key: str
    record_time: Callable[[dict[str, Any]], float | None]
    id_fields: tuple[str, ...]
    oldest_first: bool = True
    max_window_ms: int | None = None

    @property
    def milliseconds(self) -> bool:
        return self.paging != "v1"


STREAMS: dict[str, DuoStream] = {
    "auth": DuoStream("auth", "/admin/v2/logs/authentication", "v2_list", "authlogs", _isotimestamp, ("txid",)),
    "admin": DuoStream("admin", "/admin/v1/logs/administrator", "v1", "", _isotimestamp, ()),
    "telephony": DuoStream("telephony", "/admin/v2/logs/telephony", "v2_string", "items", _iso_time("ts"),
                           ("telephony_id", "txid")),
    "activity": DuoStream("activity", "/admin/v2/logs/activity", "v2_string", "items", _iso_time("ts"),
                          ("activity_id",)),
    "trust_monitor": DuoStream("trust_monitor", "/admin/v1/trust_monitor/events", "trust_monitor", "events",
                               _surfaced_time, ("sbtid",), oldest_first=False, max_window_ms=3_600_000),
    "offline_enrollment": DuoStream("offline_enrollment", "/admin/v1/logs/offline_enrollment", "v1", "", _isotimestamp,
                                    ()),
}


def dedupe_key(stream: DuoStream, record: dict[str, Any]) -> str:
    """The record's own id (txid, telephony_id, activity_id, sbtid), else a hash of the whole record."""
    for name in stream.id_fields:
        value = record.get(name)
        if isinstance(value, str) and value:
            return value
    return hashlib.sha256(orjson.dumps(record, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


def time_ms(stream: DuoStream, when: float) -> int:
    """A record time as Duo compares it: whole milliseconds, or whole seconds for v1 logs."""
    millis = int(when * 1000)
    return millis if stream.milliseconds else millis - millis % 1000


@dataclass
class DuoCursor:
    since: int
    seen: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"since": self.since, "seen": dict(self.seen)}

    @classmethod
    def from_json(cls, value: Any) -> DuoCursor:
        """A cursor from the registry; raises ValueError when it is not one of ours."""
        if not isinstance(value, dict) or type(value.get("since")) is not int:
            raise ValueError("not a Duo cursor")
        seen = value.get("seen", {})
        if not isinstance(seen, dict):
            raise ValueError("the cursor's seen keys are not a mapping")
        return cls(value["since"], {str(key): int(when) for key, when in seen.items() if type(when) is int})

    def delivered(self, stream: DuoStream, key: str, when_ms: int) -> None:
        """Records a delivery; an oldest-first log moves `since` to it and forgets keys older than that."""
        self.seen[key] = when_ms
        if stream.oldest_first and when_ms > self.since:
            self.since = when_ms
            self.seen = {k: t for k, t in self.seen.items() if t >= when_ms}

    def completed(self, window_end_ms: int) -> None:
        """Every record up to `window_end_ms` (inclusive) was delivered."""
        self.since = max(self.since, window_end_ms)
        self.seen = {k: t for k, t in self.seen.items() if t >= self.since}
