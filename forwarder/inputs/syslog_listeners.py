"""The sockets of the `syslog` input: what a listener gets from its input, and the UDP listener.

A listener receives only what it needs (`ListenerContext`: a publish function,
a stop event, the counters, a logger) and its own settings, never the input
object, so listeners and input do not reach into each other.

UDP cannot push back on a sender, so its listener never blocks: when the queue
is full the message is dropped and counted, and drops in the kernel's receive
buffer are read from the socket (SO_RXQ_OVFL) so that /stats tells the whole
story. TCP (syslog_tcp.py) can push back instead.
"""

from __future__ import annotations

import logging
import select
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from forwarder.inputs.base import PermanentInputError
from forwarder.inputs.syslog_config import UdpConfig
from forwarder.inputs.syslog_events import Datagram
from forwarder.inputs.syslog_udp_batch import BatchReceiver, open_batch_receiver
from forwarder.platform import current_platform
from forwarder.stats import InputStats

# How often blocked socket calls wake up to notice shutdown.
POLL_SECONDS = 0.25
_DROP_WARNING_INTERVAL = 60.0
# Most datagrams one UDP publish carries. With worker processes a chunk that finds an input's chunks in
# flight at their limit is dropped, so a sender's burst must make few chunks: at 20,000 msg/s from loggen,
# chunks of 256 lost 5,500-27,000 datagrams that way, chunks of 1,024 130-600 (and in one process, 1,024
# took 6 % more of a 50,000 msg/s stream). Building 1,024 in one process leaves the socket unread for
# about 20 ms, which its receive buffer holds.
DATAGRAMS_PER_CHUNK = 1024
# How long a chunk that is not full waits for more datagrams: latency no log reader notices. Every chunk
# costs the main process the same (handing it to a worker and taking its result back), so at 30,000
# datagrams a second 10 ms (chunks of ~300) instead of 2 ms (~60) took its CPU a datagram from 11-12 µs
# to 10 (bench/syslog_logstash.py, UDP).
CHUNK_LINGER_SECONDS = 0.010
# A plain int: `int & socket.MSG_TRUNC` runs the enum module's Python code, 0.7 µs a datagram.
_MSG_TRUNC = int(getattr(socket, "MSG_TRUNC", 0))  # with a default: imported on Windows too


class SyslogCounters:
    """The input's counters in /stats; many connection threads write them, hence the lock."""

    def __init__(self, stats: InputStats) -> None:
        self._stats = stats
        self._lock = threading.Lock()
        self.lost_at_shutdown = 0

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._stats.extra[name] = self._stats.extra.get(name, 0) + amount

    def set(self, name: str, value: int) -> None:
        self._stats.extra[name] = value

    def get(self, name: str) -> int:
        return self._stats.extra.get(name, 0)

    @property
    def dropped(self) -> int:
        return self._stats.dropped

    def lose_at_shutdown(self, count: int) -> None:
        """Messages already read when the pipeline stopped taking events: no sender can resend them."""
        with self._lock:
            self.lost_at_shutdown += count
            self._stats.dropped += count


@dataclass(frozen=True)
class ListenerContext:
    input_id: str
    # publish(frames, source, truncated): frames of one TCP read (or of a connection's end; a list, or a
    # FrameBlock), from the peer `source`, all cut or none. Blocks while the queue is full; False when the
    # forwarder is stopping.
    publish: Callable[[Sequence[bytes], str, bool], bool]
    # try_publish(datagrams): never blocks; what finds no room is dropped and counted. False when stopping.
    try_publish: Callable[[list[Datagram]], bool]
    stop: threading.Event
    counters: SyslogCounters
    log: logging.Logger


def set_receive_buffer(sock: socket.socket, size: int) -> None:
    """SO_RCVBUF of `size`; on Linux with CAP_NET_ADMIN (root) SO_RCVBUFFORCE, which net.core.rmem_max does
    not cap: a sender's burst that the default maximum (often 4 MiB, about 3,000 datagrams) cannot hold is
    absorbed by the buffer the configuration asks for."""
    if not current_platform().force_receive_buffer(sock, size):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)


def address_text(peer: Any) -> str:
    host, port = peer[0], peer[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _bind(kind: int, host: str, port: int, label: str) -> socket.socket:
    """A bound socket; failures park the input (PermanentInputError) instead of crash-looping."""
    try:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=kind, flags=socket.AI_PASSIVE)[0]
    except OSError as exc:
        raise PermanentInputError(f"cannot listen on {label} {host}:{port}: {exc.strerror or exc}", 60.0) from None
    sock = socket.socket(family, kind)
    try:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(128)
        else:
            sock.bind(address)
    except OSError as exc:
        sock.close()
        raise PermanentInputError(f"cannot listen on {label} {host}:{port}: {exc.strerror or exc}", 60.0) from None
    sock.settimeout(POLL_SECONDS)
    return sock


