"""The `syslog` input: UDP, TCP and TLS listeners that turn syslog messages into events.

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
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from forwarder.config.section import Section
from forwarder.inputs.base import InputContext, InputType, PermanentInputError
from forwarder.inputs.syslog_framing import SyslogFrameSplitter
from forwarder.inputs.syslog_parser import FORMATS, SyslogParser, parse_timezone
from forwarder.pipeline.event import Event

# How often blocked socket calls wake up to notice shutdown.
_POLL_SECONDS = 0.25
# Linux socket option: a counter of datagrams the kernel dropped, sent as ancillary data.
_SO_RXQ_OVFL = 40
_DROP_WARNING_INTERVAL = 60.0
_RECV_SIZE = 65536
_DELIMITER_ESCAPES = {"\\n": "\n", "\\r": "\r", "\\t": "\t", "\\0": "\0"}


@dataclass
class UdpConfig:
    host: str
    port: int
    max_message_size: int = 10 * 1024
    read_buffer: int | None = None


@dataclass
class TcpConfig:
    host: str
    port: int
    max_message_size: int = 20 * 1024 * 1024
    line_delimiter: bytes = b"\n"
    max_connections: int | None = None
    timeout: float = 300.0
    tls: ssl.SSLContext | None = None


@dataclass
class SyslogConfig:
    format: str = "auto"
    # None: the host's local zone.
    timezone: tzinfo | None = None
    udp: UdpConfig | None = None
    tcp: TcpConfig | None = None


def parse_config(section: Section) -> SyslogConfig:
    """Reads Filebeat's syslog input keys; the caller checks the common keys and unknown ones."""
    config = SyslogConfig(format=section.string("format", "auto", choices=FORMATS))
    try:
        config.timezone = parse_timezone(section.string("timezone", "Local"))
    except ValueError as exc:
        section.error("timezone", str(exc))
    protocol = section.section("protocol")
    if protocol.has("unix"):
        protocol.error("unix", "unix sockets are not supported; listen on udp or tcp instead")
    if protocol.has("udp"):
        udp = protocol.section("udp")
        address = _listen_address(udp)
        config.udp = UdpConfig(*address, udp.size("max_message_size", 10 * 1024), udp.size("read_buffer", None))
        udp.ignore("timeout")
        udp.finish()
    if protocol.has("tcp"):
        config.tcp = _parse_tcp(protocol.section("tcp"))
    protocol.finish()
    if config.udp is None and config.tcp is None and not protocol.has("unix"):
        section.error("protocol", "set protocol.udp.host and/or protocol.tcp.host, e.g. 127.0.0.1:5514")
    return config


def _parse_tcp(section: Section) -> TcpConfig:
    config = TcpConfig(*_listen_address(section))
    config.max_message_size = section.size("max_message_size", config.max_message_size)
    # Framing is detected per frame, so both settings are accepted and mean the same.
    section.string("framing", "delimiter", choices=("delimiter", "rfc6587"))
    delimiter = section.string("line_delimiter", "\n")
    for escape, char in _DELIMITER_ESCAPES.items():
        delimiter = delimiter.replace(escape, char)
    if delimiter:
        config.line_delimiter = delimiter.encode("utf-8")
    else:
        section.error("line_delimiter", "must not be empty")
    config.max_connections = section.integer("max_connections", None, minimum=1)
    config.timeout = section.duration("timeout", config.timeout)
    if config.max_message_size < 1:
        section.error("max_message_size", "must be at least 1 byte")
    if config.timeout <= 0:
        section.error("timeout", "must be greater than 0")
    if section.has("ssl"):
        config.tls = _server_tls(section.section("ssl"))
    section.finish()
    return config


def _listen_address(section: Section) -> tuple[str, int]:
    text = section.string("host")
    if text is None:
        return "", 0
    host, colon, port = text.rpartition(":")
    if not colon or not port.isdigit() or int(port) > 65535:
        section.error("host", f"expected host:port such as 127.0.0.1:5514 (got {text!r})")
        return "", 0
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        section.error("host", f"write an IPv6 address in brackets, e.g. [::1]:{port} (got {text!r})")
    return host or "0.0.0.0", int(port)


