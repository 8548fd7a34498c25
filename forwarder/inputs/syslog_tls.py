"""TLS for the syslog TCP listener, driven through memory BIOs over the plain socket.

With `ssl.SSLSocket`, a reset from the sender surfaces (OpenSSL 3) as the same
"EOF occurred in violation of protocol" as a sender that merely closed without
close_notify, so a reset that cut a stream could not be told apart and counted.
Reading the socket here lets `ConnectionResetError` reach the listener as it
does for plain TCP.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time


class TlsServerStream:
    """The server side of one TLS connection; `recv` behaves like a socket's (b"" at the end of the stream)."""

    def __init__(self, sock: socket.socket, context: ssl.SSLContext) -> None:
        self._sock = sock
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_side=True)

    def handshake(self, stop: threading.Event, timeout: float) -> None:
        """Completes the handshake; raises OSError (ssl.SSLError included) or TimeoutError when it cannot."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._tls.do_handshake()
                self._flush()
                return
            except ssl.SSLWantReadError:
                self._flush()
            except ssl.SSLError:
                with contextlib.suppress(OSError):
                    self._flush()  # the alert, so the sender learns why
                raise
            if stop.is_set() or time.monotonic() > deadline:
                raise TimeoutError("handshake not completed in time")
            with contextlib.suppress(TimeoutError):
                self._receive_raw()

    def recv(self, size: int) -> bytes:
        """Decrypted bytes; b"" once the sender closed (with or without close_notify).

        Raises TimeoutError when nothing arrived within the socket's timeout and
        ConnectionResetError when the sender reset the connection.
        """
        while True:
            try:
                data = self._tls.read(size)
                self._flush()
                return data
            except ssl.SSLWantReadError:
                self._flush()
            except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
                return b""
            self._receive_raw()

    def _receive_raw(self) -> None:
        data = self._sock.recv(65536)
        if data:
            self._incoming.write(data)
        else:
            self._incoming.write_eof()

    def _flush(self) -> None:
        pending = self._outgoing.read()
        if pending:
            self._sock.sendall(pending)
