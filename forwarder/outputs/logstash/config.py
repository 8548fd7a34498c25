"""The `output.logstash` settings, read with Filebeat's names and defaults.

`max_retries` is accepted for compatibility but has no effect: this output
never gives up on an event (at-least-once delivery). A batch that cannot be
delivered is resent after reconnecting, for as long as the forwarder runs,
and whatever is still unacknowledged at shutdown is replayed from the
registry at the next start.
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass, field

from forwarder.outputs.logstash.tls import TlsSettings, TlsSetupError, build_client_context
from forwarder.schema.declared import (
    BOOLEAN,
    DURATION,
    INTEGER,
    STRING,
    STRINGS,
    Setting,
    SettingValues,
    ignored,
    read_settings,
    rejected,
)
from forwarder.schema.section import Section

DEFAULT_PORT = 5044
VERIFICATION_MODES = ("full", "strict", "certificate", "none")
TLS_PROTOCOLS = ("TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")

SETTINGS = (
    Setting("hosts", STRINGS, doc="`host[:port]` (port 5044), `[::1]:5044` for IPv6"),
    Setting("loadbalance", BOOLEAN, False,
            "false: one host at a time, fail over on error; true: batches spread over all hosts"),
    Setting("worker", INTEGER, 1, "connections per host (`workers` is read the same)", minimum=1, aliases=("workers",)),
    Setting("bulk_max_size", INTEGER, 2048, "events per window", minimum=1),
    Setting("pipelining", INTEGER, 2, "windows in flight per connection (0: one, synchronously)", minimum=0),
    Setting("compression_level", INTEGER, 3, "zlib level, 0 = uncompressed; deflated by ISA-L where installed "
            "(1–3, 4–6, 7–9 become its levels 1, 2, 3)", minimum=0, maximum=9),
    Setting("slow_start", BOOLEAN, False, "start windows at 10 events and grow ×1.5"),
    Setting("escape_html", BOOLEAN, False, "escape `<`, `>` and `&` in the JSON strings sent"),
    Setting("timeout", DURATION, "30s", "per write and per ACK read; Logstash's keepalive ACKs reset it",
            positive=True),
    Setting("ttl", DURATION, "0", "reconnect after this long (for load-balanced Logstash)", minimum=0,
            doc_default="`0` (never)"),
    Setting("max_retries", INTEGER, 3, "accepted for compatibility: retries never stop (at-least-once delivery)"),
    Setting("backoff.init", DURATION, "1s", "first reconnect wait; it doubles on each failure, with jitter",
            positive=True),
    Setting("backoff.max", DURATION, "60s", "longest reconnect wait (not below `backoff.init`)"),
    Setting("index", STRING, "filebeat", "lower-cased, becomes `@metadata.beat`"),
    Setting("ssl.enabled", BOOLEAN, None, "`false` turns TLS off while keeping the other `ssl` settings",
            doc_default="true when `ssl` has settings"),
    Setting("ssl.certificate_authorities", STRINGS, [], "CA files (or inline PEM) that verify Logstash",
            doc_default="system CAs"),
    Setting("ssl.certificate", STRING, None, "client certificate (PEM file) for client authentication"),
    Setting("ssl.key", STRING, None, "its private key (PEM file)"),
    Setting("ssl.key_passphrase", STRING, None, "passphrase of an encrypted `ssl.key`", secret=True),
    Setting("ssl.verification_mode", STRING, "full", "`full`/`strict` check chain and host name, `certificate` "
            "only the chain, `none` nothing", choices=VERIFICATION_MODES),
    Setting("ssl.supported_protocols", STRINGS, [], f"TLS versions allowed, of {', '.join(TLS_PROTOCOLS)}",
            doc_default="TLSv1.2 and up"),
    *rejected("proxy_url", message="is not supported by the logstash output; remove it or connect directly"),
    # Filebeat ssl.* settings with no faithful equivalent here: rejected rather than silently ignored.
    *rejected("ssl.cipher_suites", "ssl.curve_types", "ssl.ca_trusted_fingerprint", "ssl.renegotiation",
              "ssl.ca_sha256", message="is not supported by forwarder; remove it (the TLS library defaults apply)"),
    *ignored("proxy_use_local_resolver"),
)


@dataclass(frozen=True)
class HostAddress:
    host: str
    port: int

    def __str__(self) -> str:
        if ":" in self.host:
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class LogstashConfig:
    hosts: list[HostAddress]
    loadbalance: bool
    workers: int
    bulk_max_size: int
    slow_start: bool
    pipelining: int
    compression_level: int
    escape_html: bool
    ttl: float
    timeout: float
    max_retries: int
    backoff_init: float
    backoff_max: float
    index: str
    tls: TlsSettings | None
    # Built once from `tls` when the config is read, so file and passphrase problems are config errors.
    ssl_context: ssl.SSLContext | None = field(compare=False, repr=False)

    @property
    def windows_in_flight(self) -> int:
        """`pipelining: 0` means a synchronous client: still one window awaiting its ACK."""
        return max(1, self.pipelining)


def parse_host(text: str) -> HostAddress:
    """`host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address; the port defaults to 5044."""
    value = text.strip()
    if not value:
        raise ValueError("empty host")
    if "://" in value:
        raise ValueError(f"{text!r}: give host[:port] without a scheme")
    port_text = ""
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            raise ValueError(f"{text!r}: missing ']' after the IPv6 address")
        host, rest = value[1:end], value[end + 1:]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"{text!r}: expected ':port' after ']'")
            port_text = rest[1:]
        _require_ipv6(host, text)
    elif value.count(":") > 1:
        host = value
        _require_ipv6(host, text)
    elif ":" in value:
        host, port_text = value.split(":", 1)
    else:
        host = value
    if not host:
        raise ValueError(f"{text!r}: missing host name")
    port = DEFAULT_PORT
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"{text!r}: port must be a number from 1 to 65535")
        port = int(port_text)
    return HostAddress(host, port)


def _require_ipv6(host: str, text: str) -> None:
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        raise ValueError(f"{text!r}: {host!r} is not an IPv6 address (write IPv6 hosts as [addr]:port)") from None


def parse_config(section: Section) -> LogstashConfig:
    # `enabled` is read where the output is chosen (config/settings.py).
    section.ignore("enabled")
    values = read_settings(section, SETTINGS)
    host_texts = values["hosts"]
    if host_texts == []:
        values.error("hosts", "must list at least one host")
    hosts: list[HostAddress] = []
    for text in host_texts or []:
        try:
            hosts.append(parse_host(text))
        except ValueError as exc:
            values.error("hosts", str(exc))
    if values["backoff.max"] < values["backoff.init"]:
        values.error("backoff.max", "must not be smaller than backoff.init")
    if not values["index"].strip():
        values.error("index", "must not be empty")
    tls, context = _tls(values)
    config = LogstashConfig(
        hosts=hosts,
        loadbalance=values["loadbalance"],
        workers=values["worker"],
        bulk_max_size=values["bulk_max_size"],
        slow_start=values["slow_start"],
        pipelining=values["pipelining"],
        compression_level=values["compression_level"],
        escape_html=values["escape_html"],
        ttl=values["ttl"],
        timeout=values["timeout"],
        max_retries=values["max_retries"],
        backoff_init=values["backoff.init"],
        backoff_max=values["backoff.max"],
        index=values["index"].lower(),
        tls=tls,
        ssl_context=context,
    )
    section.finish()
    return config


def _tls(values: SettingValues) -> tuple[TlsSettings | None, ssl.SSLContext | None]:
    """Like Filebeat, an `ssl` section with settings is enabled unless `enabled: false` says otherwise."""
    section = values.section("ssl")
    enabled = values["ssl.enabled"]
    if enabled is None:
        enabled = bool(section.data)
    settings = TlsSettings(
        certificate_authorities=values["ssl.certificate_authorities"],
        certificate=values["ssl.certificate"],
        key=values["ssl.key"],
        key_passphrase=values["ssl.key_passphrase"],
        verification_mode=values["ssl.verification_mode"],
        supported_protocols=values["ssl.supported_protocols"],
    )
    for protocol in settings.supported_protocols:
        if protocol not in TLS_PROTOCOLS:
            section.error("supported_protocols", f"{protocol!r} is not one of {', '.join(TLS_PROTOCOLS)}")
            return None, None
    if not enabled:
        return None, None
    try:
        return settings, build_client_context(settings)
    except TlsSetupError as exc:
        section.error(exc.key, exc.message)
        return None, None
