"""ThrottledWarning: one line per interval, and every held-back occurrence counted in a later line."""

from __future__ import annotations

import logging

from forwarder.inputs.syslog_throttle import ThrottledWarning


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def messages(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records]


def test_first_warning_logged_then_one_per_interval_with_the_count(caplog):
    clock = Clock()
    throttle = ThrottledWarning(logging.getLogger("throttle-test"), 60.0, clock)
    with caplog.at_level(logging.WARNING, logger="throttle-test"):
        for _ in range(240):  # four a second for a minute
            throttle.warn("accept failed: %s", "too many open files")
            clock.now += 0.25
        throttle.warn("accept failed: %s", "too many open files")
    assert messages(caplog) == [
        "accept failed: too many open files",
        "accept failed: too many open files (239 earlier warning(s) like this in the last 60s were not logged)",
    ]


def test_flush_reports_held_back_warnings_once_their_interval_is_over(caplog):
    clock = Clock()
    throttle = ThrottledWarning(logging.getLogger("throttle-test"), 60.0, clock)
    with caplog.at_level(logging.WARNING, logger="throttle-test"):
        throttle.warn("reset from %s", "a")
        throttle.warn("reset from %s", "b")
        throttle.warn("reset from %s", "c")
        throttle.flush()
        assert len(caplog.records) == 1
        clock.now += 60.0
        throttle.flush()
        throttle.flush()
    assert messages(caplog) == [
        "reset from a", "reset from c (2 time(s) since the last report; only this one is logged)",
    ]


def test_flush_now_reports_at_once_and_nothing_when_nothing_was_held_back(caplog):
    throttle = ThrottledWarning(logging.getLogger("throttle-test"), 60.0, Clock())
    with caplog.at_level(logging.WARNING, logger="throttle-test"):
        throttle.flush(now=True)
        throttle.warn("x")
        throttle.warn("x")
        throttle.flush(now=True)
    assert messages(caplog) == ["x", "x (1 time(s) since the last report; only this one is logged)"]
