"""Finds a worker process that stopped answering and kills it, so that the pool replaces it.

A worker stuck in one record (a processor in an endless loop, a pathological
pattern) holds its input's chunks forever: the input stalls and nothing says
why. Killing it makes it an ordinary dead worker: the pool forks another and
gives it the chunks again, and a chunk that three workers died on is built in
the main process (WorkerPool._replace).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time

from forwarder.pipeline.worker_chunks import Slot
from forwarder.platform import current_platform

log = logging.getLogger("forwarder.workers")

# Chunks of a few thousand records take seconds even on a loaded machine.
STALLED_AFTER = 120.0


def watch_workers(slots: list[Slot], stalled_after: float, closed: threading.Event) -> None:
    """Until `closed`: kills each worker that holds chunks and has returned nothing for `stalled_after`.

    Only while its collector waits for it: a collector held by a full queue (the output is down) reads
    no results, and that is not the worker's fault.
    """
    while not closed.wait(min(5.0, stalled_after / 4)):
        now = time.monotonic()
        for slot in slots:
            with slot.lock:
                if not (slot.pid and slot.pending and slot.receiving and now - slot.progress_at > stalled_after):
                    continue
                pid, held = slot.pid, len(slot.pending)
                slot.progress_at = now
                # A worker builds its chunks in the order they were sent: the oldest is the one it hangs on.
                next(iter(slot.pending.values())).hung = True
            log.error("worker process %d has returned nothing for %.0f s while holding %d chunk(s); it is stopped "
                      "and a new one is given its chunks", pid, stalled_after, held)
            with contextlib.suppress(OSError):
                current_platform().kill_worker(pid)
