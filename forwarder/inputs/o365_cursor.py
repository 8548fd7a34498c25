"""Where one o365audit poller (tenant × content type) stands, and which window it lists next.

The Management Activity API lists content blobs by when they became available
(`contentCreated`), in windows of at most 24 hours no older than 7 days, and
lists the same blob again in any window that covers it. Filebeat keeps only the
newest creation time, so a second blob created in the same second is skipped.
This cursor instead remembers the id of every blob delivered within the
retention period: a re-listing, a restart mid-window or two blobs sharing a
timestamp cost a lookup, never a loss or a duplicate blob.

Registry value (plain JSON):
  {"until": <end of the last completely listed window or null>,
   "delivered": {content id: contentCreated},
   "blob": {"id", "uri", "created", "next": <records of it already published>} or null}

`delivered` is replaced, never changed in place: every event's cursor refers
to the dict that was current when it was published, so a blob enters the
committed cursor only with the acknowledgement of its last record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from forwarder.net.management_client import ContentBlob

# Windows start this far inside the retention period: a request that takes a moment must not fall out of it.
RETENTION_MARGIN = 300.0


@dataclass(frozen=True)
class BlobProgress:
    content_id: str
    content_uri: str
    created: float
    next_record: int

    def blob(self, content_type: str) -> ContentBlob:
        return ContentBlob(self.content_id, self.content_uri, content_type, self.created, None)


@dataclass
class O365Cursor:
    until: float | None = None
    delivered: dict[str, float] = field(default_factory=dict)
    blob: BlobProgress | None = None

    def is_delivered(self, content_id: str) -> bool:
        return content_id in self.delivered

    def publishing(self, blob: ContentBlob, next_record: int) -> None:
        self.blob = BlobProgress(blob.content_id, blob.content_uri, blob.created, next_record)

    def finished(self, blob: ContentBlob) -> None:
        """The blob is delivered (or recorded as gone): skipped whenever it is listed again."""
        self.delivered = {**self.delivered, blob.content_id: blob.created}
        self.blob = None

    def to_json(self) -> dict[str, Any]:
        progress = self.blob
        return {
            "until": self.until,
            "delivered": self.delivered,
            "blob": None if progress is None else {
                "id": progress.content_id, "uri": progress.content_uri,
                "created": progress.created, "next": progress.next_record,
            },
        }

    @classmethod
    def from_json(cls, value: Any) -> O365Cursor:
        """A cursor from the registry; ValueError when it is not one of ours."""
        if not isinstance(value, dict) or not isinstance(value.get("delivered", {}), dict):
            raise ValueError("not an o365audit cursor")
        until = value.get("until")
        if until is not None and not isinstance(until, (int, float)):
            raise ValueError("its time is not a number")
        delivered = {str(k): float(t) for k, t in value.get("delivered", {}).items() if isinstance(t, (int, float))}
        progress = value.get("blob")
        blob = None
        if progress is not None:
            try:
                blob = BlobProgress(str(progress["id"]), str(progress["uri"]), float(progress["created"]),
                                    int(progress["next"]))
            except (KeyError, TypeError, ValueError):
                raise ValueError("its blob position is unreadable") from None
        return cls(None if until is None else float(until), delivered, blob)


@dataclass(frozen=True)
class ListWindow:
    """List blobs with `start <= contentCreated < end`. `live`: it ends now, so the next one waits poll_interval.
    `lost_since`: the cursor was older than the retention period, content from then to `start` is gone."""

    start: float
    end: float
    live: bool
    lost_since: float | None = None


class ListWindowPlanner:
    """Plans windows on the API's clock (`clock` includes any skew correction)."""

    def __init__(self, max_retention: float, max_query_size: float, clock: Callable[[], float]) -> None:
        self.max_retention = max_retention
        self.max_query_size = max_query_size
        self.clock = clock

    def oldest_start(self, now: float) -> float:
        return now - self.max_retention + min(RETENTION_MARGIN, self.max_retention / 2)

    def next_window(self, cursor: O365Cursor) -> ListWindow:
        now = self.clock()
        floor = self.oldest_start(now)
        lost_since = cursor.until if cursor.until is not None and cursor.until < floor else None
        start = floor if cursor.until is None else max(cursor.until, floor)
        if start + self.max_query_size < now:
            return ListWindow(start, start + self.max_query_size, False, lost_since)
        # Caught up: the whole trailing window again, because blobs appear late and out of order.
        return ListWindow(max(floor, now - self.max_query_size), now, True, lost_since)

    def completed(self, cursor: O365Cursor, window: ListWindow) -> O365Cursor:
        """The cursor once every page of `window` was delivered; blob ids past retention are forgotten."""
        until = window.end if cursor.until is None else max(cursor.until, window.end)
        horizon = self.clock() - self.max_retention
        delivered = {key: created for key, created in cursor.delivered.items() if created >= horizon}
        return O365Cursor(until, delivered, cursor.blob)
