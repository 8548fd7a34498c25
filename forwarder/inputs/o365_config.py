"""The settings of the `o365audit` input: Filebeat's o365audit keys plus ours.

Parsed apart from the run loop so the `o365` module and `forwarder test config`
get the same validation without any network: a Filebeat `modules.d/o365.yml`
with a typo is reported against the key the user wrote, before any token is
requested. Limits the Management Activity API enforces (24 h list windows,
7 days of retention) are checked here too, because a value past them would
only surface later as an endless stream of rejected requests. `SETTINGS` is
also the source of the README's table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from forwarder.net.app_credential import check_credential_kind
from forwarder.schema.declared import (
    BOOLEAN,
    DURATION,
    INTEGER,
    MAPPING,
    STRING,
    STRINGS,
    Setting,
    SettingValues,
    ValueType,
    read_settings,
)
from forwarder.schema.section import Section, parse_duration

CONTENT_TYPES = ("Audit.AzureActiveDirectory", "Audit.Exchange", "Audit.SharePoint", "Audit.General", "DLP.All")
# Microsoft lists content for 7 days and accepts list windows of at most 24 hours.
API_RETENTION = 7 * 86400.0
API_MAX_QUERY = 86400.0


def _read_https_url(section: Section, key: str, setting: Setting, default: Any) -> str:
    """Filebeat adds a missing https:// scheme; plain http is refused (tokens would travel in clear)."""
    url = section.string(key, default).strip()
    if "://" not in url:
        url = f"https://{url}"
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        section.error(key, f"must be an https:// URL (got {url!r})")
    return url.rstrip("/")


def _api_capped(maximum: float, why: str) -> ValueType:
    """A duration greater than 0 and at most what the Management API accepts, the limit named in the message."""

    def read(section: Section, key: str, setting: Setting, default: Any) -> float:
        value = DURATION.read(section, key, setting, default)
        if value > maximum:
            section.error(key, f"must be at most {maximum / 3600:g}h: {why}")
            return maximum
        return value

    return ValueType("duration", read, parse_duration)


HTTPS_URL = ValueType("https URL", _read_https_url)
RETENTION = _api_capped(API_RETENTION, "the API keeps content 7 days")
QUERY_SIZE = _api_capped(API_MAX_QUERY, "the API lists at most 24 hours per request")

SETTINGS = (
    Setting("application_id", STRING, "", "Application (client) ID", doc_default="required"),
    Setting("tenant_id", STRINGS, [], "the Directory (tenant) ID, or a list of them (one app can read several "
            "tenants)", doc_default="required"),
    Setting("client_secret", STRING, None, "the secret's *value*; keep it in the keystore or the environment "
            "(`${O365_CLIENT_SECRET}`)", secret=True),
    Setting("certificate", STRING, None, "certificate credentials instead of a secret (PEM file); give one kind, "
            "not both"),
    Setting("key", STRING, None, "the certificate's private key (PEM file)", secret=True),
    Setting("key_passphrase", STRING, None, "passphrase of an encrypted `key`", secret=True),
    Setting("content_type", STRINGS, list(CONTENT_TYPES), f"{', '.join(f'`{name}`' for name in CONTENT_TYPES)} "
            "(a string or a list)", doc_default="all five"),
    Setting("api.authentication_endpoint", HTTPS_URL, "https://login.microsoftonline.com/",
            "login host (GCC High: `https://login.microsoftonline.us/`); a missing scheme is taken as https"),
    Setting("api.resource", HTTPS_URL, "https://manage.office.com",
            "Management API host and token audience (GCC High: `https://manage.office365.us`)"),
    Setting("api.max_retention", RETENTION, "168h", "how far back the first run reads; at most 168h (7 days), what "
            "Microsoft keeps", positive=True),
    Setting("api.max_query_size", QUERY_SIZE, "24h", "width of one listing request; at most 24h", positive=True),
    Setting("api.poll_interval", DURATION, "3m", "pause between listings once caught up", positive=True),
    Setting("api.max_requests_per_minute", INTEGER, 2000, "request budget per tenant, shared by its content types",
            minimum=1),
    Setting("api.error_retry_interval", DURATION, "5m", "wait before retrying after an API error", positive=True),
    Setting("api.adjust_clock", BOOLEAN, True, "follow the server's clock when Microsoft reports this host's as "
            "skewed"),
    Setting("api.adjust_clock_min_difference", DURATION, "5m", "the skew from which the clock is followed",
            minimum=0),
    Setting("api.adjust_clock_warn", BOOLEAN, True, "log a warning when the clock is followed"),
    Setting("api.set_id_from_audit_record", BOOLEAN, True, "record `Id` → `@metadata._id`, so the receiver can drop "
            "replays"),
    Setting("api.preserve_original_event", BOOLEAN, False, "also keep the raw record in `event.original`"),
    Setting("tenant_names", MAPPING, None, "tenant id → its name (`contoso.onmicrosoft.com`), which becomes "
            "`organization.name` and `host.name` of that tenant's events (the module fills it from `var.tenants`)"),
    Setting("ssl.certificate_authorities", STRINGS, [], "one extra CA bundle file, for both hosts",
            doc_default="system CAs"),
    Setting("proxy_url", STRING, None, "HTTP(S) proxy for both hosts"),
    Setting("normalize", BOOLEAN, True, "map each record to ECS (`o365_ecs`); `false` sends the raw record, and the "
            "module names Filebeat's ingest pipeline (`filebeat-<version>-o365-audit-pipeline`) in "
            "`@metadata.pipeline`"),
)


