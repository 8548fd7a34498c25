"""The settings of the `defender-atp` input (Microsoft Defender for Endpoint alerts), read from its keys.

Kept apart from the poller so the `microsoft` module and `forwarder test config`
validate without any network: every mistake is reported against the key the
user wrote, before a token is requested. `SETTINGS` is also the README's table.

The API host and the token resource are separate things: a geo host
(`eu.api.security.microsoft.com`) or the legacy `api.securitycenter.windows.com`
serves the same tenant, and the token is always for the cloud's resource
(`https://api.securitycenter.microsoft.com/.default` in the global cloud).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from forwarder.net.app_credential import check_credential_kind
from forwarder.net.tokens import CLOUDS
from forwarder.schema.declared import BOOLEAN, DURATION, INTEGER, STRING, STRINGS, Setting, SettingValues, read_settings
from forwarder.schema.section import Section

# Cloud → (API host, token resource). Defender for Endpoint has no China cloud API.
API_HOSTS = {
    "global": ("api.securitycenter.microsoft.com", "https://api.securitycenter.microsoft.com"),
    "usgov": ("api-gov.securitycenter.microsoft.us", "https://api-gov.securitycenter.microsoft.us"),
    "usgov-dod": ("api-gov.securitycenter.microsoft.us", "https://api-gov.securitycenter.microsoft.us"),
}
GEO_HOSTS = tuple(f"{geo}.api.security.microsoft.com" for geo in ("us", "eu", "uk", "au", "swa", "ina"))
KNOWN_HOSTS = (*{host for host, _ in API_HOSTS.values()}, "api.security.microsoft.com", *GEO_HOSTS,
               "api.securitycenter.windows.com", "api-gcc.securitycenter.microsoft.us")
MAX_PAGE = 10_000
REQUIRED_IDS = {"tenant_id": "Directory (tenant) ID", "client_id": "Application (client) ID"}

SETTINGS = (
    Setting("tenant_id", STRING, "", "Directory (tenant) ID", doc_default="required"),
    Setting("client_id", STRING, "", "Application (client) ID of an app with `Alert.Read.All` (WindowsDefenderATP)",
            doc_default="required"),
    Setting("client_secret", STRING, None, "the secret's *value*; keep it in the keystore or the environment",
            secret=True),
    Setting("certificate", STRING, None, "certificate credentials instead of a secret: a PEM file (or inline PEM)"),
    Setting("key", STRING, None, "the certificate's private key, PEM (RSA keys only)", secret=True),
    Setting("key_passphrase", STRING, None, "passphrase of an encrypted `key`", secret=True),
    Setting("cloud", STRING, "global", "`usgov` / `usgov-dod` use the US Government login host, API host and token "
            "resource", choices=tuple(API_HOSTS)),
    Setting("api_host", STRING, None, "the API host: `api.securitycenter.microsoft.com`, a geo host "
            "(`us.`, `eu.`, `uk.`, `au.`, `swa.`, `ina.api.security.microsoft.com`), the legacy "
            "`api.securitycenter.windows.com`, or any `host[:port]` / `https://` URL (a proxy, a test double)",
            doc_default="from `cloud`"),
    Setting("api.login_endpoint", STRING, None, "override the login host; https only", doc_default="from `cloud`"),
    Setting("ssl.certificate_authorities", STRINGS, [], "one extra CA bundle file, used for both hosts",
            doc_default="system CAs"),
    Setting("proxy_url", STRING, None, "HTTP(S) proxy for both hosts"),
    Setting("interval", DURATION, "5m", "pause between polls once caught up", positive=True),
    Setting("initial_lookback", DURATION, "24h", "how far back the first poll reads", positive=True),
    Setting("late_arrival_window", DURATION, "5m", "how far before the cursor each poll reads again, for updates "
            "the API lists late (already delivered ones are skipped)", minimum=0),
    Setting("page_size", INTEGER, MAX_PAGE, "`$top` of each request", minimum=1, maximum=MAX_PAGE),
    Setting("split_evidence", BOOLEAN, False, "`true`: one event per alert × evidence (Filebeat's shape); `false`: "
            "one event per alert with `evidence` as a list"),
    Setting("requests_per_minute", INTEGER, 100, "request budget per app and tenant, shared by every poller of "
            "that app (Microsoft allows 100)", minimum=1),
    Setting("requests_per_hour", INTEGER, 1500, "hourly request budget per app and tenant (Microsoft allows "
            "1,500)", minimum=1),
)


@dataclass
class DefenderAtpConfig:
    tenant_id: str
    client_id: str
    client_secret: str | None = field(repr=False)
    certificate: str | None
    key: str | None = field(repr=False)
    key_passphrase: str | None = field(repr=False)
    cloud: str
    login_endpoint: str
    api_url: str
    scope: str
    ca_bundle: str | None
    proxy_url: str | None
    interval: float
    initial_lookback: float
    late_arrival_window: float
    page_size: int
    split_evidence: bool
    requests_per_minute: int
    requests_per_hour: int


def parse_config(section: Section) -> DefenderAtpConfig:
    values = read_settings(section, SETTINGS)
    for name, what in REQUIRED_IDS.items():
        if not values[name]:
            values.error(name, f"is required: the app registration's {what}")
    check_credential_kind(section, values["client_secret"], values["certificate"], values["key"])
    cloud = values["cloud"] if values["cloud"] in API_HOSTS else "global"
    default_host, resource = API_HOSTS[cloud]
    login_endpoint = values["api.login_endpoint"] or f"https://{CLOUDS[cloud].login_host}"
    if urlsplit(login_endpoint).scheme != "https":
        values.error("api.login_endpoint", f"must be an https:// URL (got {login_endpoint!r})")
    authorities = values["ssl.certificate_authorities"]
    if len(authorities) > 1:
        values.error("ssl.certificate_authorities", "give one CA bundle file (concatenate several CAs into it)")
    return DefenderAtpConfig(
        tenant_id=values["tenant_id"],
        client_id=values["client_id"],
        client_secret=values["client_secret"],
        certificate=values["certificate"],
        key=values["key"],
        key_passphrase=values["key_passphrase"],
        cloud=cloud,
        login_endpoint=login_endpoint.rstrip("/"),
        api_url=_api_url(values, default_host),
        scope=f"{resource}/.default",
        ca_bundle=authorities[0] if authorities else None,
        proxy_url=values["proxy_url"],
        interval=values["interval"],
        initial_lookback=values["initial_lookback"],
        late_arrival_window=values["late_arrival_window"],
        page_size=values["page_size"],
        split_evidence=values["split_evidence"],
        requests_per_minute=values["requests_per_minute"],
        requests_per_hour=values["requests_per_hour"],
    )


def default_id(config: DefenderAtpConfig) -> str:
    return f"defender-atp-{config.tenant_id}"


def _api_url(values: SettingValues, default_host: str) -> str:
    """`https://host[:port]` from `api_host` (a bare host, host:port or an https URL); tokens never go in clear."""
    written = values["api_host"] or default_host
    url = written if "://" in written else f"https://{written}"
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname or parts.path.strip("/"):
        values.error("api_host", f"must be a host name, host:port or an https:// URL without a path (got {written!r})")
    return f"https://{parts.netloc}"
