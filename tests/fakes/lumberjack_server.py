"""A Lumberjack v2 receiver (what a Logstash beats input speaks) for tests and benchmarks.

It parses `W`, `J` and `C` frames strictly (version bytes, per-window
sequence numbers from 1, complete zlib streams holding only `J` frames, JSON
objects) and records every violation in `errors`, so a test can assert the
client spoke the protocol exactly. Its `behaviour` can be switched at any
time to reproduce what real receivers do: partial ACKs, keepalive ACK 0s
while holding a window, connections dropped mid-window (events already read
are kept, as Logstash keeps what it queued), refused connections, bogus ACKs.

In-process use::

    with LumberjackServer() as server:
        ...point the output at server.address...
        events = server.wait_for_events(10)

As a separate process (benchmarks, end-to-end tests that kill the
forwarder)::

    python -m tests.fakes.lumberjack_server --port 0 [--events-file out.ndjson]

prints its bound port on the first stdout line, then one JSON line of
counters every `--report-interval` seconds and once more when it ends
(SIGTERM, SIGINT or stdin closed with `--exit-on-stdin-eof`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import socket
import ssl
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

from tests.fakes.lumberjack_frames import ProtocolViolation, StreamReader, decode, inflate, read_json_frame

_U32 = struct.Struct(">I")


@dataclass(frozen=True)
class Behaviour:
    """How the server answers; replace `server.behaviour` to switch, it applies from the next window."""

    ack_parts: int = 1  # ACK each window in this many steps, e.g. 2 = half of it, then the rest
    ack_delay: float = 0.0  # hold the final ACK this long ...
    hold: threading.Event | None = None  # ... or until the test sets this event ...
    keepalive_interval: float | None = None  # ... sending ACK 0 at this interval meanwhile
    never_ack: bool = False  # read windows but never answer (a hung Logstash)
    drop_after_events: int | None = None  # close (RST) after reading this many events of a window; once
    refuse: bool = False  # accept, then close at once with a RST
    ack_override: bytes | None = None  # send these bytes instead of the ACKs (protocol errors)


@dataclass(frozen=True)
class WindowRecord:
    connection: int
    size: int
    compressed: bool


class LumberjackServer:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        behaviour: Behaviour | None = None,
        store_events: bool = True,
        decode_json: bool = True,
        on_window: Callable[[list[bytes]], None] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.behaviour = behaviour or Behaviour()
        self._store = store_events
        self._decode = decode_json
        self._on_window = on_window
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._events: list[dict[str, Any]] = []
        self._windows: list[WindowRecord] = []
        self.event_count = 0
        self.payload_bytes = 0
        self.window_count = 0
        self.connections = 0
        self.errors: list[str] = []
        self.tls_failures: list[str] = []
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._accepting: threading.Thread | None = None
        self._open: set[socket.socket] = set()

    # ----- lifecycle -------------------------------------------------------

    def start(self) -> LumberjackServer:
        self.resume_listening()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self.stop_listening()
        self.drop_connections()

    def __enter__(self) -> LumberjackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop_listening(self) -> None:
        """New connections are refused (the port is closed); open ones continue."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        if self._accepting is not None:
            self._accepting.join()
            self._accepting = None

    def resume_listening(self) -> None:
        """Listens again, on the same port once one was bound."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(64)
        listener.settimeout(0.1)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._accepting = threading.Thread(target=self._accept_loop, args=(listener,), daemon=True)
        self._accepting.start()

    def drop_connections(self) -> None:
        """Resets every open connection, as a crashing Logstash would."""
        with self._lock:
            sockets = list(self._open)
        for sock in sockets:
            _reset(sock)

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    # ----- what arrived ----------------------------------------------------

    @property
    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._events)

    @property
    def windows(self) -> list[WindowRecord]:
        with self._lock:
            return list(self._windows)

    def wait_for(self, condition: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
        """Polls `condition` (woken on every window) until true; AssertionError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"timed out waiting for {what}: {self.event_count} events, {self.window_count} windows, "
                        f"{self.connections} connections, errors {self.errors}"
                    )
                self._changed.wait(min(remaining, 0.1))

    def wait_for_events(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        self.wait_for(lambda: self.event_count >= count, timeout, f"{count} events")
        return self.events

    # ----- serving ---------------------------------------------------------

    def _accept_loop(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
                number = self.connections
                self._changed.notify_all()
            if self.behaviour.refuse:
                _reset(sock)
                continue
            threading.Thread(target=self._serve, args=(sock, number), daemon=True).start()

    def _serve(self, sock: socket.socket, number: int) -> None:
        sock.setblocking(True)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.ssl_context is not None:
            try:
                sock.settimeout(10)
                sock = self.ssl_context.wrap_socket(sock, server_side=True)
                sock.settimeout(None)
            except (ssl.SSLError, OSError) as exc:
                with self._lock:
                    self.tls_failures.append(str(exc))
                    self._changed.notify_all()
                sock.close()
                return
        with self._lock:
            self._open.add(sock)
        try:
            self._read_windows(StreamReader(sock), sock, number)
        except ProtocolViolation as exc:
            with self._lock:
                self.errors.append(f"connection {number}: {exc}")
                self._changed.notify_all()
        except (OSError, EOFError):
            pass
        finally:
            with self._lock:
                self._open.discard(sock)
            _reset(sock)

    def _read_windows(self, reader: StreamReader, sock: socket.socket, number: int) -> None:
        while not self._stopping.is_set():
            header = reader.read_or_eof(2)
            if header is None:
                return
            if header != b"2W":
                raise ProtocolViolation(f"expected a window frame 2W, got {header!r}")
            size = _U32.unpack(reader.read(4))[0]
            behaviour = self.behaviour
            payloads: list[bytes] = []
            compressed = False
            while len(payloads) < size:
                kind = reader.read(2)
                if kind == b"2J":
                    payloads.append(read_json_frame(reader.read, len(payloads) + 1))
                elif kind == b"2C":
                    compressed = True
                    payloads.extend(inflate(reader.read(_U32.unpack(reader.read(4))[0]), len(payloads)))
                else:
                    raise ProtocolViolation(f"unexpected frame {kind!r} inside a window of {size}")
                if behaviour.drop_after_events is not None and len(payloads) >= behaviour.drop_after_events:
                    self.behaviour = dataclasses.replace(self.behaviour, drop_after_events=None)
                    self._accept(payloads[: behaviour.drop_after_events], number, size, compressed)
                    return
            if len(payloads) > size:
                raise ProtocolViolation(f"window of {size} carried {len(payloads)} events")
            self._accept(payloads, number, size, compressed)
            self._acknowledge(sock, size, behaviour)

    def _accept(self, payloads: list[bytes], number: int, size: int, compressed: bool) -> None:
        decoded = [decode(p) for p in payloads] if self._decode else []
        if self._on_window is not None:
            self._on_window(payloads)
        with self._lock:
            if self._store:
                self._events.extend(decoded)
            self.event_count += len(payloads)
            self.payload_bytes += sum(len(p) for p in payloads)
            self.window_count += 1
            self._windows.append(WindowRecord(number, size, compressed))
            self._changed.notify_all()

    def _acknowledge(self, sock: socket.socket, size: int, behaviour: Behaviour) -> None:
        if behaviour.ack_override is not None:
            sock.sendall(behaviour.ack_override)
            return
        if behaviour.never_ack:
            return
        parts = max(1, behaviour.ack_parts)
        steps = sorted({max(1, size * part // parts) for part in range(1, parts + 1)})
        for sequence in steps[:-1]:
            sock.sendall(b"2A" + _U32.pack(sequence))
        deadline = time.monotonic() + behaviour.ack_delay
        interval = behaviour.keepalive_interval

        def holding() -> bool:
            held = behaviour.hold is not None and not behaviour.hold.is_set()
            return held or time.monotonic() < deadline

        while holding():
            step = interval or 0.02
            if behaviour.hold is None:
                step = min(step, max(0.0, deadline - time.monotonic()))
            if self._stopping.wait(step):
                return
            if interval and holding():
                sock.sendall(b"2A\x00\x00\x00\x00")
        sock.sendall(b"2A" + _U32.pack(size))


def _reset(sock: socket.socket) -> None:
    """Close with SO_LINGER 0, so the peer sees a RST (as with Logstash) rather than a FIN.

    Shutting down only the read side wakes a thread blocked in `recv` on this
    socket without sending anything to the peer.
    """
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RD)
    except OSError:
        pass
    sock.close()


def make_server_tls_context(certificate: Any, client_ca: Any = None) -> ssl.SSLContext:
    """A server context from a trustme `LeafCert`; with `client_ca` (a trustme CA) client certificates are required."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    certificate.configure_cert(context)
    if client_ca is not None:
        client_ca.configure_trust(context)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


# ----- separate-process mode ------------------------------------------------


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.lumberjack_server", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--report-interval", type=float, default=1.0, help="seconds between counter lines")
    parser.add_argument("--events-file", help="append every received event's JSON here, one per line")
    parser.add_argument("--no-decode", action="store_true", help="skip JSON validation of events")
    parser.add_argument("--ack-delay", type=float, default=0.0)
    parser.add_argument("--keepalive-interval", type=float)
    parser.add_argument("--tls-cert", help="server certificate chain (PEM); enables TLS")
    parser.add_argument("--tls-key", help="server private key (PEM)")
    parser.add_argument("--tls-client-ca", help="require client certificates issued by this CA (PEM)")
    parser.add_argument("--exit-on-stdin-eof", action="store_true", help="stop when stdin closes")
    return parser.parse_args(argv)


def _report(server: LumberjackServer, started: float) -> str:
    elapsed = time.monotonic() - started
    return json.dumps({
        "events": server.event_count, "payload_bytes": server.payload_bytes, "windows": server.window_count,
        "connections": server.connections,
        "errors": len(server.errors), "elapsed": round(elapsed, 3),
        "rate": round(server.event_count / elapsed, 1) if elapsed > 0 else 0.0,
    })


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    context = None
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        if args.tls_client_ca:
            context.load_verify_locations(args.tls_client_ca)
            context.verify_mode = ssl.CERT_REQUIRED
    sink: BinaryIO | None = open(args.events_file, "ab") if args.events_file else None  # noqa: SIM115
    write_lock = threading.Lock()

    def record(payloads: list[bytes]) -> None:
        assert sink is not None
        with write_lock:
            sink.write(b"\n".join(payloads) + b"\n")
            sink.flush()

    server = LumberjackServer(
        args.host, args.port, context, Behaviour(ack_delay=args.ack_delay, keepalive_interval=args.keepalive_interval),
        store_events=False, decode_json=not args.no_decode, on_window=record if sink else None,
    )
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    if args.exit_on_stdin_eof:
        threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    server.start()
    print(server.port, flush=True)
    started = time.monotonic()
    while not done.wait(args.report_interval):
        print(_report(server, started), flush=True)
    server.stop()
    print(_report(server, started), flush=True)
    for error in server.errors:
        print(f"protocol error: {error}", file=sys.stderr, flush=True)
    if sink is not None:
        sink.close()
    return 1 if server.errors else 0


if __name__ == "__main__":
    sys.exit(main())
