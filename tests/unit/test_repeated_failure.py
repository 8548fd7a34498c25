"""A failure repeated on every flush is logged once a minute with a count, and its end is logged with the total."""

from __future__ import annotations

import logging

from forwarder.repeated_failure import RepeatedFailureLog


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def messages(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records]


def test_first_failure_at_once_then_once_a_minute_with_the_repeats_counted(caplog):
    clock = Clock()
    failures = RepeatedFailureLog(logging.getLogger("test.repeated"), interval=60.0, clock=clock)
    with caplog.at_level(logging.WARNING):
        for _ in range(30):  # one flush a second for 30 s
            failures.failed("cannot write journal %s", "j.log")
            clock.now += 1
        assert messages(caplog) == ["cannot write journal j.log"]
        clock.now += 30
        failures.failed("cannot write journal %s", "j.log")
        assert messages(caplog)[1:] == ["cannot write journal j.log (29 more failure(s) since the last report)"]
        failures.succeeded("writing the journal again in %s", "dir")
    assert messages(caplog)[2:] == ["writing the journal again in dir after 31 failed attempt(s)"]
    assert [record.levelname for record in caplog.records] == ["ERROR", "ERROR", "WARNING"]


def test_success_without_failures_logs_nothing_and_a_new_failure_is_logged_at_once(caplog):
    clock = Clock()
    failures = RepeatedFailureLog(logging.getLogger("test.repeated"), clock=clock)
    with caplog.at_level(logging.WARNING):
        failures.succeeded("fine again")
        failures.failed("broken")
        failures.succeeded("fine again")
        failures.failed("broken")
    assert messages(caplog) == ["broken", "fine again after 1 failed attempt(s)", "broken"]
