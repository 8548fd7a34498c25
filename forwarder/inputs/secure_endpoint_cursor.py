"""Where a `cisco-secure-endpoint` input has got to, and how an event is told apart from another.

Cisco answers `GET /v1/events` from an inclusive `start_date`, newest first,
with no end date. So a poll ("run") reads every page from the cursor's
`start_date`; when the run is complete the cursor moves to the newest event's
`date`, keeping the ids of the events at exactly that second (`seen`): they
come back in the next run and are skipped. While a run is under way each page's
cursor also holds `run`: the `links.next` URL still to read and the newest
date seen so far, so a restart resumes at that page instead of reading the run
again.

The cursor is plain JSON for the registry:
{"start_date": "...+00:00", "seen": [keys], "run": {"next": url, "newest": date, "newest_keys": [keys]} | null}.
"""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass, field
from typing import Any

from forwarder.pipeline.json_text import json_text

# The fields Filebeat's amp fileset (and Elastic's integration) fingerprint into `_id`.
FINGERPRINT_FIELDS = ("timestamp", "timestamp_nanoseconds", "event_type_id", "connector_guid", "id", "detection_id")


def event_key(event: dict[str, Any]) -> str:
    """The event's id; without one, a hash of the fields Elastic fingerprints."""
    value = event.get("id")
    if type(value) in (int, str) and str(value):
        return str(value)
    picked = {name: event[name] for name in FINGERPRINT_FIELDS if name in event}
    return hashlib.sha256(json_text(picked).encode()).hexdigest()[:40]


def date_epoch(text: Any) -> int | None:
    """A `date` / `start_date` as whole epoch seconds, the precision Cisco filters by; None when unreadable."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return int(moment.timestamp())


def start_date_text(epoch: float) -> str:
    """`start_date` as Cisco's examples write it: `2015-10-01T00:00:00+00:00`."""
    return datetime.datetime.fromtimestamp(int(epoch), datetime.UTC).isoformat()


@dataclass
class Run:
    """One poll in progress: the page still to read, and the newest events delivered by it."""

    next_url: str | None = None
    newest: int | None = None
    newest_keys: list[str] = field(default_factory=list)

    def delivered(self, when: int | None, key: str) -> None:
        if when is None:
            return
        if self.newest is None or when > self.newest:
            self.newest, self.newest_keys = when, [key]
        elif when == self.newest:
            self.newest_keys.append(key)


@dataclass
class SecureEndpointCursor:
    start: int
    seen: set[str] = field(default_factory=set)
    run: Run | None = None

    def is_boundary_repeat(self, when: int | None, key: str) -> bool:
        """An event at the start second that the previous run already delivered."""
        return when == self.start and key in self.seen

    def completed(self, run: Run) -> None:
        """The run read every page: the next one starts at its newest event's second."""
        if run.newest is not None and run.newest > self.start:
            self.start, self.seen = run.newest, set(run.newest_keys)
        elif run.newest == self.start:
            self.seen |= set(run.newest_keys)
        self.run = None

    def to_json(self) -> dict[str, Any]:
        run = None
        if self.run is not None:
            run = {"next": self.run.next_url, "newest": self.run.newest, "newest_keys": list(self.run.newest_keys)}
        return {"start_date": start_date_text(self.start), "seen": sorted(self.seen), "run": run}

    @classmethod
    def from_json(cls, value: Any) -> SecureEndpointCursor:
        """A cursor from the registry; raises ValueError when it is not one of ours."""
        if not isinstance(value, dict):
            raise ValueError("not a Secure Endpoint cursor")
        start = date_epoch(value.get("start_date"))
        seen = value.get("seen", [])
        if start is None or not isinstance(seen, list):
            raise ValueError("no readable start_date and seen keys")
        cursor = cls(start, {str(key) for key in seen})
        run = value.get("run")
        if isinstance(run, dict) and isinstance(run.get("next"), str):
            newest = run.get("newest")
            cursor.run = Run(run["next"], newest if type(newest) is int else None,
                             [str(key) for key in run.get("newest_keys") or []])
        return cursor
