"""What the worker pool keeps for each chunk out in a worker, each worker process and each input.

workers.py moves chunks to the workers and their results back; here is the state it keeps, and
what happens to a finished chunk: queued in its input's order (`InputLink.deliver`), or, for the
records that never reached the queue, left uncommitted.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import count
from queue import SimpleQueue
from typing import Any

from forwarder.pipeline.acker import SharedAcknowledgement
from forwarder.pipeline.client import Builder, Cursors, PipelineClient
from forwarder.pipeline.event import Event
from forwarder.pipeline.queue import QueueClosed
from forwarder.pipeline.worker_process import Channel, EncodedChunk


@dataclass(eq=False)
class Chunk:
    id: int
    link: InputLink
    first: int
    count: int
    # The pickled (id, input index, builder, context, payloads): kept until the result is back.
    message: bytes
    droppable: bool
    # Its place among the input's chunks (InputLink.submitted).
    order: int
    attempts: int = 1
    # Set when a worker was killed for hanging while it built this chunk (worker_watchdog.py).
    hung: bool = False


@dataclass(eq=False)
class Slot:
    """One worker process: its connection, and the chunks it holds, in the order they were sent."""

    number: int
    pid: int
    connection: Channel
    lock: threading.Lock = field(default_factory=threading.Lock)
    pending: dict[int, Chunk] = field(default_factory=dict)
    # What the slot's sender thread writes to the worker. Nothing blocks on the worker's socket under
    # `lock`: a worker whose input is full waits for its result to be read, and the collector reading
    # it takes `lock`.
    outbox: SimpleQueue[bytes | None] = field(default_factory=SimpleQueue)
    # When the worker last showed progress: a result read, or work given to it while it had none.
    progress_at: float = 0.0
    # True while the collector waits for the worker's next result (not while it queues one).
    receiving: bool = False


class InputLink:
    """What an input's PipelineClient holds when workers build its events (`client.workers`)."""

    def __init__(self, pool: Any, index: int, client: PipelineClient, queue: Any) -> None:
        self.pool = pool  # the WorkerPool; not imported, since it imports this module
        self.index = index
        self.client = client
        self.queue = queue
        self.in_flight = 0
        # Chunks are numbered per input when submitted and queued in that order, whichever worker is faster:
        # the events of one input reach the output in the order the input read them.
        self.submitted = 0
        self.next_to_queue = 0
        self.finished: dict[int, tuple[Chunk, EncodedChunk]] = {}
        self.queue_lock = threading.Lock()

    def submit(self, client: PipelineClient, build: Builder, context: Any, payloads: Sequence[Any],
               cursor: Cursors, wait: bool = True) -> bool:
        return self.pool.submit(self, build, context, payloads, cursor, wait)

    def deliver(self, chunk: Chunk, results: EncodedChunk | None) -> None:
        """Queues the input's finished chunks that are next in its order; a chunk that overtook one waits.

        None abandons the chunk in its turn (shutdown, a defect): its records stay uncommitted.
        """
        with self.queue_lock:
            self.finished[chunk.order] = (chunk, results)
            while self.next_to_queue in self.finished:
                ready, ready_results = self.finished.pop(self.next_to_queue)
                self.next_to_queue += 1
                if ready_results is None:
                    abandon(ready, 0)
                    self.pool.release(self, ready.count)
                else:
                    self._queue_chunk(ready, ready_results)

    def _queue_chunk(self, chunk: Chunk, results: EncodedChunk) -> None:
        """Queues a chunk's documents with their sequence numbers; what produced none is done at once."""
        client = self.client
        acker = client.acker
        events: list[Event] = []
        done: list[int] = []
        from_encoded = Event.from_encoded
        if results.one_document_each:
            events = [from_encoded(document, (acker, sequence))
                      for sequence, document in zip(count(chunk.first), results.split())]
        else:
            sequence = chunk.first
            for documents in results.per_payload():
                if not documents:
                    done.append(sequence)
                elif len(documents) == 1:
                    events.append(from_encoded(documents[0], (acker, sequence)))
                else:
                    token = (SharedAcknowledgement(acker, sequence, len(documents)), sequence)
                    events.extend(from_encoded(document, token) for document in documents)
                sequence += 1
        if done:
            acker.done_many(done)
        try:
            if chunk.droppable:
                self._offer(events)
                return
            try:
                self.queue.put_many(events)
            except QueueClosed as closed:
                client.stats.published += closed.queued
                abandon(chunk, closed.queued, events)
                return
            client.stats.published += len(events)
        finally:
            self.pool.release(self, chunk.count)

    def _offer(self, events: list[Event]) -> None:
        """A droppable chunk (UDP) never waits for room: what the queue cannot take now is dropped, counted."""
        stats = self.client.stats
        try:
            queued = self.queue.try_put_many(events)
        except QueueClosed:
            # Stopping: a datagram has no cursor to be read again from, so what did not get in is lost.
            queued = 0
        stats.published += queued
        stats.dropped += len(events) - queued
        for event in events[queued:]:
            event.ack_token[0].done_many([event.ack_token[1]], delivered=False)


def abandon(chunk: Chunk, queued: int, events: list[Event] | None = None) -> None:
    """The chunk's sequences that never reached the queue stay uncommitted (shutdown)."""
    acker = chunk.link.client.acker
    if events is None:
        sequences = range(chunk.first, chunk.first + chunk.count)
    else:
        sequences = sorted({event.ack_token[1] for event in events[queued:]})
    for sequence in sequences:
        acker.abandon(sequence)
