"""One connection to a Logstash beats listener with up to `pipelining` windows awaiting their ACK.

The worker thread sends windows; a reader thread owned by the connection
reads ACK frames and acknowledges events to their batch as they are
confirmed, so the worker is already encoding and compressing the next window
while the previous one is in flight. ACKs arrive in window order. Every ACK
(the keepalive ACK 0 included) restarts the `timeout` clock; a window that
gets only keepalives for a long time means a blocked Logstash pipeline and is
reported once.
"""

from __future__ import annotations

import logging
import select
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from forwarder.outputs.logstash.config import HostAddress
from forwarder.outputs.logstash.frames import ACK_SIZE, LumberjackProtocolError, parse_ack
from forwarder.outputs.logstash.transport import Transport, describe_os_error, open_transport
from forwarder.pipeline.queue import Batch
from forwarder.stats import OutputStats

log = logging.getLogger("forwarder.outputs.logstash")

_POLL = 0.25
STALL_WARNING_AFTER = 300.0


class ConnectionBroken(Exception):
    """The connection can no longer be used; `idle` when the server closed it with nothing in flight."""

    def __init__(self, cause: str, idle: bool = False) -> None:
        super().__init__(cause)
        self.cause = cause
        self.idle = idle


@dataclass
class Window:
    """Events `batch.events[start:start + count]`, sent as one Lumberjack window."""

    batch: Batch
    start: int
    count: int
    acked: int = 0
    sent_at: float = 0.0
    progress_at: float = 0.0
    stall_reported: bool = field(default=False, repr=False)


@dataclass
class OutputCounters:
    """The output's stats with the lock that keeps concurrent `+=` from losing updates."""

    stats: OutputStats
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, **amounts: int) -> None:
        with self.lock:
            for name, amount in amounts.items():
                setattr(self.stats, name, getattr(self.stats, name) + amount)

    def record_rtt(self, seconds: float) -> None:
        with self.lock:
            self.stats.record_rtt(seconds)

    def record_error(self, message: str) -> None:
        with self.lock:
            self.stats.errors += 1
            self.stats.last_error = message


