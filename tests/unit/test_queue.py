"""The queue blocks publishers when full and frees space only on acknowledgement."""

from __future__ import annotations

import threading
import time

import pytest

from forwarder.pipeline.event import Event
from forwarder.pipeline.queue import EventQueue, QueueClosed


def event(size=10):
    e = Event({"message": "x"})
    e.size = size
    return e


def test_put_blocks_until_a_batch_is_acknowledged():
    queue = EventQueue(max_events=2, max_bytes=10_000, flush_min_events=1, flush_timeout=0)
    queue.put(event())
    queue.put(event())
    put_done = threading.Event()
    threading.Thread(target=lambda: (queue.put(event()), put_done.set()), daemon=True).start()
    batch = queue.get_batch(2, wait=1)
    assert len(batch) == 2
    assert not put_done.wait(0.2), "taking a batch must not free space before it is acknowledged"
    batch.ack_through(1)
    assert put_done.wait(2)
    assert queue.active_events == 2


def test_byte_bound_blocks_but_an_oversized_event_passes_alone():
    queue = EventQueue(max_events=100, max_bytes=100, flush_min_events=1, flush_timeout=0)
    queue.put(event(500))
    assert queue.try_put(event(1)) is False
    queue.get_batch(10, wait=1).ack_all()
    assert queue.try_put(event(60)) is True
    assert queue.try_put(event(60)) is False


def test_batch_waits_for_min_events_while_events_keep_coming_up_to_flush_timeout():
    """Events every 10 ms keep a partial batch waiting past several quiet times, up to the flush timeout."""
    queue = EventQueue(max_events=1000, max_bytes=100_000, flush_min_events=500, flush_timeout=1.0, quiet=0.2)
    stop = threading.Event()

    def trickle():
        while not stop.wait(0.01):
            queue.try_put(event())

    queue.put(event())
    threading.Thread(target=trickle, daemon=True).start()
    started = time.monotonic()
    batch = queue.get_batch(1000, wait=1)
    waited = time.monotonic() - started
    stop.set()
    assert waited >= 0.9
    assert 1 < len(batch) < 500


def test_batch_goes_out_as_soon_as_min_events_are_there():
    queue = EventQueue(max_events=100, max_bytes=10_000, flush_min_events=5, flush_timeout=60, quiet=60)
    for _ in range(5):
        queue.put(event())
    started = time.monotonic()
    assert len(queue.get_batch(10, wait=1)) == 5
    assert time.monotonic() - started < 30


def test_partial_batch_goes_out_once_no_event_came_for_the_quiet_time():
    """The tail of a burst must not wait the whole flush timeout for events that are not coming."""
    queue = EventQueue(max_events=100, max_bytes=10_000, flush_min_events=50, flush_timeout=60, quiet=0.05)
    for _ in range(3):
        queue.put(event())
    started = time.monotonic()
    batch = queue.get_batch(100, wait=1)
    assert len(batch) == 3
    assert time.monotonic() - started < 30


def test_close_wakes_blocked_publishers_and_keeps_queued_events_drainable():
    queue = EventQueue(max_events=1, max_bytes=10_000, flush_min_events=1, flush_timeout=0)
    queue.put(event())
    raised = threading.Event()

    def publish():
        try:
            queue.put(event())
        except QueueClosed:
            raised.set()

    threading.Thread(target=publish, daemon=True).start()
    queue.close()
    assert raised.wait(2)
    assert len(queue.get_batch(10, wait=0.1)) == 1
    assert queue.get_batch(10, wait=0.1) is None


def test_two_workers_never_get_an_empty_batch():
    queue = EventQueue(max_events=100, max_bytes=10_000, flush_min_events=10, flush_timeout=0.5, quiet=30)
    results = []

    def worker():
        results.append(queue.get_batch(10, wait=1.0))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for _ in range(10):
        queue.put(event())
    for thread in threads:
        thread.join(5)
    assert sorted(len(r) if r is not None else 0 for r in results) == [0, 10]
    assert all(r is None or len(r) > 0 for r in results)


def test_put_many_fills_to_the_bound_then_waits_for_space_for_the_rest():
    queue = EventQueue(max_events=3, max_bytes=10_000, flush_min_events=1, flush_timeout=0)
    done = threading.Event()
    threading.Thread(target=lambda: (queue.put_many([event() for _ in range(5)]), done.set()), daemon=True).start()
    first = queue.get_batch(10, wait=5)
    assert len(first) == 3
    assert not done.is_set()
    first.ack_all()
    assert done.wait(5)
    assert len(queue.get_batch(10, wait=5)) == 2


def test_put_many_closed_part_way_says_how_many_went_in():
    queue = EventQueue(max_events=2, max_bytes=10_000, flush_min_events=1, flush_timeout=0)
    outcome: list[int] = []

    def put() -> None:
        try:
            queue.put_many([event() for _ in range(5)])
        except QueueClosed as closed:
            outcome.append(closed.queued)

    worker = threading.Thread(target=put, daemon=True)
    worker.start()
    deadline = time.monotonic() + 5
    while queue.ready_events < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    queue.close()
    worker.join(5)
    assert outcome == [2]


def test_space_listeners_hear_of_every_acknowledgement_that_frees_space():
    """The worker pool waits on its own lock for the queue's bound: the queue must wake it, not a poll."""
    queue = EventQueue(max_events=4, max_bytes=10_000, flush_min_events=1, flush_timeout=0)
    freed: list[int] = []
    queue.on_space(lambda: freed.append(queue.active_events))
    for _ in range(4):
        queue.put(event())
    batch = queue.get_batch(4, wait=1)
    assert freed == []
    batch.ack_through(1)
    batch.ack_all()
    assert freed == [3, 0]


def test_try_put_many_queues_in_order_what_fits_and_says_how_many():
    queue = EventQueue(max_events=3, max_bytes=10_000, flush_min_events=2, flush_timeout=0)
    events = [event() for _ in range(5)]
    assert queue.try_put_many(events) == 3
    assert queue.get_batch(5, wait=1).events == events[:3]
    assert queue.try_put_many([event()]) == 0
    queue.close()
    with pytest.raises(QueueClosed):
        queue.try_put_many([event()])
