"""The settings of the `cisco-secure-endpoint-stream` input (or the `cisco` module's `amp` fileset in
`event_stream` mode), read without any network.

Cisco's `POST /v1/event_streams` answers with the stream's AMQP host, port,
protocol, queue name, user name and a password shown once; the site writes
them here. The URL holds no credentials (they would reach log lines with it):
the user and password are settings of their own, the password secret.
`SETTINGS` is also the source of the README's table.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

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
)
from forwarder.schema.section import Section

VERIFICATION_MODES = ("full", "strict", "certificate", "none")
DEFAULT_PORTS = {"amqp": 5672, "amqps": 5671}

SETTINGS = (
    Setting("amqp_url", STRING, "", "the stream's broker, `amqps://HOST:PORT` (an optional `/VHOST` path); "
            "`amqp://` only for tests", doc_default="required"),
    Setting("queue", STRING, "", "the stream's `queue_name`", doc_default="required"),
    Setting("amqp_user", STRING, "", "the stream's `user_name`", doc_default="required"),
    Setting("amqp_password", STRING, "", "the stream's password (shown once when the stream is created); keep it "
            "in the keystore", secret=True, doc_default="required"),
    Setting("prefetch", INTEGER, 100, "messages delivered and not yet acknowledged at most; a crash redelivers "
            "up to this many", minimum=1, maximum=65535),
    Setting("normalize", BOOLEAN, True, "map each event to ECS (`cisco_secure_endpoint`); `false` sends the raw "
            "event (the `cisco` module's `amp` fileset maps with its own variables)"),
    Setting("timeout", DURATION, "30s", "timeout of connecting and of one socket operation", positive=True),
    Setting("backoff.init", DURATION, "1s", "first wait before reconnecting after the connection is lost; doubles "
            "on each failure", positive=True),
    Setting("backoff.max", DURATION, "60s", "longest wait between reconnections", positive=True),
    Setting("ssl.certificate_authorities", STRINGS, [], "one CA bundle file to trust for `amqps`",
            doc_default="system CAs"),
    Setting("ssl.verification_mode", STRING, "full", "`certificate` skips the host name check, `none` every "
            "check (tests only)", choices=VERIFICATION_MODES),
    *ignored("ssl.enabled", "ssl.supported_protocols", doc="accepted for Filebeat compatibility, without effect"),
)


@dataclass
class SecureEndpointStreamConfig:
    scheme: str
    host: str
    port: int
    virtual_host: str
    queue: str
    user: str
    password: str = field(repr=False)
    prefetch: int = 100
    normalize: bool = True
    timeout: float = 30.0
    backoff_init: float = 1.0
    backoff_max: float = 60.0
    ca_bundle: str | None = None
    verification_mode: str = "full"

    @property
    def broker(self) -> str:
        """The broker as log lines name it: no credentials."""
        return f"{self.scheme}://{self.host}:{self.port}"

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of an `amqps` connection (None for `amqp`)."""
        if self.scheme != "amqps":
            return None
        context = ssl.create_default_context(cafile=self.ca_bundle)
        if self.verification_mode in ("certificate", "none"):
            context.check_hostname = False
        if self.verification_mode == "none":
            context.verify_mode = ssl.CERT_NONE
        return context


def parse_config(section: Section) -> SecureEndpointStreamConfig:
    values = read_settings(section, SETTINGS)
    scheme, host, port, virtual_host = _broker(values)
    for name, what in (("queue", "queue_name"), ("amqp_user", "user_name"), ("amqp_password", "password")):
        if not values[name]:
            values.error(name, f"is required: the event stream's {what}, from Cisco's POST /v1/event_streams answer")
    authorities = values["ssl.certificate_authorities"]
    if len(authorities) > 1:
        values.error("ssl.certificate_authorities", "give one CA bundle file (concatenate several CAs into it)")
    return SecureEndpointStreamConfig(
        scheme=scheme, host=host, port=port, virtual_host=virtual_host,
        queue=values["queue"], user=values["amqp_user"], password=values["amqp_password"],
        prefetch=values["prefetch"], normalize=values["normalize"], timeout=values["timeout"],
        backoff_init=values["backoff.init"], backoff_max=max(values["backoff.max"], values["backoff.init"]),
        ca_bundle=authorities[0] if authorities else None,
        verification_mode=values["ssl.verification_mode"],
    )


def default_id(config: SecureEndpointStreamConfig) -> str:
    return f"cisco-secure-endpoint-stream-{config.queue}"


def standalone_processors(config: SecureEndpointStreamConfig) -> list[dict]:
    """Configured on its own, the input's events are mapped as the `cisco` module's `amp` fileset maps them."""
    return [{"cisco_secure_endpoint": {}}] if config.normalize else []


def _broker(values: SettingValues) -> tuple[str, str, int, str]:
    """(scheme, host, port, virtual host) of `amqp_url`; a mistake is reported on the key."""
    text = values["amqp_url"].strip()
    if not text:
        values.error("amqp_url", "is required: amqps://HOST:PORT from the event stream's amqp_credentials")
        return "amqps", "", 5671, "/"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        values.error("amqp_url", "is not a URL: write amqps://HOST:PORT")
        return "amqps", "", 5671, "/"
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        values.error("amqp_url", "must start with amqps:// (or amqp:// without TLS, for tests)")
        scheme = "amqps"
    if parts.username is not None or parts.password is not None:
        values.error("amqp_url", "must not hold credentials: give them as amqp_user and amqp_password")
    if not parts.hostname:
        values.error("amqp_url", "names no host: write amqps://HOST:PORT")
    virtual_host = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
    return scheme, parts.hostname or "", port or DEFAULT_PORTS[scheme], virtual_host
