"""The o365audit cursor and listing windows: what is listed next, what is remembered, what the registry holds."""

from __future__ import annotations

import itertools
import json

import pytest

from forwarder.inputs.o365_cursor import RETENTION_MARGIN, ListWindowPlanner, O365Cursor
from forwarder.net.management_client import ContentBlob

DAY = 86400.0
WEEK = 7 * DAY
NOW = 1_800_000_000.0


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def blob(content_id: str, created: float) -> ContentBlob:
    return ContentBlob(content_id, f"https://manage.example/feed/audit/{content_id}", "Audit.Exchange", created, None)


def planner(clock: Clock, retention: float = WEEK, query: float = DAY) -> ListWindowPlanner:
    return ListWindowPlanner(retention, query, clock)


def test_a_first_start_backfills_the_retention_period_in_windows_of_max_query_size() -> None:
    clock = Clock()
    plan = planner(clock)
    cursor = O365Cursor()
    windows = []
    while True:
        window = plan.next_window(cursor)
        windows.append(window)
        cursor = plan.completed(cursor, window)
        if window.live:
            break
    first = windows[0]
    assert first.start == NOW - WEEK + RETENTION_MARGIN and first.end == first.start + DAY and not first.live
    assert all(a.end == b.start for a, b in itertools.pairwise(windows[:-1]))
    assert len(windows) == 7
    assert (windows[-1].start, windows[-1].end, windows[-1].live) == (NOW - DAY, NOW, True)
    assert windows[-1].start < windows[-2].end
    assert all(w.end - w.start <= DAY and w.lost_since is None for w in windows)


def test_once_caught_up_the_whole_trailing_window_is_listed_again() -> None:
    clock = Clock()
    plan = planner(clock, query=6 * 3600)
    cursor = O365Cursor(until=NOW - 60)
    window = plan.next_window(cursor)
    assert (window.start, window.end, window.live) == (NOW - 6 * 3600, NOW, True)
    clock.now += 180
    assert plan.next_window(plan.completed(cursor, window)).start == clock.now - 6 * 3600


def test_a_cursor_older_than_the_retention_period_starts_at_its_edge_and_reports_the_gap() -> None:
    clock = Clock()
    cursor = O365Cursor(until=NOW - 9 * DAY)
    window = planner(clock).next_window(cursor)
    assert window.lost_since == NOW - 9 * DAY
    assert window.start == NOW - WEEK + RETENTION_MARGIN


def test_a_short_retention_keeps_its_margin_inside_the_period() -> None:
    window = planner(Clock(), retention=120.0, query=60.0).next_window(O365Cursor())
    assert window.start == NOW - 60.0 and window.live


def test_delivered_blobs_are_remembered_for_the_retention_period_only() -> None:
    clock = Clock()
    plan = planner(clock)
    cursor = O365Cursor(until=NOW - 300)
    cursor.finished(blob("old", NOW - WEEK - 1))
    cursor.finished(blob("recent", NOW - DAY))
    completed = plan.completed(cursor, plan.next_window(cursor))
    assert completed.is_delivered("recent") and not completed.is_delivered("old")
    assert completed.until == NOW


def test_a_published_cursor_does_not_change_when_later_blobs_are_delivered() -> None:
    cursor = O365Cursor(until=NOW - DAY)
    first, second = blob("a", NOW - 100), blob("b", NOW - 100)
    cursor.publishing(first, 1)
    in_flight = cursor.to_json()
    cursor.finished(first)
    after_first = cursor.to_json()
    cursor.finished(second)
    assert in_flight["delivered"] == {} and in_flight["blob"]["next"] == 1
    assert set(after_first["delivered"]) == {"a"} and after_first["blob"] is None
    assert set(cursor.to_json()["delivered"]) == {"a", "b"}


def test_the_cursor_round_trips_through_the_registry_json() -> None:
    cursor = O365Cursor(until=NOW - DAY)
    cursor.finished(blob("done", NOW - 2 * DAY))
    cursor.publishing(blob("half", NOW - 3600), 7)
    restored = O365Cursor.from_json(json.loads(json.dumps(cursor.to_json())))
    assert restored == cursor
    resumed = restored.blob.blob("Audit.Exchange")
    assert (resumed.content_id, resumed.content_uri) == ("half", blob("half", 0).content_uri)
    assert restored.blob.next_record == 7


@pytest.mark.parametrize("value", [[], {"delivered": []}, {"until": "yesterday"}, {"blob": {"id": "x"}}])
def test_an_unreadable_cursor_is_refused(value: object) -> None:
    with pytest.raises(ValueError):
        O365Cursor.from_json(value)
