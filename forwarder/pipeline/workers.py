"""`forwarder.workers`: event building, mapping and encoding in worker processes, fed by the inputs.

Threads share one interpreter lock, so a forwarder in one process uses one
core however many it has. With workers, an input only reads: it hands raw
payloads (lines, rows, message bodies) to `PipelineClient.publish_raw`, the
chunk goes pickled to the least busy worker process, which builds, maps and
encodes the events (worker_process.py), and a collector thread here puts the
encoded documents on the queue. Everything that makes delivery safe stays in
this process: sequence numbers and cursors are tracked with the acker when a
chunk is submitted, so cursors commit in publish order whatever order the
workers finish in, and a chunk is kept until its result is back — a worker
that dies (SIGKILL, out of memory) is forked again and given its chunks
again, so nothing is lost. A chunk that three workers in turn died on is
built here instead. At most `CHUNKS_PER_INPUT` chunks of one input are out at
once, and records out in workers count against the queue's bound: an input
that outruns the workers or the output waits, and what a crash can replay
stays what the queue holds, as without workers.
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import threading
import time
from collections.abc import Sequence
from queue import Empty
from typing import Any

from forwarder.pipeline.client import Builder, Cursors, PipelineClient
from forwarder.pipeline.worker_chunks import Chunk, InputLink, Slot, abandon
from forwarder.pipeline.worker_process import (
    Channel,
    ClientFactory,
    Encode,
    EncodedChunk,
    Zygote,
    add_counter_changes,
    encode_chunk,
    log_worker_records,
)
from forwarder.pipeline.worker_watchdog import STALLED_AFTER, watch_workers
from forwarder.platform import current_platform

log = logging.getLogger("forwarder.workers")

CHUNKS_PER_INPUT = 4
DROPPABLE_CHUNKS_PER_INPUT = 16
# How long a droppable chunk waits for room before it is dropped (see `submit`).
DROPPABLE_WAIT_SECONDS = 1.0
MAX_ATTEMPTS = 3


def worker_count(setting: str | int) -> int:
    """How many worker processes `forwarder.workers` asks for here; 1 means none (all in this process)."""
    platform = current_platform()
    if not platform.forks_workers():
        return 1
    return platform.usable_cores() if setting == "auto" else int(setting)


class WorkerPool:
    def __init__(self, count: int, make_clients: ClientFactory, encode: Encode,
                 stalled_after: float = STALLED_AFTER) -> None:
        """Forks the zygote: call before any thread of the forwarder starts."""
        self.count = count
        self._stalled_after = stalled_after
        self._closed = threading.Event()
        self._encode = encode
        self._zygote = Zygote(make_clients, encode)
        self._setup: Any = None
        self._slots: list[Slot] = []
        self._links: list[InputLink] = []
        self._watched_queues: list[Any] = []
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self._next_chunk = 0
        self._closing = False
        # Records submitted and not yet on the queue (or dropped): they count against its bound.
        self._records_out = 0
        # Set when a dead worker cannot be replaced (the zygote is gone): every chunk is built here from then on.
        self._local = False
        self._unpicklable_logged: set[str] = set()
        self.restarts = 0

    def start(self, setup: Any) -> None:
        """Forks the workers; `setup` (the agent identity) is what each needs before its first chunk."""
        self._setup = setup
        for number in range(self.count):
            pid, connection = self._spawn()
            slot = Slot(number, pid, connection)
            self._slots.append(slot)
            threading.Thread(target=self._collect, args=(slot,), name=f"worker-results-{number}", daemon=True).start()
            threading.Thread(target=self._send, args=(slot,), name=f"worker-chunks-{number}", daemon=True).start()
        threading.Thread(target=watch_workers, args=(self._slots, self._stalled_after, self._closed),
                         name="worker-watchdog", daemon=True).start()
        log.info("%d worker processes build, map and encode events (pids %s)", self.count,
                 ", ".join(str(slot.pid) for slot in self._slots))

    def attach(self, client: PipelineClient, index: int, queue: Any) -> None:
        client.workers = InputLink(self, index, client, queue)
        self._links.append(client.workers)
        if getattr(queue, "max_events", None) is not None and queue not in self._watched_queues:
            self._watched_queues.append(queue)
            queue.on_space(self._space_freed)

    def _space_freed(self) -> None:
        """An input waiting for the queue's bound goes on as soon as an acknowledgement frees space."""
        with self._lock:
            self._room.notify_all()

    def _spawn(self) -> tuple[int, Channel]:
        pid, connection = self._zygote.spawn()
        connection.send(self._setup)
        return pid, connection

    # ----- the inputs' side ----------------------------------------------------

    def submit(self, link: InputLink, build: Builder, context: Any, payloads: Sequence[Any], cursor: Cursors,
               wait: bool) -> bool:
        client = link.client
        acker = client.acker
        if not payloads:
            acker.done(acker.track(cursor))
            return True
        if self._local:  # no worker can be had: built and published here, in this thread
            return link.client.publish_raw_here(build, context, payloads, cursor, wait)
        count = len(payloads)
        give_up_at = time.monotonic() + DROPPABLE_WAIT_SECONDS
        with self._lock:
            while not self._closing and (link.in_flight >= CHUNKS_PER_INPUT or self._over_queue_bound(link, count)):
                if not wait:
                    # A source that cannot wait long (UDP): past the chunk limit its chunks still go, up to a hard
                    # cap (a disk queue has no bound in events); when the queue has no room it waits a moment,
                    # while the socket's receive buffer holds a burst, then drops the chunk, counted.
                    if not self._over_queue_bound(link, count) and link.in_flight < DROPPABLE_CHUNKS_PER_INPUT:
                        break
                    if time.monotonic() >= give_up_at:
                        client.stats.dropped += count
                        return True
                # Woken when a chunk comes back or the queue frees space (`_space_freed`).
                self._room.wait(0.5 if wait else max(0.0, min(0.5, give_up_at - time.monotonic())))
            if self._closing:
                return False
            link.in_flight += 1
            self._records_out += count
            chunk_id = self._next_chunk
            self._next_chunk += 1
            order = link.submitted
            link.submitted += 1
        first = acker.track_each(cursor) if isinstance(cursor, list) else acker.track_many(len(payloads), cursor)
        try:
            message = pickle.dumps((chunk_id, link.index, build, context, payloads), pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError) as error:
            # Built here, and queued in its place among the input's chunks.
            self._warn_unpicklable(link, build, error)
            chunk = Chunk(chunk_id, link, first, count, b"", droppable=not wait, order=order)
            chunk.link.deliver(chunk, encode_chunk(client, self._encode, build, context, payloads))
            return True
        chunk = Chunk(chunk_id, link, first, count, message, droppable=not wait, order=order)
        slot = min(self._slots, key=lambda candidate: len(candidate.pending))
        with slot.lock:
            if slot.pid:
                if not slot.pending:
                    slot.progress_at = time.monotonic()
                slot.pending[chunk_id] = chunk
                slot.outbox.put(message)
                return True
        self._build_here(chunk)
        return True

    def _warn_unpicklable(self, link: InputLink, build: Builder, error: Exception) -> None:
        """A chunk that cannot be pickled (a builder that is not a module-level function) is built here."""
        name = getattr(build, "__qualname__", repr(build))
        if name not in self._unpicklable_logged:
            self._unpicklable_logged.add(name)
            log.warning("%s: builder %s cannot go to a worker process (%s); its events are built in the main "
                        "process", link.client.settings.input_id, name, error)

    def close_intake(self) -> None:
        """No new chunks from now on (shutdown); inputs waiting for room return False."""
        with self._lock:
            self._closing = True
            self._room.notify_all()

    def close(self) -> None:
        """Ends the workers and the zygote; what they still held is abandoned, to be read again at the next start."""
        self.close_intake()
        self._closed.set()
        for slot in self._slots:
            slot.outbox.put(None)
            with slot.lock:
                slot.connection.close()
                chunks, slot.pending = list(slot.pending.values()), {}
            for chunk in chunks:
                abandon(chunk, 0)
        for link in self._links:
            with link.queue_lock:
                for chunk, _results in link.finished.values():
                    abandon(chunk, 0)
                link.finished.clear()
        self._zygote.close()

    def snapshot(self) -> dict[str, Any]:
        return {"count": self.count, "restarts": self.restarts, "pids": [slot.pid for slot in self._slots],
                "chunks_in_flight": sum(len(slot.pending) for slot in self._slots)}

    def _over_queue_bound(self, link: InputLink, count: int) -> bool:
        """True while the queue, with the records out in workers and these, would hold more than its bound.

        One chunk may always go when the queue and the workers are empty, however large. A disk queue has
        no bound in events: it is bounded on disk, and the workers only by CHUNKS_PER_INPUT.
        """
        bound = getattr(link.queue, "max_events", None)
        queued = link.queue.active_events
        if bound is None or (not queued and not self._records_out):
            return False
        return queued + self._records_out + count > bound

    def release(self, link: InputLink, count: int) -> None:
        """A chunk of `count` records is no longer out: queued, dropped or abandoned (InputLink.deliver)."""
        with self._lock:
            link.in_flight -= 1
            self._records_out -= count
            self._room.notify_all()

    # ----- the results' side ---------------------------------------------------

    def _collect(self, slot: Slot) -> None:
        while True:
            # Time spent queuing the last result (a full queue) is not the worker's: its clock starts now.
            slot.progress_at = time.monotonic()
            slot.receiving = True
            try:
                chunk_id, results, changes, records = pickle.loads(slot.connection.recv_bytes())
            except (EOFError, OSError):
                slot.receiving = False
                if self._closing or not self._replace(slot):
                    self._abandon_pending(slot)
                    return
                continue
            except Exception as error:  # a result that cannot be read: the worker is replaced, its chunks resent
                log.error("worker process %d sent a result that cannot be read (%s: %s); it is replaced", slot.pid,
                          type(error).__name__, error)
                with contextlib.suppress(OSError):
                    current_platform().kill_worker(slot.pid)
                continue
            slot.receiving = False
            with slot.lock:
                slot.progress_at = time.monotonic()
                chunk = slot.pending.pop(chunk_id, None)
            if chunk is None:
                continue
            try:
                log_worker_records(records)
                stats = chunk.link.client.stats
                filtered, extra = changes
                with self._lock:  # two collectors may report for one input
                    stats.filtered += filtered
                    add_counter_changes(stats.extra, extra)
                chunk.link.deliver(chunk, results)
            except Exception as error:
                # A defect here must not end the collector: its slot's chunks would never finish.
                log.error("%s: the result of a chunk of %d record(s) cannot be queued (%s: %s); they are not "
                          "committed and are read again at the next start", chunk.link.client.settings.input_id,
                          chunk.count, type(error).__name__, error)
                chunk.link.deliver(chunk, None)

    def _abandon_pending(self, slot: Slot) -> None:
        """What a worker held when it ended at shutdown: abandoned now, so the shutdown does not wait for it."""
        with slot.lock:
            chunks, slot.pending = list(slot.pending.values()), {}
        for chunk in chunks:
            chunk.link.deliver(chunk, None)

    def _send(self, slot: Slot) -> None:
        """Writes the slot's chunks to its worker; a chunk lost with a dead worker is sent again by `_replace`
        (one sent twice is built twice and its second result ignored)."""
        while True:
            message = slot.outbox.get()
            if message is None:
                return
            with contextlib.suppress(OSError):
                slot.connection.send_bytes(message)

    def _replace(self, slot: Slot) -> bool:
        """Forks a new worker in place of a dead one and gives it the dead one's chunks, in order.

        False when no new worker can be had: then the pool builds everything here from now on.
        """
        with slot.lock:
            slot.connection.close()
            if self._closing:
                return False
            old_pid = slot.pid
            self.restarts += 1
            slot.progress_at = time.monotonic()
            try:
                slot.pid, slot.connection = self._spawn()
            except OSError as error:
                log.error("worker process %d ended and no new one can be started (%s); events are built in the "
                          "main process from now on", old_pid, error)
                slot.pid = 0
                self._local = True
            chunks = list(slot.pending.values())
            retry = [chunk for chunk in chunks if chunk.attempts < MAX_ATTEMPTS and slot.pid]
            with contextlib.suppress(Empty):
                while True:
                    slot.outbox.get_nowait()
            if self._closing:
                slot.outbox.put(None)  # close() may have asked the sender to end before the drain
            for chunk in retry:
                chunk.attempts += 1
                slot.outbox.put(chunk.message)
            here = [chunk for chunk in chunks if chunk not in retry]
            for chunk in here:
                del slot.pending[chunk.id]
        if slot.pid:
            log.warning("worker process %d ended; worker %d restarted as pid %d and given the %d chunk(s) it held "
                        "again", old_pid, slot.number, slot.pid, len(retry))
        for chunk in here:
            self._build_here(chunk)
        return bool(slot.pid)

    def _build_here(self, chunk: Chunk) -> None:
        client = chunk.link.client
        if chunk.hung:
            # Built here it would hang this process's input and output threads too: its records are given up.
            client.stats.extra["hung_records"] = client.stats.extra.get("hung_records", 0) + chunk.count
            log.error("%s: %d record(s) that worker processes hung on %d times are not sent (hung_records in "
                      "/stats)", client.settings.input_id, chunk.count, chunk.attempts)
            chunk.link.deliver(chunk, EncodedChunk([None] * chunk.count))
            return
        _chunk_id, _index, build, context, payloads = pickle.loads(chunk.message)
        if chunk.attempts >= MAX_ATTEMPTS:
            log.error("%s: %d worker processes in turn ended while building one chunk of %d record(s); it is built "
                      "in the main process", client.settings.input_id, chunk.attempts, chunk.count)
        chunk.link.deliver(chunk, encode_chunk(client, self._encode, build, context, payloads))
