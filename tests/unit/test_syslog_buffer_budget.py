"""BufferBudget: under the bound everyone reads; at the bound only the largest holder does, so frames complete."""

from __future__ import annotations

import threading

from forwarder.inputs.syslog_buffer_budget import BufferBudget


def test_at_the_bound_only_the_largest_holder_reads_and_room_returns_when_it_completes():
    budget = BufferBudget(100)
    small, large, empty = budget.join(), budget.join(), budget.join()
    budget.hold(small, 30)
    assert all(budget.has_room(key) for key in (small, large, empty))
    budget.hold(large, 70)
    assert budget.total == 100
    assert [budget.has_room(key) for key in (small, large, empty)] == [False, True, False]
    budget.hold(large, 0)  # its frame completed
    assert all(budget.has_room(key) for key in (small, large, empty))


def test_ties_go_to_the_oldest_connection_and_leaving_releases_its_bytes():
    budget = BufferBudget(10)
    first, second = budget.join(), budget.join()
    budget.hold(first, 5)
    budget.hold(second, 5)
    assert (budget.has_room(first), budget.has_room(second)) == (True, False)
    budget.leave(first)
    assert budget.total == 5 and budget.has_room(second)


def test_a_waiting_connection_wakes_when_the_largest_releases_or_on_stop():
    budget = BufferBudget(10)
    holder, waiter = budget.join(), budget.join()
    budget.hold(holder, 10)
    stop = threading.Event()
    woke = threading.Event()

    def wait() -> None:
        budget.wait_for_room(waiter, stop)
        woke.set()

    thread = threading.Thread(target=wait)
    thread.start()
    assert not woke.wait(0.05)
    budget.hold(holder, 0)
    assert woke.wait(5)
    thread.join(5)

    budget.hold(holder, 10)
    woke.clear()
    thread = threading.Thread(target=wait)
    thread.start()
    stop.set()
    assert woke.wait(5)
    thread.join(5)
