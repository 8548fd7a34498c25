"""The settings of the `graph` input, read from its keys (or the `entraid` module's `var.*`).

Kept apart from the run loop because the module and `forwarder test config`
need the same validation without any network: every mistake is reported
against the key the user wrote, before a token is ever requested.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from forwarder.net.app_credential import check_credential_kind
from forwarder.net.graph_client import ENDPOINTS, SIGN_IN_TYPES
from forwarder.net.tokens import CLOUDS
from forwarder.schema.section import Section

# `identity_protection` is the fileset name users know; Graph lists it as two resources.
RECORD_TYPE_GROUPS = {"identity_protection": ("risk_detection", "risky_user")}


@dataclass
class GraphConfig:
    tenant_id: str
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    certificate: str | None = None
    key: str | None = field(default=None, repr=False)
    key_passphrase: str | None = field(default=None, repr=False)
    cloud: str = "global"
    login_endpoint: str = ""
    graph_endpoint: str = ""
    scope: str = ""
    ca_bundle: str | None = None
    proxy_url: str | None = None
    record_types: list[str] = field(default_factory=list)
    poll_interval: float = 120.0
    initial_lookback: float = 86400.0
    late_arrival_window: float = 1800.0
    page_size: int | None = None
    sign_in_types: list[str] = field(default_factory=lambda: list(SIGN_IN_TYPES))
    requests_per_10s: int = 5
    # Which processors map the records when the input is used without the entraid module
    # (graph.standalone_processors); the module reads its own `normalize` and `preserve_original_event`.
    normalize: bool = True
    preserve_original_event: bool = False


def parse_config(section: Section) -> GraphConfig:
    tenant_id = section.string("tenant_id", "")
    client_id = section.string("client_id", "")
    for key, value, what in (("tenant_id", tenant_id, "Directory (tenant) ID"),
                             ("client_id", client_id, "Application (client) ID")):
        if not value:
            section.error(key, f"is required: the app registration's {what}")
    secret = section.string("client_secret", None)
    certificate = section.string("certificate", None)
    key = section.string("key", None)
    passphrase = section.string("key_passphrase", None)
    check_credential_kind(section, secret, certificate, key)

    cloud_name = section.string("cloud", "global", choices=CLOUDS)
    cloud = CLOUDS.get(cloud_name, CLOUDS["global"])
    api = section.section("api")
    login_endpoint = api.string("login_endpoint", f"https://{cloud.login_host}")
    graph_endpoint = api.string("graph_endpoint", f"https://{cloud.graph_host}")
    for key_name, url in (("login_endpoint", login_endpoint), ("graph_endpoint", graph_endpoint)):
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            api.error(key_name, f"must be an https:// URL (got {url!r})")
    api.finish()

    ssl = section.section("ssl")
    authorities = ssl.string_list("certificate_authorities", [])
    if len(authorities) > 1:
        ssl.error("certificate_authorities", "give one CA bundle file (concatenate several CAs into it)")
    ssl.finish()

    config = GraphConfig(
        tenant_id=tenant_id,
        client_id=client_id,
        client_secret=secret,
        certificate=certificate,
        key=key,
        key_passphrase=passphrase,
        cloud=cloud_name,
        login_endpoint=login_endpoint.rstrip("/"),
        graph_endpoint=graph_endpoint.rstrip("/"),
        scope=f"https://{cloud.graph_host}/.default",
        ca_bundle=authorities[0] if authorities else None,
        proxy_url=section.string("proxy_url", None),
        record_types=_record_types(section),
        poll_interval=_positive(section, "poll_interval", 120.0),
        initial_lookback=_positive(section, "initial_lookback", 86400.0),
        late_arrival_window=_non_negative(section, "late_arrival_window", 1800.0),
        page_size=section.integer("page_size", None, minimum=1, maximum=1000),
        sign_in_types=_sign_in_types(section),
        requests_per_10s=section.integer("requests_per_10s", 5, minimum=1),
        normalize=section.boolean("normalize", True),
        preserve_original_event=section.boolean("preserve_original_event", False),
    )
    return config


def streams(config: GraphConfig) -> list[str]:
    """The record types this input polls, in order, each once."""
    expanded: list[str] = []
    for name in config.record_types:
        expanded.extend(RECORD_TYPE_GROUPS.get(name, (name,)))
    return list(dict.fromkeys(expanded))


def default_id(config: GraphConfig) -> str:
    return f"graph-{config.tenant_id}-{'-'.join(streams(config))}"


def _record_types(section: Section) -> list[str]:
    names = section.string_list("record_types", None)
    if names is None:
        section.error("record_types", f"is required: a list of {', '.join(_known_record_types())}")
        return []
    for name in names:
        if name not in _known_record_types():
            section.error("record_types", f"unknown record type {name!r} (known: {', '.join(_known_record_types())})")
    if not names:
        section.error("record_types", "must name at least one record type")
    return names


def _known_record_types() -> tuple[str, ...]:
    return (*ENDPOINTS, *RECORD_TYPE_GROUPS)


def _sign_in_types(section: Section) -> list[str]:
    names = section.string_list("sign_in_types", list(SIGN_IN_TYPES))
    for name in names:
        if name not in SIGN_IN_TYPES:
            section.error("sign_in_types", f"unknown sign-in type {name!r} (known: {', '.join(SIGN_IN_TYPES)})")
    if not names:
        section.error("sign_in_types", "must name at least one sign-in type")
    return names


def _positive(section: Section, key: str, default: float) -> float:
    value = section.duration(key, default)
    if value is not None and value <= 0:
        section.error(key, "must be a positive duration")
        return default
    return value


def _non_negative(section: Section, key: str, default: float) -> float:
    value = section.duration(key, default)
    if value is not None and value < 0:
        section.error(key, "must not be negative")
        return default
    return value
