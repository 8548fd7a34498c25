"""The settings of the `graph` input, read from its keys (or the `entraid` module's `var.*`).

Kept apart from the run loop because the module and `forwarder test config`
need the same validation without any network: every mistake is reported
against the key the user wrote, before a token is ever requested. `SETTINGS`
is also the source of the README's table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from forwarder.net.app_credential import check_credential_kind
from forwarder.net.graph_client import ENDPOINTS, SIGN_IN_TYPES
from forwarder.net.tokens import CLOUDS
from forwarder.schema.declared import (
    BOOLEAN,
    DURATION,
    INTEGER,
    STRING,
    STRINGS,
    Setting,
    SettingValues,
    read_settings,
)
from forwarder.schema.section import Section

# `identity_protection` is the fileset name users know; Graph lists it as two resources.
RECORD_TYPE_GROUPS = {"identity_protection": ("risk_detection", "risky_user")}
KNOWN_RECORD_TYPES = (*ENDPOINTS, *RECORD_TYPE_GROUPS)
REQUIRED_IDS = {"tenant_id": "Directory (tenant) ID", "client_id": "Application (client) ID"}

SETTINGS = (
    Setting("tenant_id", STRING, "", "Directory (tenant) ID", doc_default="required"),
    Setting("client_id", STRING, "", "Application (client) ID", doc_default="required"),
    Setting("client_secret", STRING, None, "the secret's *value*; keep it in the keystore or the environment "
            "(`${ENTRA_CLIENT_SECRET}`)", secret=True),
    Setting("certificate", STRING, None, "certificate credentials instead of a secret: a PEM file (or inline PEM)"),
    Setting("key", STRING, None, "the certificate's private key, PEM (RSA keys only)", secret=True),
    Setting("key_passphrase", STRING, None, "passphrase of an encrypted `key`", secret=True),
    Setting("cloud", STRING, "global", "`usgov` is GCC High; sets the login host, the Graph host and the token scope",
            choices=tuple(CLOUDS)),
    Setting("api.login_endpoint", STRING, None, "override the login host (an inspecting proxy, a test double); "
            "https only", doc_default="from `cloud`"),
    Setting("api.graph_endpoint", STRING, None, "override the Graph host; https only", doc_default="from `cloud`"),
    Setting("ssl.certificate_authorities", STRINGS, [], "one extra CA bundle file, used for both hosts",
            doc_default="system CAs"),
    Setting("proxy_url", STRING, None, "HTTP(S) proxy for both hosts"),
    Setting("record_types", STRINGS, None, f"what to poll, of {', '.join(f'`{name}`' for name in KNOWN_RECORD_TYPES)} "
            "(each `entraid` fileset sets its own)", doc_default="required"),
    Setting("poll_interval", DURATION, "2m", "pause between polls once caught up", positive=True),
    Setting("initial_lookback", DURATION, "24h", "how far back the first poll of a record type reads", positive=True),
    Setting("late_arrival_window", DURATION, "30m", "how far before the cursor each poll reads again, for records "
            "Microsoft publishes late", minimum=0),
    Setting("page_size", INTEGER, None, "`$top`; larger values are capped at the endpoint's maximum", minimum=1,
            maximum=1000, doc_default="endpoint maximum (1000 for sign-ins, 999 or 500 elsewhere)"),
    Setting("sign_in_types", STRINGS, list(SIGN_IN_TYPES), f"{', '.join(f'`{name}`' for name in SIGN_IN_TYPES)} "
            "(signinlogs only)", doc_default="all four"),
    Setting("requests_per_10s", INTEGER, 5, "request budget per app and tenant, shared by every graph input of "
            "that app (the lowest setting applies); Microsoft's reporting budget is 5 per 10 s", minimum=1),
    Setting("normalize", BOOLEAN, True, "map each record to ECS (`entraid_ecs`); `false` sends the raw record, and "
            "the module names Filebeat's ingest pipeline in `@metadata.pipeline`"),
    Setting("preserve_original_event", BOOLEAN, False, "also keep the raw record in `event.original`"),
)


@dataclass
class GraphConfig:
    tenant_id: str
    client_id: str
    client_secret: str | None = field(repr=False)
    certificate: str | None
    key: str | None = field(repr=False)
    key_passphrase: str | None = field(repr=False)
    cloud: str
    login_endpoint: str
    graph_endpoint: str
    scope: str
    ca_bundle: str | None
    proxy_url: str | None
    record_types: list[str]
    poll_interval: float
    initial_lookback: float
    late_arrival_window: float
    page_size: int | None
    sign_in_types: list[str]
    requests_per_10s: int
    # Which processors map the records when the input is used without the entraid module
    # (graph.standalone_processors); the module reads its own `normalize` and `preserve_original_event`.
    normalize: bool
    preserve_original_event: bool


def parse_config(section: Section) -> GraphConfig:
    values = read_settings(section, SETTINGS)
    for name, what in REQUIRED_IDS.items():
        if not values[name]:
            values.error(name, f"is required: the app registration's {what}")
    check_credential_kind(section, values["client_secret"], values["certificate"], values["key"])
    cloud = CLOUDS.get(values["cloud"], CLOUDS["global"])
    login_endpoint = _https_endpoint(values, "api.login_endpoint", f"https://{cloud.login_host}")
    graph_endpoint = _https_endpoint(values, "api.graph_endpoint", f"https://{cloud.graph_host}")
    authorities = values["ssl.certificate_authorities"]
    if len(authorities) > 1:
        values.error("ssl.certificate_authorities", "give one CA bundle file (concatenate several CAs into it)")
    return GraphConfig(
        tenant_id=values["tenant_id"],
        client_id=values["client_id"],
        client_secret=values["client_secret"],
        certificate=values["certificate"],
        key=values["key"],
        key_passphrase=values["key_passphrase"],
        cloud=values["cloud"],
        login_endpoint=login_endpoint.rstrip("/"),
        graph_endpoint=graph_endpoint.rstrip("/"),
        scope=f"https://{cloud.graph_host}/.default",
        ca_bundle=authorities[0] if authorities else None,
        proxy_url=values["proxy_url"],
        record_types=_record_types(values),
        poll_interval=values["poll_interval"],
        initial_lookback=values["initial_lookback"],
        late_arrival_window=values["late_arrival_window"],
        page_size=values["page_size"],
        sign_in_types=_sign_in_types(values),
        requests_per_10s=values["requests_per_10s"],
        normalize=values["normalize"],
        preserve_original_event=values["preserve_original_event"],
    )


def streams(config: GraphConfig) -> list[str]:
    """The record types this input polls, in order, each once."""
    expanded: list[str] = []
    for name in config.record_types:
        expanded.extend(RECORD_TYPE_GROUPS.get(name, (name,)))
    return list(dict.fromkeys(expanded))


def default_id(config: GraphConfig) -> str:
    return f"graph-{config.tenant_id}-{'-'.join(streams(config))}"


def _https_endpoint(values: SettingValues, name: str, cloud_default: str) -> str:
    """The endpoint written, else the cloud's; either way an https:// URL (tokens must not travel in clear)."""
    url = values[name]
    if url is None:
        return cloud_default
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        values.error(name, f"must be an https:// URL (got {url!r})")
    return url


def _record_types(values: SettingValues) -> list[str]:
    names = values["record_types"]
    known = ", ".join(KNOWN_RECORD_TYPES)
    if names is None:
        values.error("record_types", f"is required: a list of {known}")
        return []
    for name in names:
        if name not in KNOWN_RECORD_TYPES:
            values.error("record_types", f"unknown record type {name!r} (known: {known})")
    if not names:
        values.error("record_types", "must name at least one record type")
    return names


def _sign_in_types(values: SettingValues) -> list[str]:
    names = values["sign_in_types"]
    for name in names:
        if name not in SIGN_IN_TYPES:
            values.error("sign_in_types", f"unknown sign-in type {name!r} (known: {', '.join(SIGN_IN_TYPES)})")
    if not names:
        values.error("sign_in_types", "must name at least one sign-in type")
    return names
