"""The settings of the `duo` input, read from its keys (or the `duo` module's `var.*`).

Kept apart from the run loop so the module and `forwarder test config` get the
same validation without any network: every mistake is reported against the key
the user wrote, before a request is signed. `SETTINGS` is also the source of
the README's table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from forwarder.inputs.duo_cursor import STREAMS
from forwarder.schema.declared import BOOLEAN, DURATION, STRING, STRINGS, Setting, SettingValues, read_settings
from forwarder.schema.section import Section

# Duo asks integrations to poll each log endpoint at most once a minute; the logs go back 180 days.
MIN_POLL_INTERVAL = 60.0
MAX_LOOKBACK = 180 * 86400.0

SETTINGS = (
    Setting("api_hostname", STRING, "", "the Admin API host, `api-XXXXXXXX.duosecurity.com`", doc_default="required"),
    Setting("integration_key", STRING, "", "the Admin API application's integration key (`DI…`)",
            doc_default="required"),
    Setting("secret_key", STRING, "", "its secret key; keep it in the keystore or the environment "
            "(`${DUO_SECRET_KEY}`)", secret=True, doc_default="required"),
    Setting("streams", STRINGS, None, f"the logs to read, of {', '.join(f'`{name}`' for name in STREAMS)} (each "
            "`duo` fileset sets its own)", doc_default="required"),
    Setting("poll_interval", DURATION, "1m", "pause between polls once caught up; at least 1m (Duo's limit per "
            "endpoint)", positive=True),
    Setting("initial_lookback", DURATION, "24h", "how far back the first poll of a log reads; at most 180d",
            positive=True),
    Setting("ssl.certificate_authorities", STRINGS, [], "one CA bundle file to trust instead of the system CAs (an "
            "inspecting proxy)", doc_default="system CAs"),
    Setting("proxy_url", STRING, None, "HTTP(S) proxy for the Admin API"),
    Setting("backoff.init", DURATION, "1s", "first wait after HTTP 429 or a server error; doubles (with jitter) "
            "on each repeat", positive=True),
    Setting("backoff.max", DURATION, "60s", "longest wait between retries", positive=True),
    Setting("normalize", BOOLEAN, True, "map each record to ECS (`duo_ecs`); `false` sends the raw record (the "
            "`duo` module reads its own `var.normalize`)"),
    Setting("preserve_original_event", BOOLEAN, False, "also keep the raw record in `event.original`"),
)


@dataclass
class DuoConfig:
    api_hostname: str
    integration_key: str
    secret_key: str = field(repr=False)
    streams: list[str]
    poll_interval: float
    initial_lookback: float
    ca_bundle: str | None
    proxy_url: str | None
    backoff_init: float
    backoff_max: float
    # Read by the input's standalone_processors only: the `duo` module maps with its own variables.
    normalize: bool
    preserve_original_event: bool


def parse_config(section: Section) -> DuoConfig:
    values = read_settings(section, SETTINGS)
    for name, what in (("integration_key", "integration key"), ("secret_key", "secret key")):
        if not values[name]:
            values.error(name, f"is required: the Admin API application's {what} (Duo Admin Panel → Applications)")
    if values["poll_interval"] < MIN_POLL_INTERVAL:
        values.error("poll_interval", "must be at least 1m: Duo asks for no more than one request a minute per log")
    if values["initial_lookback"] > MAX_LOOKBACK:
        values.error("initial_lookback", "must be at most 180d: Duo keeps logs for 180 days")
    authorities = values["ssl.certificate_authorities"]
    if len(authorities) > 1:
        values.error("ssl.certificate_authorities", "give one CA bundle file (concatenate several CAs into it)")
    return DuoConfig(
        api_hostname=_api_hostname(values),
        integration_key=values["integration_key"],
        secret_key=values["secret_key"],
        streams=_streams(values),
        poll_interval=max(values["poll_interval"], MIN_POLL_INTERVAL),
        initial_lookback=min(values["initial_lookback"], MAX_LOOKBACK),
        ca_bundle=authorities[0] if authorities else None,
        proxy_url=values["proxy_url"],
        backoff_init=values["backoff.init"],
        backoff_max=max(values["backoff.max"], values["backoff.init"]),
        normalize=values["normalize"],
        preserve_original_event=values["preserve_original_event"],
    )


def default_id(config: DuoConfig) -> str:
    return f"duo-{'-'.join(config.streams)}"


def _api_hostname(values: SettingValues) -> str:
    """The host (and port) requests are signed for; an https:// prefix or a trailing slash is tolerated."""
    host = values["api_hostname"].strip()
    if host.startswith("http://"):
        values.error("api_hostname", "must be reached over https: give the host name only "
                     "(api-XXXXXXXX.duosecurity.com)")
        return host
    host = host.removeprefix("https://").rstrip("/")
    if not host:
        values.error("api_hostname", "is required: the Admin API host, api-XXXXXXXX.duosecurity.com")
    elif "/" in host or " " in host:
        values.error("api_hostname", f"must be a host name such as api-XXXXXXXX.duosecurity.com (got {host!r})")
    return host


def _streams(values: SettingValues) -> list[str]:
    names = values["streams"]
    known = ", ".join(STREAMS)
    if names is None or not names:
        values.error("streams", f"is required: a list of {known}")
        return []
    for name in names:
        if name not in STREAMS:
            values.error("streams", f"unknown Duo log {name!r} (known: {known})")
    return list(dict.fromkeys(names))
