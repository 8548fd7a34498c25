"""Reconnect backoff and slow-start window sizing."""

from __future__ import annotations

import random

from forwarder.backoff import Backoff
from forwarder.outputs.logstash.pacing import WindowSize


def test_backoff_doubles_with_jitter_up_to_the_maximum_and_resets() -> None:
    backoff = Backoff(1.0, 60.0, rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(10)]
    ceilings = [1, 2, 4, 8, 16, 32, 60, 60, 60, 60]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert len(set(delays)) == len(delays)  # jittered, not lockstep
    backoff.reset()
    assert 0.5 <= backoff.next_delay() <= 1.0


def test_backoff_survives_a_very_long_outage() -> None:
    backoff = Backoff(1.0, 60.0)
    for _ in range(10_000):
        delay = backoff.next_delay()
    assert 30.0 <= delay <= 60.0


def test_without_slow_start_the_window_is_the_whole_batch() -> None:
    window = WindowSize(2048, slow_start=False)
    assert window.size == 2048
    window.shrink()
    window.grow()
    assert window.size == 2048


def test_slow_start_grows_by_half_and_halves_on_error() -> None:
    window = WindowSize(100, slow_start=True)
    sizes = [window.size]
    for _ in range(7):
        window.grow()
        sizes.append(window.size)
    assert sizes == [10, 15, 22, 33, 49, 73, 100, 100]
    window.shrink()
    assert window.size == 50
    for _ in range(10):
        window.shrink()
    assert window.size == 1
    window.grow()
    assert window.size == 2


def test_slow_start_never_exceeds_a_small_bulk_max_size() -> None:
    window = WindowSize(4, slow_start=True)
    assert window.size == 4
    window.grow()
    assert window.size == 4
