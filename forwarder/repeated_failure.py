"""One log line per minute for a failure that repeats on every attempt, with a count of the ones not logged.

A full disk fails every registry flush (every second, or every commit with
`flush: 0`); logging each one would bury everything else in the log, and
would itself fill the disk the operator is trying to free. The first
failure is logged at once, later ones at most once per `interval` with the
number of repeats since the last line, and the first success after failures
says how many attempts failed in all.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class RepeatedFailureLog:
    def __init__(self, logger: logging.Logger, interval: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._log = logger
        self._interval = interval
        self._clock = clock
        self._last_logged: float | None = None
        self._not_logged = 0
        self.failures = 0

    def failed(self, message: str, *args: object) -> None:
        """Logs `message` (an error) unless one was logged less than `interval` ago; counts it either way."""
        self.failures += 1
        now = self._clock()
        if self._last_logged is not None and now - self._last_logged < self._interval:
            self._not_logged += 1
            return
        if self._not_logged:
            message += f" ({self._not_logged} more failure(s) since the last report)"
        self._log.error(message, *args)
        self._last_logged = now
        self._not_logged = 0

    def succeeded(self, message: str, *args: object) -> None:
        """After failures, logs `message` (a warning) with how many attempts failed; then starts over."""
        if not self.failures:
            return
        self._log.warning(message + f" after {self.failures} failed attempt(s)", *args)
        self.failures = 0
        self._not_logged = 0
        self._last_logged = None
