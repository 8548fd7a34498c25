"""What every output provides to the runner.

An output owns its worker threads. Each worker takes a `Batch` from the queue
(`queue.get_batch`), delivers it, and calls `batch.ack_through(n)` /
`batch.ack_all()` only once the events are durably accepted downstream. A
batch that cannot be delivered is retried, never dropped; at `stop` the
un-acknowledged events are simply abandoned: their cursors were never
committed, so they are replayed at the next start.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from forwarder.disk import OwnedDirectory
from forwarder.outputs.codec import EventEncoder
from forwarder.pipeline.queue import EventQueue
from forwarder.schema.section import Section
from forwarder.stats import OutputStats


class Output(Protocol):
    def start(self, queue: EventQueue) -> None: ...

    def stop(self, timeout: float) -> None: ...


@dataclass(frozen=True)
class HostCheck:
    """One line of `forwarder test output`."""

    target: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class OutputType:
    """One row of the output table."""

    name: str
    parse_config: Callable[[Section], Any]
    create: Callable[[Any, EventEncoder, OutputStats], Output]
    # For `forwarder test output`: connect to every destination and report.
    check: Callable[[Any], list[HostCheck]]
    # The `index` setting (→ @metadata.beat), read from the parsed config.
    index: Callable[[Any], str] = lambda config: "filebeat"
    # The directories (and their files) the output writes under path.data: made owner-only at start.
    owned_directories: Callable[[Any], list[OwnedDirectory]] = lambda config: []
