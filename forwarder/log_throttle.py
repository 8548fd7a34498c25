"""One log line a minute for a problem that repeats many times a second, with a count of those not logged.

"accept failed: too many open files" repeats four times a second while the
descriptors are exhausted, and a full disk fails every registry flush; a line
for each would bury everything else in the log (and fill the disk the operator
is trying to free). The first occurrence is logged at once, later ones at most
once per `interval` with the number held back; `flush()` reports a count whose
interval is over even when the problem stopped recurring, and `recovered()`
says how many attempts failed once one succeeds again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

REPORT_INTERVAL = 60.0


class ThrottledLog:
    def __init__(self, logger: logging.Logger, level: int = logging.WARNING, interval: float = REPORT_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._log = logger
        self._level = level
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._last_logged: float | None = None
        self._held_back = 0
        self._last_held: tuple[str, tuple[Any, ...]] = ("", ())
        self.failures = 0
        """Occurrences since the last `recovered()`, logged or not."""

    def report(self, message: str, *args: Any) -> None:
        """Logs `message` unless one was logged less than `interval` ago; counts it either way."""
        with self._lock:
            self.failures += 1
            now = self._clock()
            if self._last_logged is not None and now - self._last_logged < self._interval:
                self._held_back += 1
                self._last_held = (message, args)
                return
            held_back, self._held_back = self._held_back, 0
            self._last_logged = now
        if held_back:
            self._log.log(self._level, message + " (%d more like this since the last report were not logged)",
                          *args, held_back)
        else:
            self._log.log(self._level, message, *args)

    def flush(self, now: bool = False) -> None:
        """Reports the occurrences held back once their interval is over, or at once when `now` (stopping)."""
        with self._lock:
            if not self._held_back or (not now and self._clock() - (self._last_logged or 0.0) < self._interval):
                return
            held_back, self._held_back = self._held_back, 0
            message, args = self._last_held
            self._last_logged = self._clock()
        self._log.log(self._level, message + " (%d time(s) since the last report; only this one is logged)",
                      *args, held_back)

    def recovered(self, message: str, *args: Any) -> None:
        """After failures, logs `message` (a warning) with how many attempts failed; then starts over."""
        with self._lock:
            failures, self.failures = self.failures, 0
            self._held_back = 0
            self._last_logged = None
        if failures:
            self._log.warning(message + " after %d failed attempt(s)", *args, failures)
