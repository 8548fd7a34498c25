"""What the worker pool keeps for each chunk out in a worker, each worker process and each input.

Apart from workers.py, which moves chunks between these: here is only the state and the small
rule on it that a chunk's records that never reached the queue stay uncommitted.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from queue import SimpleQueue
from typing import Any

from forwarder.pipeline.client import Builder, Cursors, PipelineClient
from forwarder.pipeline.event import Event
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


def abandon(chunk: Chunk, queued: int, events: list[Event] | None = None) -> None:
    """The chunk's sequences that never reached the queue stay uncommitted (shutdown)."""
    acker = chunk.link.client.acker
    if events is None:
        sequences = range(chunk.first, chunk.first + chunk.count)
    else:
        sequences = sorted({event.ack_token[1] for event in events[queued:]})
    for sequence in sequences:
        acker.abandon(sequence)