def _server_tls(section: Section) -> ssl.SSLContext | None:
    """The TLS context for the TCP listener, built now so that unreadable files are config errors."""
    enabled = section.boolean("enabled", True)
    certificate = section.string("certificate", None)
    key = section.string("key", None)
    passphrase = section.string("key_passphrase", None)
    authorities = section.string_list("certificate_authorities", [])
    client_auth = section.string("client_authentication", "required" if authorities else "none",
                                 choices=("none", "optional", "required"))
    section.finish()
    if not enabled:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    for name, path in (("certificate", certificate), ("key", key)):
        if path is None:
            section.error(name, "is required when ssl is enabled (a PEM file)")
            return None
        if not _readable(section, name, path):
            return None
    try:
        # An empty passphrase rather than None: OpenSSL would otherwise prompt on the terminal.
        context.load_cert_chain(certificate, key, password=passphrase or "")
    except ssl.SSLError:
        section.error("key", "cannot load the certificate and key: not PEM, not a matching pair, "
                             "or a wrong or missing ssl.key_passphrase")
        return None
    for path in authorities:
        if not _readable(section, "certificate_authorities", path):
            return None
        try:
            context.load_verify_locations(cafile=path)
        except ssl.SSLError:
            section.error("certificate_authorities", f"{path}: no PEM certificate found")
            return None
    if client_auth != "none" and not authorities:
        section.error("client_authentication", f"{client_auth!r} needs ssl.certificate_authorities to verify clients")
    context.verify_mode = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL}.get(client_auth, ssl.CERT_REQUIRED)
    return context


def _readable(section: Section, key: str, path: str) -> bool:
    try:
        with open(path, "rb"):
            return True
    except OSError as exc:
        section.error(key, f"cannot read {path}: {exc.strerror}")
        return False


def _address_text(peer: Any) -> str:
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
    sock.settimeout(_POLL_SECONDS)
    return sock


class SyslogInput:
    def __init__(self, config: SyslogConfig, context: InputContext) -> None:
        self.config = config
        self.context = context
        self.parser = SyslogParser(config.format, config.timezone)
        # Set once every listener is bound; `addresses` then maps "udp"/"tcp" to the bound (host, port).
        self.listening = threading.Event()
        self.addresses: dict[str, tuple[str, int]] = {}
        self._closing = threading.Event()

    def run(self) -> None:
        listeners: list[_Listener] = []
        try:
            if self.config.udp is not None:
                listeners.append(UdpListener(self, self.config.udp))
            if self.config.tcp is not None:
                listeners.append(TcpListener(self, self.config.tcp))
            for listener in listeners:
                listener.start()
            bound = ", ".join(f"{protocol} {_address_text(address)}" for protocol, address in self.addresses.items())
            self.context.log.info("syslog input %s listening on %s", self.context.input_id, bound)
            self.listening.set()
            while not self.context.stop.wait(_POLL_SECONDS):
                for listener in listeners:
                    if listener.failure is not None:
                        raise listener.failure
        finally:
            self._closing.set()
            deadline = time.monotonic() + 1.0
            for listener in listeners:
                listener.close(deadline)
            self.listening.clear()

    @property
    def stopping(self) -> bool:
        return self._closing.is_set() or self.context.stop.is_set()

    def event(self, payload: bytes, truncated: bool, peer: Any) -> Event:
        parsed = self.parser.parse(payload)
        log: dict[str, Any] = {"source": {"address": _address_text(peer)}}
        fields: dict[str, Any] = {"message": parsed.message, "log": log}
        meta: dict[str, Any] = {}
        tags = []
        if parsed.syslog:
            log["syslog"] = parsed.syslog
        if parsed.error:
            fields["error"] = {"message": parsed.error}
            tags.append("_parse_failure")
        if truncated:
            meta["truncated"] = True
            tags.append("_truncated")
        if tags:
            fields["tags"] = tags
        return Event(fields, parsed.timestamp, meta)


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
            if self._slots is not None and not self._slots.acquire(timeout=_POLL_SECONDS):
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
                self.owner.context.stop.wait(_POLL_SECONDS)
                continue
            thread = threading.Thread(target=self._handle, args=(conn, peer), daemon=True,
                                      name=f"syslog-tcp-{_address_text(peer)}")
            with self._lock:
                self._connections.add(thread)
                self.owner.context.stats.extra["tcp_connections"] = len(self._connections)
            thread.start()

    def _release(self) -> None:
        if self._slots is not None:
            self._slots.release()

    def _handle(self, conn: socket.socket, peer: Any) -> None:
        source = _address_text(peer)
        try:
            conn.settimeout(_POLL_SECONDS)
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
            for frame in frames:
                if not client.publish(self.owner.event(frame.payload, frame.truncated, peer)):
                    return
            if not data:
                return
            last_data = time.monotonic()


def create(config: SyslogConfig, context: InputContext) -> SyslogInput:
    return SyslogInput(config, context)


INPUT_TYPE = InputType("syslog", parse_config, create)
