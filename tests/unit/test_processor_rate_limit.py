"""rate_limit: Filebeat's documented examples, token refill and bursts, groups, drop reporting and `when`."""

from __future__ import annotations

import logging

from forwarder.pipeline.event import Event
from forwarder.processors.rate_limit import DropReport, TokenBuckets, parse_limit
from tests.unit.test_processors import build, build_with_problems, run


class ManualClock:
    """Time that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_documented_example_lets_the_limit_through_then_drops():
    processors = build("""
processors:
- rate_limit:
    limit: "10000/m"
""")
    passed = sum(run(processors, {"n": n}) is not None for n in range(20_000))
    assert 10_000 <= passed < 20_000


def test_documented_fields_example_limits_each_group_separately():
    processors = build("""
processors:
- rate_limit:
    fields:
    - "cloudfoundry.org.name"
    limit: "2/h"
    when.has_fields: [cloudfoundry]
""")
    org = {"cloudfoundry": {"org": {"name": "a"}}}
    other = {"cloudfoundry": {"org": {"name": "b"}}}
    results = [run(processors, {**org}) is not None for _ in range(3)] + [run(processors, {**other}) is not None]
    assert results == [True, True, False, True]
    assert all(run(processors, {"message": n}) is not None for n in range(5))


def test_tokens_refill_at_the_rate_and_burst_multiplier_raises_the_capacity():
    clock = ManualClock()
    buckets = TokenBuckets(per_second=parse_limit("2/s"), capacity=2 * 3, gc_interval=60, clock=clock)
    assert [buckets.allow("k") for _ in range(7)] == [True] * 6 + [False]
    clock.now += 0.5
    assert [buckets.allow("k") for _ in range(2)] == [True, False]


def test_quiet_groups_are_collected():
    clock = ManualClock()
    buckets = TokenBuckets(per_second=1.0, capacity=1.0, gc_interval=10, clock=clock)
    for key in range(100):
        buckets.allow(key)
    clock.now += 11
    buckets.allow("new")
    assert len(buckets) == 1


def test_drops_are_counted_and_logged_at_most_once_a_minute(caplog):
    clock = ManualClock()
    report = DropReport("1/s", clock=clock)
    with caplog.at_level(logging.WARNING, logger="forwarder.processors.rate_limit"):
        for _ in range(5):
            report.dropped()
        clock.now += 61
        report.dropped()
    assert report.total == 6
    assert [record.getMessage() for record in caplog.records] == [
        "rate_limit 1/s: dropped 1 event(s) above the limit (1 in all; counted as filtered in /stats)",
        "rate_limit 1/s: dropped 5 event(s) above the limit (6 in all; counted as filtered in /stats)",
    ]


def test_drops_are_counted_as_filtered_by_the_pipeline(harness):
    harness.pipeline.global_processors = build("processors:\n- rate_limit: {limit: 1/h}\n")
    client = harness.connect("filestream", input_id="logs")
    for n in range(3):
        client.publish(Event({"message": str(n)}))
    [delivered] = harness.take(1)
    assert delivered.fields["message"] == "0"
    assert client.stats.filtered == 2


def test_bad_limits_are_config_errors():
    for limit in ("10/d", "fast", "0/s"):
        _, problems = build_with_problems(f"processors:\n- rate_limit: {{limit: '{limit}'}}\n")
        assert problems and "limit" in problems[0], limit
