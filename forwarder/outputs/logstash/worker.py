"""One output worker: a connection's life from connect to failure, and what happens to its batches.

A worker takes batches (those given back by a failed connection first, then
the queue), cuts them into windows and sends them on its connection. When
the connection fails, every event not yet acknowledged goes back to the
shared `BatchSource` (so another worker, on another host, may send it); the
worker logs the cause once, waits its backoff, and reconnects — to the next
host when it fails over. Nothing is ever dropped: a batch leaves the worker
only fully acknowledged or at shutdown.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass

from forwarder.backoff import Backoff
from forwarder.outputs.logstash.config import HostAddress
from forwarder.outputs.logstash.connection import ConnectionBroken, LumberjackConnection, OutputCounters, Window
from forwarder.outputs.logstash.pacing import WindowSize
from forwarder.outputs.logstash.transport import ConnectError
from forwarder.outputs.logstash.window_encoder import WindowEncoder
from forwarder.pipeline.queue import Batch, EventQueue

log = logging.getLogger("forwarder.outputs.logstash")

_TAKE_WAIT = 0.2
# A connection closed while idle is normal (Logstash's client_inactivity_timeout) and is reopened at once,
# unless it never carried a window and was this young: then the server is refusing us, and backoff applies.
_SETTLED_AFTER = 10.0


@dataclass
class _PreparedWindow:
    window: Window
    data: bytes


class BatchSource:
    """Batches for the workers: given-back ones first, in their original order, then new ones from the queue."""

    def __init__(self, queue: EventQueue, max_size: int) -> None:
        self._queue = queue
        self._max_size = max_size
        self._returned: deque[Batch] = deque()
        self._lock = threading.Lock()

    def take(self, wait: float) -> Batch | None:
        with self._lock:
            if self._returned:
                return self._returned.popleft()
        return self._queue.get_batch(self._max_size, wait=wait)

    def take_ready(self) -> Batch | None:
        """A batch only if one can be had without waiting for the queue to fill up."""
        with self._lock:
            if self._returned:
                return self._returned.popleft()
        if self._queue.ready_events < min(self._max_size, self._queue.flush_min_events):
            return None
        return self._queue.get_batch(self._max_size, wait=0)

    def give_back(self, batches: list[Batch]) -> None:
        with self._lock:
            self._returned.extendleft(reversed(batches))


class LumberjackWorker:
    def __init__(
        self,
        hosts: list[HostAddress],
        first_host: int,
        *,
        context: ssl.SSLContext | None,
        timeout: float,
        ttl: float,
        max_in_flight: int,
        window_size: WindowSize,
        backoff: Backoff,
        encoder: WindowEncoder,
        source: BatchSource,
        counters: OutputCounters,
        stop: threading.Event,
        stall_warning_after: float,
    ) -> None:
        self._hosts = hosts
        self._host_index = first_host % len(hosts)
        self._context = context
        self._timeout = timeout
        self._ttl = ttl
        self._max_in_flight = max_in_flight
        self._window_size = window_size
        self._backoff = backoff
        self._encoder = encoder
        self._source = source
        self._counters = counters
        self._stop = stop
        self._stall_warning_after = stall_warning_after
        self._connection: LumberjackConnection | None = None
        self._lock = threading.Lock()
        self._current: Batch | None = None
        # Windows encoded but not yet handed to the connection.
        self._ahead: deque[_PreparedWindow] = deque()
        self._offset = 0
        self._connected_before = False
        self._ttl_expired = False

    def run(self) -> None:
        while not self._stop.is_set():
            self._connect_and_send()

    def interrupt(self) -> None:
        """Unblocks a connect, send or wait in progress (the stop event is already set)."""
        with self._lock:
            connection = self._connection
        if connection is not None:
            connection.interrupt()

    def _connect_and_send(self) -> None:
        address = self._hosts[self._host_index]
        connection = LumberjackConnection(
            address,
            self._context,
            self._timeout,
            self._max_in_flight,
            self._counters,
            on_window_done=self._window_done,
            stall_warning_after=self._stall_warning_after,
        )
        with self._lock:
            self._connection = connection
        if self._stop.is_set():
            return
        try:
            connection.open()
        except (ConnectError, ConnectionBroken, OSError) as exc:
            if not self._stop.is_set():
                self._after_failure(address, f"unreachable ({exc})", resend=0)
            return
        self._connected(address, connection)
        failure: ConnectionBroken | None = None
        try:
            self._send_batches(connection)
        except ConnectionBroken as exc:
            failure = exc
        except Exception as exc:  # a bug must not end the worker and strand its batches
            log.exception("logstash: unexpected error sending to %s", address)
            failure = ConnectionBroken(f"internal error ({exc!r})")
        finally:
            resend = self._give_back(connection.close())
        if failure is None or self._stop.is_set():
            return
        if failure.idle and resend == 0 and (connection.windows_completed or _age(connection) >= _SETTLED_AFTER):
            log.info("logstash: %s closed the idle connection (%s); reconnecting", address, failure.cause)
            return
        self._after_failure(address, f"connection failed: {failure.cause}", resend)

    def _send_batches(self, connection: LumberjackConnection) -> None:
        """Returns on stop or when `ttl` asks for a fresh connection; raises ConnectionBroken.

        When the queue already holds the next batch, its first window is
        encoded (and deflated: ISA-L is fast enough that a thread of its own
        cost more in hand-offs than it saved) before this one is sent, so it
        is ready the moment a pipelining slot frees.
        """
        while not self._stop.is_set():
            if connection.failure is not None:
                raise connection.failure
            if self._current is None:
                batch = self._source.take_ready() if self._ahead else self._source.take(_TAKE_WAIT)
                if batch is None:
                    self._send_prepared(connection, keep=0)
                    continue
                self._current, self._offset = batch, batch.acked
                if self._ttl and _age(connection) >= self._ttl:
                    # The batch is given back on close and goes out first on the fresh connection.
                    self._send_prepared(connection, keep=0)
                    connection.wait_drained(self._timeout)
                    self._ttl_expired = True
                    return
            self._ahead.append(self._prepare_window())
            self._send_prepared(connection, keep=1)

    def _prepare_window(self) -> _PreparedWindow:
        batch = self._current
        assert batch is not None
        count = min(self._window_size.size, len(batch) - self._offset)
        data = self._encoder.encode(batch.events[self._offset:self._offset + count])
        prepared = _PreparedWindow(Window(batch, self._offset, count), data)
        self._offset += count
        if self._offset >= len(batch):
            self._current = None
        return prepared

    def _send_prepared(self, connection: LumberjackConnection, keep: int) -> None:
        """Sends prepared windows, oldest first, until `keep` are left; each stays known to `_give_back` until sent."""
        while len(self._ahead) > keep:
            prepared = self._ahead[0]
            connection.send(prepared.window, prepared.data)
            self._ahead.popleft()

    def _give_back(self, unacked: list[Batch]) -> int:
        """Hands every batch with unacknowledged events back to the source; returns how many events."""
        pending = [prepared.window.batch for prepared in self._ahead]
        if self._current is not None:
            pending.append(self._current)
        for batch in pending:
            if not any(batch is known for known in unacked):
                unacked.append(batch)
        self._current = None
        self._ahead.clear()
        unacked = [batch for batch in unacked if batch.acked < len(batch)]
        if unacked:
            self._source.give_back(unacked)
        return sum(len(batch) - batch.acked for batch in unacked)

    def _connected(self, address: HostAddress, connection: LumberjackConnection) -> None:
        if self._connected_before:
            self._counters.add(reconnects=1)
        if self._ttl_expired:
            self._ttl_expired = False
            log.debug("logstash: reconnected to %s after ttl", address)
        elif self._connected_before:
            log.info("logstash: reconnected to %s (%s)", address, connection.description)
        else:
            log.info("logstash: connected to %s (%s)", address, connection.description)
        self._connected_before = True

    def _window_done(self, window: Window) -> None:
        self._window_size.grow()
        self._backoff.reset()

    def _after_failure(self, address: HostAddress, cause: str, resend: int) -> None:
        self._counters.record_error(f"{address}: {cause}")
        if resend:
            self._counters.add(retries=resend)
        self._window_size.shrink()
        delay = self._backoff.next_delay()
        if len(self._hosts) > 1:
            self._host_index = (self._host_index + 1) % len(self._hosts)
            following = f"; trying {self._hosts[self._host_index]} in {_seconds(delay)}"
        else:
            following = f"; retrying in {_seconds(delay)}"
        pending = f"; {resend} unacknowledged events will be resent" if resend else ""
        log.warning("logstash: %s %s%s%s", address, cause, pending, following)
        self._stop.wait(delay)


def _seconds(delay: float) -> str:
    return f"{delay:.1f}s" if delay >= 1 else f"{delay * 1000:.0f}ms"


def _age(connection: LumberjackConnection) -> float:
    return time.monotonic() - connection.opened_at