class LumberjackConnection:
    def __init__(
        self,
        address: HostAddress,
        context: ssl.SSLContext | None,
        timeout: float,
        max_in_flight: int,
        counters: OutputCounters,
        on_window_done: Callable[[Window], None] = lambda window: None,
        stall_warning_after: float = STALL_WARNING_AFTER,
    ) -> None:
        self.address = address
        self._context = context
        self._timeout = timeout
        self._max_in_flight = max_in_flight
        self._counters = counters
        self._on_window_done = on_window_done
        self._stall_warning_after = stall_warning_after
        self._aborted = threading.Event()
        self._cond = threading.Condition()
        self._windows: deque[Window] = deque()
        self._failure: ConnectionBroken | None = None
        self._closed = False
        self._last_ack_at = 0.0
        self._transport: Transport | None = None
        self._reader: threading.Thread | None = None
        self.opened_at = 0.0
        self.windows_completed = 0

    @property
    def description(self) -> str:
        return self._transport.description if self._transport else "not connected"

    @property
    def failure(self) -> ConnectionBroken | None:
        return self._failure

    def open(self) -> None:
        """Connects (and handshakes); raises ConnectError. `interrupt()` from another thread cuts it short."""
        transport = open_transport(self.address, self._context, self._timeout, self._aborted)
        with self._cond:
            self._transport = transport
            closed = self._closed
        if closed:
            transport.close()
            raise ConnectionBroken("connection closed")
        self.opened_at = time.monotonic()
        self._reader = threading.Thread(target=self._read_acks, name=f"logstash-ack-{self.address}", daemon=True)
        self._reader.start()

    def send(self, window: Window, data: bytes) -> None:
        """Waits for a free pipelining slot, then writes the window; raises ConnectionBroken."""
        with self._cond:
            while len(self._windows) >= self._max_in_flight and self._failure is None and not self._closed:
                self._cond.wait(_POLL)
            if self._failure is not None:
                raise self._failure
            if self._closed or self._transport is None:
                raise ConnectionBroken("connection closed")
            window.sent_at = window.progress_at = time.monotonic()
            self._windows.append(window)
            transport = self._transport
        self._counters.add(in_flight=window.count)
        try:
            transport.sendall(data)
        except (OSError, ValueError) as exc:
            raise self._fail(ConnectionBroken(f"write failed ({describe_os_error(exc)})")) from None
        self._counters.add(bytes_written=len(data))

    def wait_drained(self, timeout: float) -> bool:
        """True once every window sent has its final ACK (used before a `ttl` reconnect)."""
        with self._cond:
            return self._cond.wait_for(
                lambda: not self._windows or self._failure is not None or self._closed, timeout
            )

    def interrupt(self) -> None:
        """Makes blocked sends, reads and connects return at once; safe from any thread."""
        self._aborted.set()
        with self._cond:
            self._closed = True
            transport = self._transport
            self._cond.notify_all()
        if transport is not None:
            transport.close()

    def close(self) -> list[Batch]:
        """Closes and returns the batches with events sent but not acknowledged, oldest first."""
        self.interrupt()
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join()
        with self._cond:
            windows = list(self._windows)
            self._windows.clear()
        unacked = sum(w.count - w.acked for w in windows)
        if unacked:
            self._counters.add(in_flight=-unacked)
        batches: list[Batch] = []
        for window in windows:
            if not batches or batches[-1] is not window.batch:
                batches.append(window.batch)
        return batches

    def _fail(self, failure: ConnectionBroken) -> ConnectionBroken:
        with self._cond:
            if self._failure is None and not self._closed:
                self._failure = failure
            self._cond.notify_all()
            transport = self._transport
        if transport is not None:
            transport.close()
        return self._failure or failure

    def _read_acks(self) -> None:
        transport = self._transport
        assert transport is not None
        buffer = bytearray()
        try:
            while True:
                with self._cond:
                    if self._closed or self._failure is not None:
                        return
                    head = self._windows[0] if self._windows else None
                wait = _POLL
                if head is not None:
                    clock = max(self._last_ack_at, head.sent_at)
                    remaining = clock + self._timeout - time.monotonic()
                    if remaining <= 0:
                        raise ConnectionBroken(f"no ACK within {self._timeout:g}s")
                    wait = min(wait, remaining)
                if not transport.has_buffered():
                    readable, _, _ = select.select([transport], [], [], wait)
                    if not readable:
                        continue
                data = transport.recv()
                if not data:
                    with self._cond:
                        idle = not self._windows
                    raise ConnectionBroken("connection closed by the server", idle=idle)
                buffer += data
                while len(buffer) >= ACK_SIZE:
                    sequence = parse_ack(buffer[:ACK_SIZE])
                    del buffer[:ACK_SIZE]
                    self._on_ack(sequence)
        except ConnectionBroken as exc:
            self._fail(exc)
        except LumberjackProtocolError as exc:
            self._fail(ConnectionBroken(f"protocol error: {exc}"))
        except (OSError, ValueError) as exc:
            if not self._closed:
                with self._cond:
                    idle = not self._windows
                self._fail(ConnectionBroken(f"read failed ({describe_os_error(exc)})", idle=idle))

    def _on_ack(self, sequence: int) -> None:
        now = time.monotonic()
        with self._cond:
            self._last_ack_at = now
            if not self._windows:
                if sequence == 0:
                    return
                raise LumberjackProtocolError(f"ACK {sequence} while no window awaits an ACK")
            window = self._windows[0]
            if sequence > window.count:
                raise LumberjackProtocolError(f"ACK {sequence} for a window of {window.count} events")
            if sequence == 0 or sequence <= window.acked:
                self._check_stall(window, now)
                return
            newly = sequence - window.acked
            window.acked = sequence
            window.progress_at = now
            complete = sequence == window.count
            if complete:
                self.windows_completed += 1
                self._windows.popleft()
                if self._windows:
                    self._windows[0].progress_at = now
                self._cond.notify_all()
        # Outside the lock: acknowledging runs the inputs' ackers and the registry commit.
        window.batch.ack_through(window.start + sequence)
        batch_done = window.start + sequence >= len(window.batch)
        self._counters.add(acked=newly, in_flight=-newly, batches=1 if batch_done else 0)
        if complete:
            self._counters.record_rtt(now - window.sent_at)
            self._on_window_done(window)

    def _check_stall(self, window: Window, now: float) -> None:
        if window.stall_reported or now - window.progress_at < self._stall_warning_after:
            return
        window.stall_reported = True
        log.error(
            "logstash: %s has acknowledged none of %d pending events for %.0fs but keeps the connection alive; "
            "its pipeline may be deadlocked (Logstash issue #16657: upgrade to 8.17+ or use PipelineBusV1)",
            self.address, window.count - window.acked, now - window.progress_at,
        )