class Listener(ABC):
    """A bound socket served by one thread; a crash of that thread is handed to the input as `failure`."""

    def __init__(self, context: ListenerContext, protocol: str, host: str, port: int) -> None:
        self.context = context
        self.failure: BaseException | None = None
        kind = socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM
        self._sock = _bind(kind, host, port, protocol)
        self.address: tuple[str, int] = self._sock.getsockname()[:2]
        self._thread = threading.Thread(target=self._serve, name=f"syslog-{protocol}-{context.input_id}",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self, deadline: float) -> None:
        if self._thread.ident is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))
        self._sock.close()

    def _serve(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # handed to the input's run(), which raises it to the supervisor
            self.failure = exc

    @abstractmethod
    def _loop(self) -> None:
        """Serves the socket until the stop event is set."""


class UdpListener(Listener):
    """One thread reading datagrams: one message each, cut at max_message_size.

    It waits for the socket to become readable, then takes what the socket holds without waiting, and
    what else arrives within CHUNK_LINGER_SECONDS, up to DATAGRAMS_PER_CHUNK, and publishes that as one
    chunk: at a high rate one publish carries hundreds of datagrams, at a low rate each goes alone after
    the linger. The linger keeps a moderate rate from becoming thousands of one-datagram chunks, which
    worker processes would take longer to turn around than the datagrams take to arrive.
    """

    def __init__(self, context: ListenerContext, config: UdpConfig) -> None:
        super().__init__(context, "udp", config.host, config.port)
        self.config = config
        self._counters = context.counters
        self._sock.setblocking(False)
        if config.read_buffer:
            set_receive_buffer(self._sock, config.read_buffer)
        # Only Linux counts the datagrams its kernel dropped (SO_RXQ_OVFL); elsewhere they stay uncounted.
        self._platform = current_platform()
        if self._platform.enable_kernel_drop_counter(self._sock):
            self._counters.set("udp_kernel_drops", 0)
        # Many datagrams per system call where the OS has recvmmsg (syslog_udp_batch.py), else one at a time.
        self._batch = open_batch_receiver(self._sock, config.max_message_size, DATAGRAMS_PER_CHUNK,
                                          self._platform.kernel_drops, address_text)
        self._reported_drops = 0
        self._last_warning = -_DROP_WARNING_INTERVAL
        # The last sender and its address text: a busy sender's datagrams share one string.
        self._last_peer: Any = None
        self._last_source = ""

    def _loop(self) -> None:
        while not self.context.stop.is_set():
            datagrams = self._gather()
            if not datagrams:
                select.select([self._sock], [], [], POLL_SECONDS)
            elif not self.context.try_publish(datagrams):
                self._counters.lose_at_shutdown(len(datagrams))
                return
            self._warn_about_drops()

    def _gather(self) -> list[Datagram]:
        """What the socket holds and what else arrives within the linger, up to DATAGRAMS_PER_CHUNK."""
        datagrams: list[Datagram] = []
        self._receive(datagrams)
        if datagrams:
            deadline = time.monotonic() + CHUNK_LINGER_SECONDS
            while len(datagrams) < DATAGRAMS_PER_CHUNK:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not select.select([self._sock], [], [], remaining)[0]:
                    break
                self._receive(datagrams)
        return datagrams

    def _receive(self, datagrams: list[Datagram]) -> None:
        """Adds the datagrams the socket holds now to `datagrams`, up to DATAGRAMS_PER_CHUNK in all."""
        if self._batch is not None:
            self._receive_batches(self._batch, datagrams)
            return
        ancillary_size = socket.CMSG_SPACE(4)
        kernel_drops = None
        while len(datagrams) < DATAGRAMS_PER_CHUNK:
            try:
                data, ancillary, flags, peer = self._sock.recvmsg(self.config.max_message_size, ancillary_size)
            except BlockingIOError:
                break
            if ancillary:  # Linux attaches its drop counter once there were drops
                kernel_drops = self._platform.kernel_drops(ancillary)
            if peer != self._last_peer:
                self._last_peer, self._last_source = peer, address_text(peer)
            datagrams.append((data, self._last_source, flags & _MSG_TRUNC != 0))
        if kernel_drops is not None:
            self._counters.set("udp_kernel_drops", kernel_drops)

    def _receive_batches(self, batch: BatchReceiver, datagrams: list[Datagram]) -> None:
        """`_receive` with recvmmsg: calls until the chunk is full or a call finds the socket emptied."""
        while len(datagrams) < DATAGRAMS_PER_CHUNK:
            wanted = min(DATAGRAMS_PER_CHUNK - len(datagrams), batch.capacity)
            before = len(datagrams)
            kernel_drops = batch.receive(datagrams, wanted)
            if kernel_drops is not None:
                self._counters.set("udp_kernel_drops", kernel_drops)
            if len(datagrams) - before < wanted:
                return

    def _warn_about_drops(self) -> None:
        """At most one warning a minute while messages are being lost, with the counts."""
        kernel = self._counters.get("udp_kernel_drops")
        total = self._counters.dropped + kernel
        now = time.monotonic()
        if total > self._reported_drops and now - self._last_warning >= _DROP_WARNING_INTERVAL:
            self.context.log.warning(
                "syslog udp %s:%d: %d messages dropped since the last report (in total %d because the queue was "
                "full, %d in the kernel receive buffer); raise protocol.udp.read_buffer or the queue size",
                self.config.host, self.config.port, total - self._reported_drops, self._counters.dropped, kernel)
            self._reported_drops = total
            self._last_warning = now
