"""Warnings that a misbehaving peer or a full system can trigger many times a second.

"accept failed: too many open files" repeats four times a second for as long as
the descriptors are exhausted; one line a minute says the same, with a count, and
leaves the log readable.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

REPORT_INTERVAL = 60.0


class ThrottledWarning:
    """Logs the first warning, then at most one per `interval`, counting those it held back.

    The count rides on the next line logged; `flush()` (called from the
    listener's idle ticks and at stop) reports a count whose interval is over
    even when the warning stopped recurring, so no occurrence goes unreported.
    """

    def __init__(self, log: logging.Logger, interval: float = REPORT_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._log = log
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._last_logged: float | None = None
        self._held_back = 0
        self._last_held: tuple[str, tuple[Any, ...]] = ("", ())

    def warn(self, message: str, *args: Any) -> None:
        with self._lock:
            now = self._clock()
            if self._last_logged is not None and now - self._last_logged < self._interval:
                self._held_back += 1
                self._last_held = (message, args)
                return
            held_back, self._held_back = self._held_back, 0
            self._last_logged = now
        if held_back:
            self._log.warning(message + " (%d earlier warning(s) like this in the last %.0fs were not logged)",
                              *args, held_back, self._interval)
        else:
            self._log.warning(message, *args)

    def flush(self, now: bool = False) -> None:
        """Reports the warnings held back once their interval is over, or at once when `now` (stopping)."""
        with self._lock:
            if not self._held_back or (not now and self._clock() - (self._last_logged or 0.0) < self._interval):
                return
            held_back, self._held_back = self._held_back, 0
            message, args = self._last_held
            self._last_logged = self._clock()
        self._log.warning(message + " (%d time(s) since the last report; only this one is logged)", *args, held_back)