@dataclass
class O365Config:
    application_id: str
    tenant_ids: list[str]
    client_secret: str | None = field(repr=False)
    certificate: str | None
    key: str | None = field(repr=False)
    key_passphrase: str | None = field(repr=False)
    content_types: list[str]
    authentication_endpoint: str
    resource: str
    max_retention: float
    max_query_size: float
    poll_interval: float
    max_requests_per_minute: int
    error_retry_interval: float
    adjust_clock: bool
    adjust_clock_min_difference: float
    adjust_clock_warn: bool
    set_id_from_audit_record: bool
    # This and `tenant_names`, `normalize`: read by the `o365_ecs` processor, which maps the records
    # (the input's standalone_processors hands them over; the module passes its own variables).
    preserve_original_event: bool
    tenant_names: dict[str, str]
    ca_bundle: str | None
    proxy_url: str | None
    normalize: bool

    @property
    def scope(self) -> str:
        """The token scope of the Management API: its resource URL, whatever cloud it lives in."""
        return f"{self.resource}/.default"


def parse_config(section: Section) -> O365Config:
    values = read_settings(section, SETTINGS)
    if not values["application_id"]:
        values.error("application_id", "is required: the app registration's Application (client) ID")
    tenant_ids = _unique(values["tenant_id"])
    if not tenant_ids or any(not tenant for tenant in tenant_ids):
        values.error("tenant_id", "is required: the Directory (tenant) ID, or a list of them")
    secret, certificate, key = values["client_secret"], values["certificate"], values["key"]
    if secret == "" and (certificate or key):
        secret = None
    check_credential_kind(section, secret, certificate, key)
    authorities = values["ssl.certificate_authorities"]
    if len(authorities) > 1:
        values.error("ssl.certificate_authorities", "give one CA bundle file (concatenate several CAs into it)")
    return O365Config(
        application_id=values["application_id"],
        tenant_ids=tenant_ids,
        client_secret=secret,
        certificate=certificate,
        key=key,
        key_passphrase=values["key_passphrase"],
        content_types=_content_types(values),
        authentication_endpoint=values["api.authentication_endpoint"],
        resource=values["api.resource"],
        max_retention=values["api.max_retention"],
        max_query_size=values["api.max_query_size"],
        poll_interval=values["api.poll_interval"],
        max_requests_per_minute=values["api.max_requests_per_minute"],
        error_retry_interval=values["api.error_retry_interval"],
        adjust_clock=values["api.adjust_clock"],
        adjust_clock_min_difference=values["api.adjust_clock_min_difference"],
        adjust_clock_warn=values["api.adjust_clock_warn"],
        set_id_from_audit_record=values["api.set_id_from_audit_record"],
        preserve_original_event=values["api.preserve_original_event"],
        tenant_names=_tenant_names(values, tenant_ids),
        ca_bundle=authorities[0] if authorities else None,
        proxy_url=values["proxy_url"] or None,
        normalize=values["normalize"],
    )


def default_id(config: O365Config) -> str:
    return f"o365audit-{config.application_id}-{'-'.join(sorted(config.tenant_ids))}"


def source_name(tenant_id: str, content_type: str) -> str:
    """The registry source of one poller, as Filebeat names it."""
    return f"{tenant_id}::{content_type}"


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(value.strip() for value in values))


def _content_types(values: SettingValues) -> list[str]:
    names = _unique(values["content_type"])
    if not names:
        values.error("content_type", f"must name at least one content type ({', '.join(CONTENT_TYPES)})")
    for name in names:
        if name not in CONTENT_TYPES:
            values.error("content_type", f"unknown content type {name!r} (known: {', '.join(CONTENT_TYPES)})")
    return [name for name in names if name in CONTENT_TYPES]


def _tenant_names(values: SettingValues, tenant_ids: list[str]) -> dict[str, str]:
    section = values.section()
    result = {}
    for tenant, name in (values["tenant_names"] or {}).items():
        if str(tenant) not in tenant_ids:
            section.error(f"tenant_names.{tenant}", f"is not one of tenant_id ({', '.join(tenant_ids)})")
        elif isinstance(name, (dict, list)) or name is None:
            section.error(f"tenant_names.{tenant}", "expected the tenant's name, e.g. contoso.onmicrosoft.com")
        else:
            result[str(tenant)] = str(name)
    return result
