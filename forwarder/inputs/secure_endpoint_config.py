"""The settings of the `cisco-secure-endpoint` input, read from its keys (or the cisco module's amp `var.*`).

Kept apart from the run loop so the module and `forwarder test config` get the
same validation without any network: every mistake is reported against the key
the user wrote. `SETTINGS` is also the source of the README's table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from forwarder.schema.declared import BOOLEAN, DURATION, INTEGER, STRING, STRINGS, Setting, SettingValues, read_settings
from forwarder.schema.section import Section

# The console regions' API hosts; `url` also takes these names.
REGION_URLS = {
    "NA": "https://api.amp.cisco.com",
    "EU": "https://api.eu.amp.cisco.com",
    "APJC": "https://api.apjc.amp.cisco.com",
}
MAX_LIMIT = 500
EVENTS_PATH = "/v1/events"

SETTINGS = (
    Setting("url", STRING, REGION_URLS["NA"], "the API host of the console's region: "
            + ", ".join(f"`{url}` ({name})" for name, url in REGION_URLS.items())
            + "; the region name alone, or Filebeat's full `…/v1/events?…` URL, is also accepted"),
    Setting("client_id", STRING, "", "the 3rd-party API client id", doc_default="required"),
    Setting("api_key", STRING, "", "its API key; keep it in the keystore or the environment "
            "(`${AMP_API_KEY}`)", secret=True, doc_default="required"),
    Setting("first_interval", DURATION, "24h", "how far back the first poll reads (`start_date` = now minus this)",
            positive=True),
    Setting("interval", DURATION, "1m", "pause between polls once caught up", positive=True),
    Setting("limit", INTEGER, 500, "events per page (`limit`), at most 500", minimum=1, maximum=MAX_LIMIT),
    Setting("event_types", STRINGS, [], "event type ids (`/v1/event_types`) to read, as `event_type[]` filters",
            doc_default="all"),
    Setting("ssl.certificate_authorities", STRINGS, [], "one CA bundle file to trust instead of the system CAs (an "
            "inspecting proxy)", doc_default="system CAs"),
    Setting("proxy_url", STRING, None, "HTTP(S) proxy for the API"),
    Setting("backoff.init", DURATION, "1s", "first wait after a server or network error; doubles (with jitter) "
            "on each repeat", positive=True),
    Setting("backoff.max", DURATION, "60s", "longest wait between retries after errors", positive=True),
    Setting("normalize", BOOLEAN, True, "configured on its own (not by the cisco module), map the events with the "
            "`cisco_secure_endpoint` processor"),
)


@dataclass
class SecureEndpointConfig:
    base_url: str
    client_id: str
    api_key: str = field(repr=False)
    first_interval: float
    interval: float
    limit: int
    event_types: list[int]
    ca_bundle: str | None
    proxy_url: str | None
    backoff_init: float
    backoff_max: float
    normalize: bool

    @property
    def events_url(self) -> str:
        return self.base_url + EVENTS_PATH


def parse_config(section: Section) -> SecureEndpointConfig:
    values = read_settings(section, SETTINGS)
    for name, what in (("client_id", "client id"), ("api_key", "API key")):
        if not values[name]:
            values.error(name, f"is required: the 3rd-party API credential's {what} (Secure Endpoint console → "
                               "Administration → API Credentials)")
    authorities = values["ssl.certificate_authorities"]
    if len(authorities) > 1:
        values.error("ssl.certificate_authorities", "give one CA bundle file (concatenate several CAs into it)")
    return SecureEndpointConfig(
        base_url=_base_url(values),
        client_id=values["client_id"],
        api_key=values["api_key"],
        first_interval=values["first_interval"],
        interval=values["interval"],
        limit=values["limit"],
        event_types=_event_types(values),
        ca_bundle=authorities[0] if authorities else None,
        proxy_url=values["proxy_url"],
        backoff_init=values["backoff.init"],
        backoff_max=max(values["backoff.max"], values["backoff.init"]),
        normalize=values["normalize"],
    )


def default_id(config: SecureEndpointConfig) -> str:
    return f"cisco-secure-endpoint-{urlsplit(config.base_url).hostname}"


def _base_url(values: SettingValues) -> str:
    """scheme://host[:port] of the API; a region name maps to its host, a path and query are dropped."""
    text = values["url"].strip()
    if text.upper() in REGION_URLS:
        return REGION_URLS[text.upper()]
    parts = urlsplit(text)
    if parts.username is not None or parts.password is not None:
        # Never echoed: the API key would reach the log, /stats and a parked input's message.
        values.error("url", "must not hold credentials: give them as client_id and api_key")
        return REGION_URLS["NA"]
    if parts.scheme != "https" or not parts.hostname:
        values.error("url", f"must be an https:// URL such as {REGION_URLS['NA']} or a region name "
                            f"({', '.join(REGION_URLS)}) (got {text!r})")
        return text
    if parts.path.rstrip("/") not in ("", EVENTS_PATH):
        values.error("url", f"must be the API host, {parts.scheme}://{parts.netloc} (the path {parts.path!r} is not "
                            f"{EVENTS_PATH})")
    return f"{parts.scheme}://{parts.netloc}"


def _event_types(values: SettingValues) -> list[int]:
    ids = []
    for value in values["event_types"]:
        if not value.isdigit():
            values.error("event_types", f"must be numeric event type ids from /v1/event_types (got {value!r})")
        else:
            ids.append(int(value))
    return list(dict.fromkeys(ids))
