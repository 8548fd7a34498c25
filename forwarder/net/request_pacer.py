"""A request budget shared by every poller that talks to one API as one app in one tenant.

Microsoft counts requests per app and tenant (Graph reporting: 5 per 10 s; O365
Management API: 2000 per minute), and throttled requests still consume quota, so
pacing ourselves is cheaper than being told to wait. The pacer is a sliding
window: at most `requests` grants in any `per_seconds` interval. When the server
does say "wait" (429 with Retry-After), `defer` holds every sharer back, not
only the poller that received it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

Clock = Callable[[], float]
Sleeper = Callable[[threading.Event, float], object]


def wait_on_stop(stop: threading.Event, seconds: float) -> object:
    """Default sleeper: a wait that ends early when the forwarder stops."""
    return stop.wait(seconds)


class RequestPacer:
    """Thread-safe sliding-window gate; inject `clock` and `sleep` to test it without real waiting."""

    def __init__(
        self,
        requests: int,
        per_seconds: float,
        clock: Clock = time.monotonic,
        sleep: Sleeper = wait_on_stop,
    ) -> None:
        if requests < 1:
            raise ValueError("requests must be at least 1")
        if per_seconds <= 0:
            raise ValueError("per_seconds must be positive")
        self.requests = requests
        self.per_seconds = per_seconds
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._granted: deque[float] = deque()
        self._blocked_until = 0.0
        self.waits = 0
        self.seconds_waited = 0.0

    def acquire(self, stop: threading.Event) -> bool:
        """Blocks until a request may be sent; False when `stop` was set first."""
        waited = False
        while not stop.is_set():
            with self._lock:
                now = self._clock()
                delay = self._delay(now)
                if delay <= 0:
                    self._granted.append(now)
                    return True
                self.seconds_waited += delay
                if not waited:
                    self.waits += 1
                    waited = True
            self._sleep(stop, delay)
        return False

    def defer(self, seconds: float) -> None:
        """Holds back every sharer for `seconds` from now (the server asked us to wait)."""
        with self._lock:
            self._blocked_until = max(self._blocked_until, self._clock() + seconds)

    def _delay(self, now: float) -> float:
        horizon = now - self.per_seconds
        while self._granted and self._granted[0] <= horizon:
            self._granted.popleft()
        delay = self._blocked_until - now
        if len(self._granted) >= self.requests:
            delay = max(delay, self._granted[0] + self.per_seconds - now)
        return delay
