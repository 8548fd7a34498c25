"""Configuration of the `syslog` input: Filebeat's syslog input keys, validated with their key paths."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from datetime import tzinfo

from forwarder.inputs.syslog_parser import FORMATS, parse_timezone
from forwarder.schema.section import Section

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
    # Below the common 1024 open-files limit, so accept() does not fail for lack of descriptors.
    max_connections: int = 512
    # Bytes of unfinished frames held across all connections before reading pauses.
    max_buffered_bytes: int = 64 * 1024 * 1024
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
    config.max_connections = section.integer("max_connections", config.max_connections, minimum=1)
    config.max_buffered_bytes = section.size("max_buffered_bytes", config.max_buffered_bytes)
    config.timeout = section.duration("timeout", config.timeout)
    if config.max_message_size < 1:
        section.error("max_message_size", "must be at least 1 byte")
    if config.max_buffered_bytes < 1:
        section.error("max_buffered_bytes", "must be at least 1 byte")
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
    # No TLS 1.3 session tickets: a sender that never reads leaves them unread, and closing a socket with
    # unread data makes its kernel send a reset that discards what this side had not read yet.
    context.num_tickets = 0
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
