"""The worker loop of the outputs that write locally (file, console).

Takes a batch, delivers it, acknowledges it; if delivery fails (disk full,
closed pipe) the same batch is retried with backoff until it succeeds or the
forwarder stops, so a local write error never loses events.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from forwarder.backoff import Backoff
from forwarder.pipeline.queue import Batch, EventQueue
from forwarder.stats import OutputStats

log = logging.getLogger("forwarder.output")


class BatchWorker:
    def __init__(self, name: str, deliver: Callable[[Batch], None], stats: OutputStats,
                 bulk_max_size: int = 2048, backoff_init: float = 1.0, backoff_max: float = 60.0) -> None:
        self.name = name
        self._deliver = deliver
        self._stats = stats
        self._bulk_max_size = bulk_max_size
        self._backoff = Backoff(backoff_init, backoff_max)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, queue: EventQueue) -> None:
        self._thread = threading.Thread(target=self._run, args=(queue,), name=f"output-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self, queue: EventQueue) -> None:
        while not self._stop.is_set():
            batch = queue.get_batch(self._bulk_max_size, wait=0.2)
            if batch is None:
                continue
            self._stats.batches += 1
            self._stats.in_flight = len(batch)
            while not self._stop.is_set():
                try:
                    self._deliver(batch)
                except Exception as exc:
                    # Whatever failed, the batch is retried, never dropped.
                    self._stats.errors += 1
                    self._stats.retries += 1
                    self._stats.last_error = str(exc)
                    delay = self._backoff.next_delay()
                    log.error("%s output: write failed (%s); retrying in %.1fs", self.name, exc, delay)
                    self._stop.wait(delay)
                    continue
                self._backoff.reset()
                self._stats.acked += len(batch)
                batch.ack_all()
                break
            self._stats.in_flight = 0
