"""RequestPacer against a simulated clock: the sleeper advances time instead of waiting."""

from __future__ import annotations

import threading
import time

import pytest

from forwarder.net.request_pacer import RequestPacer


class SimulatedTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, stop: threading.Event, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def grant_times(pacer: RequestPacer, sim: SimulatedTime, count: int) -> list[float]:
    stop = threading.Event()
    times = []
    for _ in range(count):
        assert pacer.acquire(stop)
        times.append(sim.now - 1000.0)
    return times


def test_graph_budget_five_per_ten_seconds() -> None:
    sim = SimulatedTime()
    pacer = RequestPacer(5, 10.0, clock=sim.clock, sleep=sim.sleep)
    times = grant_times(pacer, sim, 12)
    assert times == [0, 0, 0, 0, 0, 10, 10, 10, 10, 10, 20, 20]
    for start in range(len(times)):
        in_window = [t for t in times if times[start] <= t < times[start] + 10.0]
        assert len(in_window) <= 5
    assert pacer.waits == 2


def test_spread_out_requests_never_wait() -> None:
    sim = SimulatedTime()
    pacer = RequestPacer(2, 1.0, clock=sim.clock, sleep=sim.sleep)
    stop = threading.Event()
    for _ in range(10):
        assert pacer.acquire(stop)
        sim.now += 0.5
    assert sim.sleeps == []
    assert pacer.waits == 0


def test_sliding_window_frees_slots_one_by_one() -> None:
    sim = SimulatedTime()
    pacer = RequestPacer(3, 60.0, clock=sim.clock, sleep=sim.sleep)
    stop = threading.Event()
    for offset in (0.0, 20.0, 40.0):
        sim.now = 1000.0 + offset
        assert pacer.acquire(stop)
    sim.now = 1050.0
    assert pacer.acquire(stop)
    assert sim.now == pytest.approx(1060.0)
    assert pacer.acquire(stop)
    assert sim.now == pytest.approx(1080.0)


def test_defer_holds_back_every_sharer() -> None:
    sim = SimulatedTime()
    pacer = RequestPacer(100, 1.0, clock=sim.clock, sleep=sim.sleep)
    pacer.defer(7.5)
    assert pacer.acquire(threading.Event())
    assert sim.now == pytest.approx(1007.5)
    pacer.defer(1.0)
    pacer.defer(0.5)
    assert pacer.acquire(threading.Event())
    assert sim.now == pytest.approx(1008.5)
    assert pacer.seconds_waited == pytest.approx(8.5)


def test_stop_set_before_acquire_returns_false() -> None:
    sim = SimulatedTime()
    pacer = RequestPacer(1, 10.0, clock=sim.clock, sleep=sim.sleep)
    stop = threading.Event()
    stop.set()
    assert pacer.acquire(stop) is False


def test_stop_interrupts_real_wait_promptly() -> None:
    pacer = RequestPacer(1, 3600.0)
    stop = threading.Event()
    assert pacer.acquire(stop)
    result: list[bool] = []
    waiter = threading.Thread(target=lambda: result.append(pacer.acquire(stop)))
    started = time.monotonic()
    waiter.start()
    deadline = time.monotonic() + 5.0
    while pacer.waits == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    stop.set()
    waiter.join(5.0)
    assert result == [False]
    assert time.monotonic() - started < 2.0


def test_threads_share_one_budget() -> None:
    sim_lock = threading.Lock()
    sim = SimulatedTime()

    def sleep(stop: threading.Event, seconds: float) -> None:
        with sim_lock:
            sim.now += seconds

    pacer = RequestPacer(5, 10.0, clock=sim.clock, sleep=sleep)
    stop = threading.Event()
    granted: list[bool] = []

    def worker() -> None:
        for _ in range(5):
            granted.append(pacer.acquire(stop))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10.0)
    assert granted == [True] * 20
    assert sim.now - 1000.0 >= 30.0


def test_rejects_nonsense_budget() -> None:
    with pytest.raises(ValueError):
        RequestPacer(0, 10.0)
    with pytest.raises(ValueError):
        RequestPacer(5, 0)
