"""A problem that repeats many times a second is logged once a minute, with a count of the rest."""

from __future__ import annotations

import logging

from forwarder.log_throttle import ThrottledLog


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def messages(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records]


def test_first_at_once_then_one_per_interval_with_the_count(caplog):
    clock = Clock()
    throttle = ThrottledLog(logging.getLogger("throttle-test"), interval=60.0, clock=clock)
    with caplog.at_level(logging.WARNING, logger="throttle-test"):
        for _ in range(240):  # four a second for a minute
            throttle.report("accept failed: %s", "too many open files")
            clock.now += 0.25
        throttle.report("accept failed: %s", "too many open files")
    assert messages(caplog) == [
        "accept failed: too many open files",
        "accept failed: too many open files (239 more like this since the last report were not logged)",
    ]


def test_failures_at_error_level_and_the_recovery_says_how_many_attempts_failed(caplog):
    clock = Clock()
    failures = ThrottledLog(logging.getLogger("throttle-test"), logging.ERROR, 60.0, clock)
    with caplog.at_level(logging.WARNING, logger="throttle-test"):
        for _ in range(30):  # one registry flush a second for 30 s
            failures.report("cannot write journal %s", "j.log")
            clock.now += 1
        assert messages(caplog) == ["cannot write journal j.log"]
        clock.now += 30
        failures.report("cannot write journal %s", "j.log")
        failures.recovered("writing the journal again in %s", "dir")
    assert messages(caplog)[1:] == ["cannot write journal j.log (29 more like this since the last report were not "
                                    "logged)", "writing the journal again in dir after 31 failed attempt(s)"]
    assert [record.levelname for record in caplog.records] == ["ERROR", "ERROR", "WARNING"]


def test_recovery_without_failures_logs_nothing_and_a_new_failure_is_logged_at_once(caplog):
    failures = ThrottledLog(logging.getLogger("throttle-test"), clock=Clock())
    with caplog.at_level(logging.WARNING, logger="throttle-test"):
        failures.recovered("fine again")
        failures.report("broken")
        failures.recovered("fine again")
        failures.report("broken")
    assert messages(caplog) == ["broken", "fine again after 1 failed attempt(s)", "broken"]


def test_flush_reports_held_back_occurrences_once_their_interval_is_over(caplog):
    clock = Clock()
    throttle = ThrottledLog(logging.getLogger("throttle-test"), interval=60.0, clock=clock)
    with caplog.at_level(logging.WARNING, logger="throttle-test"):
        throttle.report("reset from %s", "a")
        throttle.report("reset from %s", "b")
        throttle.report("reset from %s", "c")
        throttle.flush()
        assert len(caplog.records) == 1
        clock.now += 60.0
        throttle.flush()
        throttle.flush()
    assert messages(caplog) == [
        "reset from a", "reset from c (2 time(s) since the last report; only this one is logged)",
    ]


def test_flush_now_reports_at_once_and_nothing_when_nothing_was_held_back(caplog):
    throttle = ThrottledLog(logging.getLogger("throttle-test"), interval=60.0, clock=Clock())
    with caplog.at_level(logging.WARNING, logger="throttle-test"):
        throttle.flush(now=True)
        throttle.report("x")
        throttle.report("x")
        throttle.flush(now=True)
    assert messages(caplog) == ["x", "x (1 time(s) since the last report; only this one is logged)"]
