"""Exponential delay with jitter, shared by everything that retries: outputs reconnecting, inputs re-listing."""

from __future__ import annotations

import random


class Backoff:
    """Exponential delay with jitter (half fixed, half random), reset after a window is acknowledged.

    The jitter keeps many forwarders that lost the same Logstash from
    reconnecting in lockstep when it comes back.
    """

    def __init__(self, initial: float, maximum: float, rng: random.Random | None = None) -> None:
        self.initial = initial
        self.maximum = max(initial, maximum)
        self._rng = rng or random.Random()
        self._failures = 0

    def next_delay(self) -> float:
        ceiling = min(self.maximum, self.initial * (2 ** min(self._failures, 32)))
        self._failures += 1
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def reset(self) -> None:
        self._failures = 0
