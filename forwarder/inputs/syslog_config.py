"""The settings of the `syslog` input: Filebeat's syslog input keys, validated with their key paths.

`SETTINGS` declares every key once (default, bounds, doc line) and is also the
source of the README's table. What a declaration cannot say stays plain code
in `parse_config`: a protocol is on when its section is written, at least one
must be, and the TLS context is built while reading so that an unreadable or
mismatched certificate is a config error rather than a failed listener.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from forwarder.inputs.syslog_parser import FORMATS, parse_timezone
from forwarder.schema.declared import (
    BOOLEAN,
    DURATION,
    INTEGER,
    SIZE,
    STRING,
    STRINGS,
    Setting,
    SettingValues,
    ValueType,
    ignored,
    read_settings,
    rejected,
)
from forwarder.schema.section import Section

_DELIMITER_ESCAPES = {"\\n": "\n", "\\r": "\r", "\\t": "\t", "\\0": "\0"}
CLIENT_AUTHENTICATION = ("none", "optional", "required")


def _read_listen_address(section: Section, key: str, setting: Setting, default: Any) -> tuple[str, int] | None:
    """`host:port` as (host, port); None when not written, ("", 0) once a wrong value is reported."""
    if section.data.get(key) is None:
        return None
    text = section.string(key, None)
    if text is None:
        return "", 0
    host, colon, port = text.rpartition(":")
    if not colon or not port.isdigit() or int(port) > 65535:
        section.error(key, f"expected host:port such as 127.0.0.1:5514 (got {text!r})")
        return "", 0
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        section.error(key, f"write an IPv6 address in brackets, e.g. [::1]:{port} (got {text!r})")
    return host or "0.0.0.0", int(port)


def _line_delimiter(text: str) -> bytes:
    """The delimiter's bytes, with the escapes a YAML single-quoted or plain string leaves as written (`\\n`)."""
    for escape, char in _DELIMITER_ESCAPES.items():
        text = text.replace(escape, char)
    return text.encode("utf-8")


def _read_line_delimiter(section: Section, key: str, setting: Setting, default: bytes) -> bytes:
    text = section.string(key, None)
    if text is None:
        return default
    delimiter = _line_delimiter(text)
    if not delimiter:
        section.error(key, "must not be empty")
        return default
    return delimiter


def _read_timezone(section: Section, key: str, setting: Setting, default: tzinfo | None) -> tzinfo | None:
    text = section.string(key, None)
    if text is None:
        return default
    try:
        return parse_timezone(text)
    except ValueError as exc:
        section.error(key, str(exc))
        return default


LISTEN_ADDRESS = ValueType("host:port", _read_listen_address)
LINE_DELIMITER = ValueType("string", _read_line_delimiter, _line_delimiter)
TIMEZONE = ValueType("time zone", _read_timezone, parse_timezone)

TLS = "protocol.tcp.ssl"
SETTINGS = (
    Setting("format", STRING, "auto", "`auto` detects RFC 3164 or RFC 5424 per message", choices=FORMATS),
    Setting("timezone", TIMEZONE, "Local", "zone of RFC 3164 stamps, which carry none: `Local`, `UTC`, an offset "
            "(`+0200`) or an IANA name (`Europe/Berlin`)"),
    Setting("protocol.udp.host", LISTEN_ADDRESS, None, "listen on UDP at this `ip:port` (`:5514`: every IPv4 "
            "address; `[::1]:5514` for IPv6)"),
    Setting("protocol.udp.max_message_size", SIZE, "10KiB", "longer datagrams are truncated and tagged "
            "`_truncated`", positive=True),
    Setting("protocol.udp.read_buffer", SIZE, None, "the socket's receive buffer (`SO_RCVBUF`); `0`: the OS "
            "default. Linux caps it at `net.core.rmem_max` unless the forwarder runs as root (then "
            "`SO_RCVBUFFORCE` sets it whole)",
            minimum=0, doc_default="OS default"),
    *ignored("protocol.udp.timeout", doc="accepted for Filebeat compatibility, without effect: a datagram is "
             "read whole"),
    Setting("protocol.tcp.host", LISTEN_ADDRESS, None, "listen on TCP at this `ip:port`; octet counting and "
            "newline framing are detected per frame"),
    Setting("protocol.tcp.max_message_size", SIZE, "20MiB", "a longer frame is truncated and the stream "
            "resynchronised; an octet count above it is not trusted (below)", positive=True),
    Setting("protocol.tcp.framing", STRING, "delimiter", "both are accepted and mean the same: framing is "
            "detected per frame", choices=("delimiter", "rfc6587")),
    Setting("protocol.tcp.line_delimiter", LINE_DELIMITER, "\\n", "ends a newline-framed message; `\\n`, `\\r`, "
            "`\\t` and `\\0` are read as escapes"),
    # Below the common 1024 open-files limit, so accept() does not fail for lack of descriptors.
    Setting("protocol.tcp.max_connections", INTEGER, 512, "connections served at once; further ones wait in the "
            "listen backlog until one closes, as with Filebeat", minimum=1),
    Setting("protocol.tcp.max_buffered_bytes", SIZE, "64MiB", "bytes of unfinished messages held across all "
            "connections before reading pauses (below)", positive=True),
    Setting("protocol.tcp.timeout", DURATION, "5m", "idle connections are closed after this long", positive=True),
    Setting(f"{TLS}.enabled", BOOLEAN, True, "TLS is on once the `ssl` section is written; `false` turns it off"),
    Setting(f"{TLS}.certificate", STRING, None, "the server certificate, a PEM file (required with TLS)"),
    Setting(f"{TLS}.key", STRING, None, "its private key, a PEM file (required with TLS)"),
    Setting(f"{TLS}.key_passphrase", STRING, None, "passphrase of an encrypted `key`", secret=True),
    Setting(f"{TLS}.certificate_authorities", STRINGS, [], "PEM files of the CAs that client certificates are "
            "checked against"),
    Setting(f"{TLS}.client_authentication", STRING, None, "whether clients must show a certificate; `optional` "
            "and `required` need `certificate_authorities`", choices=CLIENT_AUTHENTICATION,
            doc_default="`required` with `certificate_authorities`, else `none`"),
    *rejected("protocol.unix", message="unix sockets are not supported; listen on udp or tcp instead"),
)


