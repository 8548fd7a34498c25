"""The runner's cycle collector: no collection on allocation counts, cycles still freed on its timer."""

from __future__ import annotations

import gc
import time
import weakref

from forwarder.runner import CycleCollector


class Node:
    def __init__(self) -> None:
        self.partner: Node | None = None


def test_cycles_are_freed_on_the_timer_and_python_gets_its_collector_back():
    collector = CycleCollector(interval=0.05)
    collector.start()
    try:
        assert not gc.isenabled()
        first, second = Node(), Node()
        first.partner, second.partner = second, first
        watcher = weakref.ref(first)
        del first, second
        deadline = time.monotonic() + 5
        while watcher() is not None:
            assert time.monotonic() < deadline, "the cycle was never collected"
            time.sleep(0.01)
    finally:
        collector.stop()
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0
