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

from forwarder.schema.section import Section
from forwarder.outputs.logstash.tls import TlsSettings, TlsSetupError, build_client_context

DEFAULT_PORT = 5044
VERIFICATION_MODES = ("full", "strict", "certificate", "none")
TLS_PROTOCOLS = ("TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")
# Filebeat ssl.* settings with no faithful equivalent here: rejected rather than silently ignored.
_UNSUPPORTED_SSL = ("cipher_suites", "curve_types", "ca_trusted_fingerprint", "renegotiation", "ca_sha256")


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
    loadbalance: bool = False
    workers: int = 1
    bulk_max_size: int = 2048
    slow_start: bool = False
    pipelining: int = 2
    compression_level: int = 3
    escape_html: bool = False
    ttl: float = 0.0
    timeout: float = 30.0
    max_retries: int = 3
    backoff_init: float = 1.0
    backoff_max: float = 60.0
    index: str = "filebeat"
    tls: TlsSettings | None = None
    # Built once from `tls` when the config is read, so file and passphrase problems are config errors.
    ssl_context: ssl.SSLContext | None = field(default=None, compare=False, repr=False)

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
    section.ignore("enabled", "proxy_use_local_resolver")
    host_texts = section.string_list("hosts")
    if host_texts == []:
        section.error("hosts", "must list at least one host")
    hosts: list[HostAddress] = []
    for text in host_texts or []:
        try:
            hosts.append(parse_host(text))
        except ValueError as exc:
            section.error("hosts", str(exc))
    if section.raw("proxy_url"):
        section.error("proxy_url", "is not supported by the logstash output; remove it or connect directly")
    workers = section.integer("worker", None, minimum=1)
    if workers is None:
        workers = section.integer("workers", 1, minimum=1)
    else:
        section.ignore("workers")
    backoff = section.section("backoff")
    backoff_init = backoff.duration("init", 1.0)
    backoff_max = backoff.duration("max", 60.0)
    backoff.finish()
    if backoff_init <= 0:
        backoff.error("init", "must be greater than 0")
    elif backoff_max < backoff_init:
        backoff.error("max", "must not be smaller than backoff.init")
    timeout = section.duration("timeout", 30.0)
    if timeout <= 0:
        section.error("timeout", "must be greater than 0")
    ttl = section.duration("ttl", 0.0)
    if ttl < 0:
        section.error("ttl", "must not be negative")
    index = section.string("index", "filebeat")
    if not index.strip():
        section.error("index", "must not be empty")
    tls, context = _parse_tls(section.section("ssl"))
    config = LogstashConfig(
        hosts=hosts,
        loadbalance=section.boolean("loadbalance", False),
        workers=workers,
        bulk_max_size=section.integer("bulk_max_size", 2048, minimum=1),
        slow_start=section.boolean("slow_start", False),
        pipelining=section.integer("pipelining", 2, minimum=0),
        compression_level=section.integer("compression_level", 3, minimum=0, maximum=9),
        escape_html=section.boolean("escape_html", False),
        ttl=ttl,
        timeout=timeout,
        max_retries=section.integer("max_retries", 3),
        backoff_init=backoff_init,
        backoff_max=backoff_max,
        index=index.lower(),
        tls=tls,
        ssl_context=context,
    )
    section.finish()
    return config


def _parse_tls(section: Section) -> tuple[TlsSettings | None, ssl.SSLContext | None]:
    """Like Filebeat, an `ssl` section with settings is enabled unless `enabled: false` says otherwise."""
    for key in _UNSUPPORTED_SSL:
        if section.has(key):
            section.error(key, "is not supported by forwarder; remove it (the TLS library defaults apply)")
    enabled = section.boolean("enabled", bool(section.data))
    settings = TlsSettings(
        certificate_authorities=section.string_list("certificate_authorities", []),
        certificate=section.string("certificate", None),
        key=section.string("key", None),
        key_passphrase=section.string("key_passphrase", None),
        verification_mode=section.string("verification_mode", "full", choices=VERIFICATION_MODES),
        supported_protocols=section.string_list("supported_protocols", []),
    )
    section.finish()
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