@dataclass
class UdpConfig:
    host: str
    port: int
    max_message_size: int
    # None or 0: the OS default.
    read_buffer: int | None


@dataclass
class TcpConfig:
    host: str
    port: int
    max_message_size: int
    line_delimiter: bytes
    max_connections: int
    # Bytes of unfinished frames held across all connections before reading pauses.
    max_buffered_bytes: int
    timeout: float
    tls: ssl.SSLContext | None


@dataclass
class SyslogConfig:
    format: str
    # None: the host's local zone.
    timezone: tzinfo | None
    udp: UdpConfig | None
    tcp: TcpConfig | None


def parse_config(section: Section) -> SyslogConfig:
    """Reads Filebeat's syslog input keys; the caller checks the common keys and unknown ones."""
    values = read_settings(section, SETTINGS)
    protocol = values.section("protocol")
    udp = _udp(values) if "udp" in protocol.data else None
    tcp = _tcp(values) if "tcp" in protocol.data else None
    if udp is None and tcp is None and protocol.data.get("unix") in (None, ""):
        values.error("protocol", "set protocol.udp.host and/or protocol.tcp.host, e.g. 127.0.0.1:5514")
    return SyslogConfig(format=values["format"], timezone=values["timezone"], udp=udp, tcp=tcp)


def _listen_address(values: SettingValues, name: str) -> tuple[str, int]:
    address = values[name]
    if address is None:
        values.error(name, "is required (host:port such as 127.0.0.1:5514)")
        return "", 0
    return address


def _udp(values: SettingValues) -> UdpConfig:
    host, port = _listen_address(values, "protocol.udp.host")
    return UdpConfig(host=host, port=port, max_message_size=values["protocol.udp.max_message_size"],
                     read_buffer=values["protocol.udp.read_buffer"])


def _tcp(values: SettingValues) -> TcpConfig:
    host, port = _listen_address(values, "protocol.tcp.host")
    tls = _server_tls(values) if "ssl" in values.section("protocol.tcp").data else None
    return TcpConfig(
        host=host,
        port=port,
        max_message_size=values["protocol.tcp.max_message_size"],
        line_delimiter=values["protocol.tcp.line_delimiter"],
        max_connections=values["protocol.tcp.max_connections"],
        max_buffered_bytes=values["protocol.tcp.max_buffered_bytes"],
        timeout=values["protocol.tcp.timeout"],
        tls=tls,
    )


def _server_tls(values: SettingValues) -> ssl.SSLContext | None:
    """The TLS context for the TCP listener, built now so that unreadable files are config errors."""
    if not values[f"{TLS}.enabled"]:
        return None
    certificate, key = values[f"{TLS}.certificate"], values[f"{TLS}.key"]
    authorities = values[f"{TLS}.certificate_authorities"]
    client_auth = values[f"{TLS}.client_authentication"] or ("required" if authorities else "none")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # No TLS 1.3 session tickets: a sender that never reads leaves them unread, and closing a socket with
    # unread data makes its kernel send a reset that discards what this side had not read yet.
    context.num_tickets = 0
    for name, path in (("certificate", certificate), ("key", key)):
        if path is None:
            values.error(f"{TLS}.{name}", "is required when ssl is enabled (a PEM file)")
            return None
        if not _readable(values, f"{TLS}.{name}", path):
            return None
    try:
        # An empty passphrase rather than None: OpenSSL would otherwise prompt on the terminal.
        context.load_cert_chain(certificate, key, password=values[f"{TLS}.key_passphrase"] or "")
    except ssl.SSLError:
        values.error(f"{TLS}.key", "cannot load the certificate and key: not PEM, not a matching pair, "
                                   "or a wrong or missing ssl.key_passphrase")
        return None
    for path in authorities:
        if not _readable(values, f"{TLS}.certificate_authorities", path):
            return None
        try:
            context.load_verify_locations(cafile=path)
        except ssl.SSLError:
            values.error(f"{TLS}.certificate_authorities", f"{path}: no PEM certificate found")
            return None
    if client_auth != "none" and not authorities:
        values.error(f"{TLS}.client_authentication",
                     f"{client_auth!r} needs ssl.certificate_authorities to verify clients")
    context.verify_mode = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL}.get(client_auth, ssl.CERT_REQUIRED)
    return context


def _readable(values: SettingValues, name: str, path: str) -> bool:
    try:
        with open(path, "rb"):
            return True
    except OSError as exc:
        values.error(name, f"cannot read {path}: {exc.strerror}")
        return False
