"""The settings of the `o365audit` input: Filebeat's o365audit keys plus ours.

Parsed apart from the run loop so the `o365` module and `forwarder test config`
get the same validation without any network: a Filebeat `modules.d/o365.yml`
with a typo is reported against the key the user wrote, before any token is
requested. Limits the Management Activity API enforces (24 h list windows,
7 days of retention) are checked here too, because a value past them would
only surface later as an endless stream of rejected requests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from forwarder.net.app_credential import check_credential_kind
from forwarder.schema.section import Section

CONTENT_TYPES = ("Audit.AzureActiveDirectory", "Audit.Exchange", "Audit.SharePoint", "Audit.General", "DLP.All")
# Microsoft lists content for 7 days and accepts list windows of at most 24 hours.
API_RETENTION = 7 * 86400.0
API_MAX_QUERY = 86400.0


@dataclass
class O365Config:
    application_id: str
    tenant_ids: list[str]
    client_secret: str | None = field(default=None, repr=False)
    certificate: str | None = None
    key: str | None = field(default=None, repr=False)
    key_passphrase: str | None = field(default=None, repr=False)
    content_types: list[str] = field(default_factory=lambda: list(CONTENT_TYPES))
    authentication_endpoint: str = "https://login.microsoftonline.com"
    resource: str = "https://manage.office.com"
    max_retention: float = API_RETENTION
    max_query_size: float = API_MAX_QUERY
    poll_interval: float = 180.0
    max_requests_per_minute: int = 2000
    error_retry_interval: float = 300.0
    adjust_clock: bool = True
    adjust_clock_min_difference: float = 300.0
    adjust_clock_warn: bool = True
    set_id_from_audit_record: bool = True
    # This and `tenant_names`, `normalize`: read by the `o365_ecs` processor, which maps the records
    # (the input's standalone_processors hands them over; the module passes its own variables).
    preserve_original_event: bool = False
    tenant_names: dict[str, str] = field(default_factory=dict)
    ca_bundle: str | None = None
    proxy_url: str | None = None
    normalize: bool = True

    @property
    def scope(self) -> str:
        """The token scope of the Management API: its resource URL, whatever cloud it lives in."""
        return f"{self.resource}/.default"


def parse_config(section: Section) -> O365Config:
    application_id = section.string("application_id", "")
    if not application_id:
        section.error("application_id", "is required: the app registration's Application (client) ID")
    tenant_ids = _unique(section.string_list("tenant_id", []))
    if not tenant_ids or any(not tenant for tenant in tenant_ids):
        section.error("tenant_id", "is required: the Directory (tenant) ID, or a list of them")
    secret = section.string("client_secret", None)
    certificate = section.string("certificate", None)
    key = section.string("key", None)
    passphrase = section.string("key_passphrase", None)
    if secret == "" and (certificate or key):
        secret = None
    check_credential_kind(section, secret, certificate, key)

    api = section.section("api")
    authentication_endpoint = _https_url(api, "authentication_endpoint", "https://login.microsoftonline.com/")
    resource = _https_url(api, "resource", "https://manage.office.com")
    max_retention = _bounded(api, "max_retention", API_RETENTION, API_RETENTION, "the API keeps content 7 days")
    max_query_size = _bounded(api, "max_query_size", API_MAX_QUERY, API_MAX_QUERY,
                              "the API lists at most 24 hours per request")
    config = O365Config(
        application_id=application_id,
        tenant_ids=tenant_ids,
        client_secret=secret,
        certificate=certificate,
        key=key,
        key_passphrase=passphrase,
        content_types=_content_types(section),
        authentication_endpoint=authentication_endpoint,
        resource=resource,
        max_retention=max_retention,
        max_query_size=max_query_size,
        poll_interval=_bounded(api, "poll_interval", 180.0),
        max_requests_per_minute=api.integer("max_requests_per_minute", 2000, minimum=1),
        error_retry_interval=_bounded(api, "error_retry_interval", 300.0),
        adjust_clock=api.boolean("adjust_clock", True),
        adjust_clock_min_difference=_non_negative(api, "adjust_clock_min_difference", 300.0),
        adjust_clock_warn=api.boolean("adjust_clock_warn", True),
        set_id_from_audit_record=api.boolean("set_id_from_audit_record", True),
        preserve_original_event=api.boolean("preserve_original_event", False),
        tenant_names=_tenant_names(section, tenant_ids),
        proxy_url=section.string("proxy_url", None) or None,
        normalize=section.boolean("normalize", True),
    )
    api.finish()
    ssl = section.section("ssl")
    authorities = ssl.string_list("certificate_authorities", [])
    if len(authorities) > 1:
        ssl.error("certificate_authorities", "give one CA bundle file (concatenate several CAs into it)")
    config.ca_bundle = authorities[0] if authorities else None
    ssl.finish()
    return config


def default_id(config: O365Config) -> str:
    return f"o365audit-{config.application_id}-{'-'.join(sorted(config.tenant_ids))}"


def source_name(tenant_id: str, content_type: str) -> str:
    """The registry source of one poller, as Filebeat names it."""
    return f"{tenant_id}::{content_type}"


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(value.strip() for value in values))




def _https_url(section: Section, key: str, default: str) -> str:
    """Filebeat adds a missing https:// scheme; plain http is refused (tokens would travel in clear)."""
    url = section.string(key, default).strip()
    if "://" not in url:
        url = f"https://{url}"
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        section.error(key, f"must be an https:// URL (got {url!r})")
    return url.rstrip("/")


def _bounded(section: Section, key: str, default: float, maximum: float | None = None, why: str = "") -> float:
    value = section.duration(key, default)
    if value <= 0:
        section.error(key, "must be a positive duration")
        return default
    if maximum is not None and value > maximum:
        section.error(key, f"must be at most {maximum / 3600:g}h: {why}")
        return maximum
    return value


def _non_negative(section: Section, key: str, default: float) -> float:
    value = section.duration(key, default)
    if value < 0:
        section.error(key, "must not be negative")
        return default
    return value


def _content_types(section: Section) -> list[str]:
    names = _unique(section.string_list("content_type", list(CONTENT_TYPES)))
    if not names:
        section.error("content_type", f"must name at least one content type ({', '.join(CONTENT_TYPES)})")
    for name in names:
        if name not in CONTENT_TYPES:
            section.error("content_type", f"unknown content type {name!r} (known: {', '.join(CONTENT_TYPES)})")
    return [name for name in names if name in CONTENT_TYPES]


def _tenant_names(section: Section, tenant_ids: list[str]) -> dict[str, str]:
    names = section.mapping("tenant_names", {})
    result = {}
    for tenant, name in names.items():
        if str(tenant) not in tenant_ids:
            section.error(f"tenant_names.{tenant}", f"is not one of tenant_id ({', '.join(tenant_ids)})")
        elif isinstance(name, (dict, list)) or name is None:
            section.error(f"tenant_names.{tenant}", "expected the tenant's name, e.g. contoso.onmicrosoft.com")
        else:
            result[str(tenant)] = str(name)
    return result
