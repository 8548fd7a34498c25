"""Graph polling windows: late records delivered once, overlaps not twice, backfill in bounded chunks."""

from __future__ import annotations

import json

import pytest

from forwarder.inputs.graph_cursor import GraphCursor, PollWindow, PollWindowPlanner

MINUTE, HOUR = 60.0, 3600.0


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def planner(clock: Clock, late=30 * MINUTE, lookback=24 * HOUR, chunk=6 * HOUR) -> PollWindowPlanner:
    return PollWindowPlanner(late, lookback, chunk, clock)


def poll(plan: PollWindowPlanner, cursor: GraphCursor, listed: dict[str, float]) -> tuple[GraphCursor, list[str]]:
    """One complete poll over what Graph lists (key → time), as the input will run it."""
    window = plan.next_window(cursor)
    delivered = []
    for key, record_time in sorted(listed.items(), key=lambda item: -item[1]):  # Graph lists newest first
        if window.start <= record_time <= window.end and not cursor.has_seen(key):
            cursor.remember(key, record_time)
            delivered.append(key)
    return plan.completed(cursor, window), delivered


def test_first_start_backfills_the_lookback_in_chunks_then_follows_now():
    clock = Clock(100 * HOUR)
    plan = planner(clock)
    cursor = plan.first_cursor()
    windows = []
    while cursor.until != clock.now:
        window = plan.next_window(cursor)
        windows.append(window)
        cursor = plan.completed(cursor, window)
    assert windows[0] == PollWindow(76 * HOUR - 30 * MINUTE, 82 * HOUR, 100 * HOUR)
    # Read 18 hours after its end, the first chunk saw everything in it: the next one needs no overlap.
    assert windows[1] == PollWindow(82 * HOUR, 88 * HOUR, 100 * HOUR)
    assert windows[-1].end == 100 * HOUR
    assert len(windows) == 4


def test_a_late_record_in_an_already_polled_interval_is_delivered_once():
    clock = Clock(10 * HOUR)
    plan = planner(clock, lookback=HOUR)
    listed = {"a": 9.5 * HOUR, "b": 9.9 * HOUR}
    cursor, first = poll(plan, plan.first_cursor(), listed)
    assert sorted(first) == ["a", "b"]
    clock.now = 10 * HOUR + 2 * MINUTE
    listed["late"] = 10 * HOUR - 10 * MINUTE  # published after the first poll, dated inside it
    cursor, second = poll(plan, cursor, listed)
    assert second == ["late"]
    clock.now = 10 * HOUR + 4 * MINUTE
    cursor, third = poll(plan, cursor, listed)
    assert third == []


def test_keys_older_than_the_next_overlap_are_forgotten():
    clock = Clock(10 * HOUR)
    plan = planner(clock, lookback=HOUR)
    cursor, _ = poll(plan, plan.first_cursor(), {"old": 9.1 * HOUR, "recent": 9.8 * HOUR})
    assert set(cursor.seen) == {"recent"}
    assert cursor.until == 10 * HOUR


def test_a_restart_inside_a_window_rereads_it_and_skips_what_was_delivered():
    clock = Clock(10 * HOUR)
    plan = planner(clock, lookback=HOUR)
    in_progress = plan.first_cursor()
    window = plan.next_window(in_progress)
    in_progress.remember("page-1-record", 9.9 * HOUR)
    committed = json.loads(json.dumps(in_progress.to_json()))  # what the registry held at the kill
    clock.now = 10 * HOUR + 5 * MINUTE
    restored = GraphCursor.from_json(committed)
    again = plan.next_window(restored)
    assert again.start == window.start and again.end >= window.end
    assert restored.has_seen("page-1-record")
    assert not restored.has_seen("page-2-record")


@pytest.mark.parametrize("value", [None, [], "x", {"until": "yesterday"}, {"seen": []}])
def test_a_cursor_that_is_not_ours_is_rejected(value):
    with pytest.raises(ValueError):
        GraphCursor.from_json(value)


def test_next_window_needs_a_start():
    with pytest.raises(ValueError):
        planner(Clock(0)).next_window(GraphCursor())


def test_window_never_ends_before_it_starts_when_the_clock_steps_back():
    clock = Clock(10 * HOUR)
    plan = planner(clock)
    clock.now = 9 * HOUR
    window = plan.next_window(GraphCursor(until=10 * HOUR))
    assert window.end >= window.start


def test_overlap_shrinks_with_the_time_between_a_windows_end_and_its_read():
    clock = Clock(10 * HOUR)
    plan = planner(clock, lookback=HOUR)
    cursor = plan.completed(plan.first_cursor(), PollWindow(9 * HOUR, 9.9 * HOUR, 10 * HOUR))
    assert plan.next_window(cursor).start == 9.9 * HOUR - 24 * MINUTE
    at_head = plan.completed(cursor, PollWindow(9.5 * HOUR, 10 * HOUR, 10 * HOUR))
    assert plan.next_window(at_head).start == 10 * HOUR - 30 * MINUTE


def test_a_stored_cursor_without_read_time_gets_the_full_overlap():
    plan = planner(Clock(10 * HOUR), lookback=HOUR)
    cursor = GraphCursor.from_json({"until": 9 * HOUR, "seen": {"a": 9 * HOUR - 60}})
    assert plan.next_window(cursor).start == 9 * HOUR - 30 * MINUTE
    assert GraphCursor.from_json(json.loads(json.dumps(cursor.to_json()))) == cursor


def test_a_late_record_is_still_caught_when_the_read_began_before_it_was_published():
    clock = Clock(10 * HOUR)
    plan = planner(clock, lookback=HOUR)
    listed = {"a": 9.5 * HOUR}
    cursor, first = poll(plan, plan.first_cursor(), listed)
    clock.now = 10 * HOUR + 20 * MINUTE
    listed["late"] = 10 * HOUR - 5 * MINUTE
    cursor, second = poll(plan, cursor, listed)
    assert (first, second) == (["a"], ["late"])


def test_a_smaller_chunk_asked_for_is_honoured_and_a_larger_one_capped():
    clock = Clock(100 * HOUR)
    plan = planner(clock)
    cursor = plan.first_cursor()
    assert plan.next_window(cursor, chunk=10 * MINUTE).end == cursor.until + 10 * MINUTE
    assert plan.next_window(cursor, chunk=48 * HOUR).end == cursor.until + 6 * HOUR
