"""A TCP or TLS stream that one sender thread and one ACK-reader thread use at once.

OpenSSL does not allow two threads inside one SSL object, and a blocking
`SSLSocket` would keep the sender waiting while the reader sits in `recv`.
So TLS runs over memory BIOs: the SSL object is touched only under a short
lock, and the raw socket does the blocking I/O outside it. Connecting is
non-blocking and polled, so a stopping forwarder never waits out a connect
timeout on an unreachable host.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import ssl
import threading
import time
from typing import Any

from forwarder.outputs.logstash.config import HostAddress

_POLL = 0.1
_READ_SIZE = 65536


class ConnectError(Exception):
    """A connection could not be set up; the message is the cause, for one log line."""


def resolve(address: HostAddress) -> list[tuple[Any, ...]]:
    try:
        return socket.getaddrinfo(address.host, address.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConnectError(f"DNS lookup of {address.host} failed: {exc.strerror}") from None
    except UnicodeError:
        raise ConnectError(f"{address.host!r} is not a valid host name") from None


def connect_tcp(address: HostAddress, timeout: float, aborted: threading.Event) -> socket.socket:
    """Tries every resolved address in turn; returns a blocking socket with `timeout` and TCP_NODELAY."""
    last_error = "no address"
    for family, kind, proto, _, sockaddr in resolve(address):
        sock = socket.socket(family, kind, proto)
        try:
            _connect_polled(sock, sockaddr, timeout, aborted)
        except ConnectError as exc:
            sock.close()
            last_error = str(exc)
            if aborted.is_set():
                break
            continue
        sock.setblocking(True)
        sock.settimeout(timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    raise ConnectError(last_error)


def _connect_polled(sock: socket.socket, sockaddr: Any, timeout: float, aborted: threading.Event) -> None:
    sock.setblocking(False)
    code = sock.connect_ex(sockaddr)
    if code not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN):
        raise ConnectError(os.strerror(code))
    deadline = time.monotonic() + timeout
    while code != 0:
        if aborted.is_set():
            raise ConnectError("connection attempt abandoned")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ConnectError(f"connect timed out after {timeout:g}s")
        _, writable, failed = select.select([], [sock], [sock], min(_POLL, remaining))
        if writable or failed:
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code != 0:
                raise ConnectError(os.strerror(code))
            return


class PlainTransport:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.description = "TCP"

    def fileno(self) -> int:
        return self.sock.fileno()

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv(self) -> bytes:
        """What the peer sent, blocking up to the socket timeout; b"" at end of stream."""
        return self.sock.recv(_READ_SIZE)

    def has_buffered(self) -> bool:
        return False

    def close(self) -> None:
        _shutdown(self.sock)


class TlsTransport:
    def __init__(self, sock: socket.socket, context: ssl.SSLContext, server_hostname: str) -> None:
        self.sock = sock
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_hostname=server_hostname)
        # Guards the SSL object and both BIOs; never held during socket I/O.
        self._state = threading.Lock()
        # Held from taking bytes out of the outgoing BIO until they are on the wire, so records stay in order.
        self._sending = threading.Lock()
        self.description = "TLS"

    def handshake(self) -> None:
        """Raises ssl.SSLError (incl. SSLCertVerificationError) or OSError; sends our alert first if any."""
        while True:
            try:
                with self._state:
                    self._tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                data = self.sock.recv(_READ_SIZE)
                if not data:
                    raise ConnectionError("connection closed during the TLS handshake") from None
                with self._state:
                    self._incoming.write(data)
            except ssl.SSLError:
                self._flush_quietly()
                raise
        self._flush()
        self.description = self._tls.version() or "TLS"

    def fileno(self) -> int:
        return self.sock.fileno()

    def sendall(self, data: bytes) -> None:
        with self._sending:
            with self._state:
                self._tls.write(data)
                encrypted = self._outgoing.read()
            self.sock.sendall(encrypted)

    def recv(self) -> bytes:
        """Decrypted bytes, reading the socket as often as needed (blocking up to its timeout); b"" at end of stream."""
        while True:
            with self._state:
                data = self._read_plaintext()
                reply_pending = self._outgoing.pending > 0
            if reply_pending:
                self._flush()
            if data is not None:
                return data
            raw = self.sock.recv(_READ_SIZE)
            if not raw:
                return b""
            with self._state:
                self._incoming.write(raw)

    def _read_plaintext(self) -> bytes | None:
        chunks = []
        try:
            while True:
                chunks.append(self._tls.read(_READ_SIZE))
                if not self._tls.pending():
                    break
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLZeroReturnError:
            chunks.append(b"")
            return b"".join(chunks)
        data = b"".join(chunks)
        return data or None

    def has_buffered(self) -> bool:
        with self._state:
            return self._tls.pending() > 0

    def _flush(self) -> None:
        with self._sending:
            with self._state:
                data = self._outgoing.read()
            if data:
                self.sock.sendall(data)

    def _flush_quietly(self) -> None:
        with contextlib.suppress(OSError):
            self._flush()

    def close(self) -> None:
        _shutdown(self.sock)


Transport = PlainTransport | TlsTransport


def open_transport(
    address: HostAddress, context: ssl.SSLContext | None, timeout: float, aborted: threading.Event
) -> Transport:
    """Connects and, with a TLS context, completes the handshake; raises ConnectError with the cause."""
    sock = connect_tcp(address, timeout, aborted)
    if context is None:
        return PlainTransport(sock)
    transport = TlsTransport(sock, context, address.host)
    try:
        transport.handshake()
    except ssl.SSLError as exc:
        transport.close()
        raise ConnectError(f"TLS handshake failed: {describe_tls_error(exc)}") from None
    except OSError as exc:
        transport.close()
        raise ConnectError(f"TLS handshake failed: {describe_os_error(exc)}") from None
    return transport


def describe_tls_error(exc: ssl.SSLError) -> str:
    """One line, e.g. `certificate verify failed: unable to get local issuer certificate`."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {exc.verify_message.rstrip('.')}"
    if exc.reason:
        return exc.reason.replace("_", " ").lower()
    return str(exc)


def describe_os_error(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return describe_tls_error(exc)
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _shutdown(sock: socket.socket) -> None:
    """Wakes any thread blocked on the socket, then releases it."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
