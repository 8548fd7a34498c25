"""The sockets of the `syslog` input: one thread per UDP socket, one per TCP connection.

UDP cannot push back on a sender, so its listener never blocks: when the queue
is full the message is dropped and counted, and drops in the kernel's receive
buffer are read from the socket (SO_RXQ_OVFL) so that /stats tells the whole
story. TCP can push back, so each connection publishes with the blocking call
and a slow output slows the senders instead of losing their messages.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import sys
import threading
import time
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

from forwarder.inputs.base import PermanentInputError
from forwarder.inputs.syslog_config import TcpConfig, UdpConfig
from forwarder.inputs.syslog_framing import SyslogFrameSplitter

if TYPE_CHECKING:
    from forwarder.inputs.syslog import SyslogInput

# How often blocked socket calls wake up to notice shutdown.
POLL_SECONDS = 0.25
# Linux socket option: a counter of datagrams the kernel dropped, sent as ancillary data.
_SO_RXQ_OVFL = 40
_DROP_WARNING_INTERVAL = 60.0
_RECV_SIZE = 65536


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


class _Listener(ABC):
    """A bound socket served by one thread; a crash of that thread is handed to run() as `failure`."""

    def __init__(self, owner: SyslogInput, protocol: str, host: str, port: int) -> None:
        self.owner = owner
        self.failure: BaseException | None = None
        kind = socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM
        self._sock = _bind(kind, host, port, protocol)
        owner.addresses[protocol] = self._sock.getsockname()[:2]
        self._thread = threading.Thread(target=self._serve, name=f"syslog-{protocol}-{owner.context.input_id}",
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
        except Exception as exc:  # handed to run(), which raises it to the supervisor
            self.failure = exc

    @abstractmethod
    def _loop(self) -> None:
        """Serves the socket until the input stops."""


class UdpListener(_Listener):
    """One thread reading datagrams: one message each, cut at max_message_size."""

    def __init__(self, owner: SyslogInput, config: UdpConfig) -> None:
        super().__init__(owner, "udp", config.host, config.port)
        self.config = config
        self._stats = owner.context.stats
        if config.read_buffer:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, config.read_buffer)
        # Option 40 means something else on other systems; there the kernel's drops stay uncounted.
        if sys.platform.startswith("linux"):
            with contextlib.suppress(OSError):
                self._sock.setsockopt(socket.SOL_SOCKET, _SO_RXQ_OVFL, 1)
                self._stats.extra.setdefault("udp_kernel_drops", 0)
        self._reported_drops = 0
        self._last_warning = -_DROP_WARNING_INTERVAL

    def _loop(self) -> None:
        client = self.owner.context.client
        ancillary_size = socket.CMSG_SPACE(4)
        while not self.owner.stopping:
            try:
                data, ancillary, flags, peer = self._sock.recvmsg(self.config.max_message_size, ancillary_size)
            except TimeoutError:
                self._warn_about_drops()
                continue
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == _SO_RXQ_OVFL and len(value) >= 4:
                    self._stats.extra["udp_kernel_drops"] = struct.unpack("=I", value[:4])[0]
            if client.try_publish(self.owner.event(data, bool(flags & socket.MSG_TRUNC), peer)) is None:
                self.owner.lost_at_shutdown(1)
                return
            self._warn_about_drops()

    def _warn_about_drops(self) -> None:
        """At most one warning a minute while messages are being lost, with the counts."""
        kernel = self._stats.extra.get("udp_kernel_drops", 0)
        total = self._stats.dropped + kernel
        now = time.monotonic()
        if total > self._reported_drops and now - self._last_warning >= _DROP_WARNING_INTERVAL:
            self.owner.context.log.warning(
                "syslog udp %s:%d: %d messages dropped since the last report (in total %d because the queue was "
                "full, %d in the kernel receive buffer); raise protocol.udp.read_buffer or the queue size",
                self.config.host, self.config.port, total - self._reported_drops, self._stats.dropped, kernel)
            self._reported_drops = total
            self._last_warning = now


class TcpListener(_Listener):
    """Accepts connections (at most max_connections at once) and reads each in its own thread."""

    def __init__(self, owner: SyslogInput, config: TcpConfig) -> None:
        super().__init__(owner, "tcp", config.host, config.port)
        self.config = config
        self._log = owner.context.log
        self._slots = threading.Semaphore(config.max_connections) if config.max_connections else None
        self._lock = threading.Lock()
        self._connections: set[threading.Thread] = set()
        self._last_tls_warning = -_DROP_WARNING_INTERVAL
        owner.context.stats.extra["tcp_connections"] = 0

    def close(self, deadline: float) -> None:
        super().close(deadline)
        with self._lock:
            threads = list(self._connections)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _loop(self) -> None:
        while not self.owner.stopping:
            if self._slots is not None and not self._slots.acquire(timeout=POLL_SECONDS):
                continue
            try:
                conn, peer = self._sock.accept()
            except TimeoutError:
                self._release()
                continue
            except OSError as exc:
                # Out of file descriptors or a connection reset before accept: keep serving the others.
                self._release()
                self._log.warning("syslog tcp %s:%d: accept failed: %s", self.config.host, self.config.port, exc)
                self.owner.context.stop.wait(POLL_SECONDS)
                continue
            thread = threading.Thread(target=self._handle, args=(conn, peer), daemon=True,
                                      name=f"syslog-tcp-{address_text(peer)}")
            with self._lock:
                self._connections.add(thread)
                self.owner.context.stats.extra["tcp_connections"] = len(self._connections)
            thread.start()

    def _release(self) -> None:
        if self._slots is not None:
            self._slots.release()

    def _handle(self, conn: socket.socket, peer: Any) -> None:
        source = address_text(peer)
        try:
            conn.settimeout(POLL_SECONDS)
            if self.config.tls is not None:
                conn = self._handshake(conn, source)
            if conn is not None:
                self._read(conn, peer, source)
        except OSError as exc:
            self._log.debug("syslog tcp connection from %s closed: %s", source, exc)
        finally:
            if conn is not None:
                conn.close()
            with self._lock:
                self._connections.discard(threading.current_thread())
                self.owner.context.stats.extra["tcp_connections"] = len(self._connections)
            self._release()

    def _handshake(self, conn: socket.socket, source: str) -> ssl.SSLSocket | None:
        assert self.config.tls is not None
        tls = self.config.tls.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        deadline = time.monotonic() + min(self.config.timeout, 30.0)
        while not self.owner.stopping and time.monotonic() < deadline:
            try:
                tls.do_handshake()
                return tls
            except TimeoutError:
                continue
            except OSError as exc:
                self._warn_tls_failure(source, exc)
                break
        tls.close()
        return None

    def _warn_tls_failure(self, source: str, exc: OSError) -> None:
        """One warning a minute at most: a misconfigured client retrying must not flood the log."""
        now = time.monotonic()
        if now - self._last_tls_warning >= _DROP_WARNING_INTERVAL:
            self._last_tls_warning = now
            self._log.warning("syslog tls handshake with %s failed: %s", source, getattr(exc, "reason", None) or exc)

    def _read(self, conn: socket.socket, peer: Any, source: str) -> None:
        client = self.owner.context.client
        splitter = SyslogFrameSplitter(self.config.max_message_size, self.config.line_delimiter)
        last_data = time.monotonic()
        while not self.owner.stopping:
            try:
                data = conn.recv(_RECV_SIZE)
            except TimeoutError:
                if time.monotonic() - last_data > self.config.timeout:
                    self._log.debug("syslog tcp connection from %s idle for %.0fs: closing", source,
                                    self.config.timeout)
                    return
                continue
            frames = splitter.feed(data) if data else splitter.finish()
            for position, frame in enumerate(frames):
                if not client.publish(self.owner.event(frame.payload, frame.truncated, peer)):
                    self.owner.lost_at_shutdown(len(frames) - position)
                    return
            if not data:
                return
            last_data = time.monotonic()
