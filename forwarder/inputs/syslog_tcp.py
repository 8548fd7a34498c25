"""The TCP (and TLS) listener of the `syslog` input: one thread per connection.

TCP can push back, so each connection publishes with the blocking call and a
slow output slows the senders instead of losing their messages. Three bounds
keep a hostile or broken peer from exhausting the host: `max_connections`
(further connections wait in the listen backlog, as with Filebeat), the size
of one frame (`max_message_size`) and the bytes of unfinished frames held
across all connections (`max_buffered_bytes`, syslog_buffer_budget.py).

However a connection ends (the sender closes, resets, idles out, the input
stops, a read fails), the frame it was in the middle of is forwarded, marked
truncated and counted, never dropped in silence.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Sequence
from enum import Enum
from typing import Any

from forwarder.inputs.syslog_buffer_budget import BufferBudget
from forwarder.inputs.syslog_config import TcpConfig
from forwarder.inputs.syslog_framing import Frame, FrameBlock, SyslogFrameSplitter
from forwarder.inputs.syslog_listeners import POLL_SECONDS, Listener, ListenerContext, address_text
from forwarder.inputs.syslog_tls import TlsServerStream
from forwarder.log_throttle import ThrottledLog

# Bytes read from a connection at once; its frames go to the pipeline (and a worker process) as one chunk.
# 256 KiB instead of 64: a quarter of the chunks for a busy sender (Sophos end to end 28-29k → 31k lines/s,
# loggen TCP 81k → 88k msg/s with worker processes).
_RECV_SIZE = 262144
# Counters this listener adds to the input's /stats.
COUNTERS = ("tcp_connections", "tcp_accept_failures", "tcp_connection_limit_reached", "tcp_connection_resets",
            "tcp_read_errors", "tcp_frames_cut", "tcp_octet_counts_ignored", "tcp_buffered_bytes", "tcp_read_pauses",
            "tls_handshake_failures")


class _End(Enum):
    """Why a connection stopped being read."""

    CLOSED = "closed by the sender"
    RESET = "reset by the sender"
    IDLE = "idle for longer than protocol.tcp.timeout"
    STOPPING = "the input is stopping"
    PIPELINE_STOPPED = "the pipeline stopped taking events"
    FAILED = "a read failed"


class TcpListener(Listener):
    """Accepts connections (at most max_connections at once) and reads each in its own thread."""

    def __init__(self, context: ListenerContext, config: TcpConfig) -> None:
        super().__init__(context, "tcp", config.host, config.port)
        self.config = config
        self._log = context.log
        self._counters = context.counters
        self._stop = context.stop
        self._label = f"syslog tcp {address_text(self.address)}"
        self._slots = threading.Semaphore(config.max_connections)
        self._at_connection_limit = False
        self._budget = BufferBudget(config.max_buffered_bytes)
        self._lock = threading.Lock()
        self._connections: set[threading.Thread] = set()
        self._accept_warnings = ThrottledLog(self._log)
        self._limit_warnings = ThrottledLog(self._log)
        self._tls_warnings = ThrottledLog(self._log)
        self._reset_warnings = ThrottledLog(self._log)
        self._cut_warnings = ThrottledLog(self._log)
        self._count_warnings = ThrottledLog(self._log)
        self._pause_warnings = ThrottledLog(self._log)
        self._error_warnings = ThrottledLog(self._log)
        self._throttles = (self._accept_warnings, self._limit_warnings, self._tls_warnings, self._reset_warnings,
                           self._cut_warnings, self._count_warnings, self._pause_warnings, self._error_warnings)
        for name in COUNTERS:
            self._counters.set(name, 0)

    def close(self, deadline: float) -> None:
        super().close(deadline)
        with self._lock:
            threads = list(self._connections)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for throttle in self._throttles:
            throttle.flush(now=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            for throttle in self._throttles:
                throttle.flush()
            if not self._slots.acquire(timeout=POLL_SECONDS):
                self._note_connection_limit()
                continue
            self._at_connection_limit = False
            try:
                conn, peer = self._sock.accept()
            except TimeoutError:
                self._slots.release()
                continue
            except OSError as exc:
                # Out of file descriptors or a connection reset before accept: keep serving the others.
                self._slots.release()
                self._counters.add("tcp_accept_failures")
                self._accept_warnings.report("%s: accept failed: %s", self._label, exc)
                self._stop.wait(POLL_SECONDS)
                continue
            thread = threading.Thread(target=self._handle, args=(conn, peer), daemon=True,
                                      name=f"syslog-tcp-{address_text(peer)}")
            with self._lock:
                self._connections.add(thread)
                self._counters.set("tcp_connections", len(self._connections))
            thread.start()

    def _note_connection_limit(self) -> None:
        """All slots are taken: if a client is waiting to be accepted, count and report it once per episode."""
        if self._at_connection_limit:
            return
        try:
            waiting, _, _ = select.select([self._sock], [], [], 0)
        except (OSError, ValueError):
            return
        if waiting:
            self._at_connection_limit = True
            self._counters.add("tcp_connection_limit_reached")
            self._limit_warnings.report("%s: max_connections (%d) reached; further connections wait until one "
                                      "closes (raise protocol.tcp.max_connections if this is normal load)",
                                      self._label, self.config.max_connections)

    def _handle(self, conn: socket.socket, peer: Any) -> None:
        stream: socket.socket | TlsServerStream | None = conn
        source = address_text(peer)
        try:
            conn.settimeout(POLL_SECONDS)
            if self.config.tls is not None:
                stream = self._handshake(conn, source)
            if stream is not None:
                self._read(stream, source)
        finally:
            conn.close()
            with self._lock:
                self._connections.discard(threading.current_thread())
                self._counters.set("tcp_connections", len(self._connections))
            self._slots.release()

    def _handshake(self, conn: socket.socket, source: str) -> TlsServerStream | None:
        assert self.config.tls is not None
        stream = TlsServerStream(conn, self.config.tls)
        try:
            stream.handshake(self._stop, min(self.config.timeout, 30.0))
        except OSError as exc:
            if not self._stop.is_set():
                self._counters.add("tls_handshake_failures")
                self._tls_warnings.report("syslog tls handshake with %s failed: %s", source,
                                        getattr(exc, "reason", None) or exc)
            return None
        return stream

    def _read(self, conn: socket.socket | TlsServerStream, source: str) -> None:
        """Reads frames until the connection ends, then forwards the frame it was in the middle of."""
        splitter = SyslogFrameSplitter(self.config.max_message_size, self.config.line_delimiter)
        key = self._budget.join()
        end = _End.FAILED
        try:
            end = self._read_frames(conn, source, splitter, key)
        except OSError as exc:
            self._counters.add("tcp_read_errors")
            self._error_warnings.report("syslog tcp connection from %s failed: %s; whatever the sender had sent that "
                                      "was not read yet is lost", source, exc)
        finally:
            if end is _End.IDLE:
                self._log.debug("syslog tcp connection from %s idle for %.0fs: closing", source,
                                self.config.timeout)
            self._budget.leave(key)
            self._counters.set("tcp_buffered_bytes", self._budget.total)
            self._forward_rest(splitter.finish(), end, source)

    def _read_frames(self, conn: socket.socket | TlsServerStream, source: str, splitter: SyslogFrameSplitter,
                     key: int) -> _End:
        idle_since = time.monotonic()
        while not self._stop.is_set():
            if not self._budget.has_room(key):
                self._note_pause()
                self._budget.wait_for_room(key, self._stop)
                idle_since = time.monotonic()
                continue
            try:
                data = conn.recv(_RECV_SIZE)
            except TimeoutError:
                if time.monotonic() - idle_since > self.config.timeout:
                    return _End.IDLE
                continue
            except ConnectionResetError:
                self._counters.add("tcp_connection_resets")
                self._reset_warnings.report(
                    "syslog tcp connection from %s was reset by the sender: whatever it sent that was not read yet "
                    "was discarded by the network stack (a sender must close cleanly; a TLS sender must not close "
                    "with unread data)", source)
                return _End.RESET
            if not data:
                return _End.CLOSED
            idle_since = time.monotonic()
            ignored_before = splitter.ignored_counts
            frames = splitter.feed_blocks(data)
            if splitter.ignored_counts > ignored_before:
                self._note_ignored_counts(splitter, source, splitter.ignored_counts - ignored_before)
            self._budget.hold(key, splitter.buffered_bytes)
            self._counters.set("tcp_buffered_bytes", self._budget.total)
            if frames and not self._publish(frames, source, cut=False):
                return _End.PIPELINE_STOPPED
        return _End.STOPPING

    def _publish(self, frames: Sequence[FrameBlock | Frame], source: str, cut: bool) -> bool:
        """Publishes frames in order (`_chunks`); `cut` marks them all truncated. False when the pipeline
        stopped taking them: the rest is counted as lost."""
        chunks = _chunks(frames, cut)
        left = sum(len(payloads) for _, payloads in chunks)
        for truncated, payloads in chunks:
            if not self.context.publish(payloads, source, truncated):
                self._counters.lose_at_shutdown(left)
                return False
            left -= len(payloads)
        return True

    def _forward_rest(self, frames: list[Frame], end: _End, source: str) -> None:
        """Forwards what `finish()` returned; unless the sender closed cleanly, it was cut off: counted and logged.

        When the pipeline no longer takes events, the frames are counted as lost at shutdown instead.
        """
        cut = [frame for frame in frames if frame.truncated or end is not _End.CLOSED]
        if cut:
            self._counters.add("tcp_frames_cut", len(cut))
        if not self._publish(frames, source, cut=end is not _End.CLOSED):
            return
        if cut:
            self._cut_warnings.report("syslog tcp connection from %s ended (%s) in the middle of a message: "
                                    "forwarded the %d byte(s) received, tagged _truncated",
                                    source, end.value, sum(len(frame.payload) for frame in cut))

    def _note_ignored_counts(self, splitter: SyslogFrameSplitter, source: str, count: int) -> None:
        self._counters.add("tcp_octet_counts_ignored", count)
        self._count_warnings.report(
            "syslog tcp connection from %s: octet count %d is larger than protocol.tcp.max_message_size (%d); "
            "not octet counting, the data is read as newline-framed messages", source,
            splitter.last_ignored_count, self.config.max_message_size)

    def _note_pause(self) -> None:
        self._counters.add("tcp_read_pauses")
        self._pause_warnings.report("%s: %d bytes of unfinished messages held across connections "
                                  "(protocol.tcp.max_buffered_bytes %d): reading paused until they complete",
                                  self._label, self._budget.total, self.config.max_buffered_bytes)


def _chunks(frames: Sequence[FrameBlock | Frame], cut: bool) -> list[tuple[bool, Sequence[bytes]]]:
    """(truncated, payloads) to publish: a block of whole frames as it is, the other frames one chunk per run
    that is (or is not) truncated; with `cut` every frame is truncated."""
    chunks: list[tuple[bool, Sequence[bytes]]] = []
    run: list[bytes] = []
    run_truncated = False
    for item in frames:
        if type(item) is FrameBlock and not cut:
            if run:
                chunks.append((run_truncated, run))
                run = []
            chunks.append((False, item))
            continue
        pieces = [(payload, True) for payload in item] if type(item) is FrameBlock else [item]
        for payload, truncated in pieces:
            truncated = truncated or cut
            if run and truncated != run_truncated:
                chunks.append((run_truncated, run))
                run = []
            run_truncated = truncated
            run.append(payload)
    if run:
        chunks.append((run_truncated, run))
    return chunks
