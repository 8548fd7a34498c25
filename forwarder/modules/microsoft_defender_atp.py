"""The microsoft module's `defender_atp` fileset: Microsoft Defender for Endpoint alerts.

It renders the `defender-atp` input's settings from the fileset's `var.*`
(module-wide `var.*` first, the fileset's over them) and maps the alerts with
the `microsoft_defender_atp` processor (`var.normalize: false` sends the alert's JSON as it is, naming
Filebeat's ingest pipeline in `@metadata.pipeline`). Filebeat's own variables load too:
`var.oauth2.client.id`, `var.oauth2.client.secret` and `var.oauth2.token_url`
(whose path names the tenant). `var.private_key` is the certificate's key.
"""

from __future__ import annotations

import re
from typing import Any

from forwarder import __version__
from forwarder.modules.base import FilesetInput, merge_vars, read_vars
from forwarder.modules.microsoft_defender_atp_processor import defender_atp_processors
from forwarder.schema.section import Section

INPUT_TYPE = "defender-atp"
PLAIN_VARS = (
    "tenant_id", "client_id", "client_secret", "certificate", "private_key", "key", "key_passphrase", "api_host",
    "cloud", "proxy_url", "interval", "initial_lookback", "late_arrival_window", "page_size", "split_evidence",
    "requests_per_minute", "requests_per_hour", "tags", "normalize", "preserve_original_event",
)
MAPPING_VARS = ("normalize", "preserve_original_event")
NESTED_VARS = {"api": ("login_endpoint",), "ssl": ("certificate_authorities",)}
DEFAULT_TAGS = ["defender-atp", "forwarded"]
TOKEN_URL_TENANT = re.compile(r"^https://[^/]+/([^/]+)/oauth2/")


def expand_defender_atp(fileset: Section, module_vars: dict[str, Any]) -> list[FilesetInput]:
    """The fileset's one input (none when disabled)."""
    enabled = fileset.boolean("enabled", True)
    var_section = fileset.section("var")
    oauth2 = _filebeat_oauth2(var_section)
    settings = merge_vars(merge_vars(module_vars, oauth2), read_vars(var_section, PLAIN_VARS, NESTED_VARS))
    overrides = fileset.mapping("input", {})
    fileset.finish()
    if not enabled:
        return []
    if "private_key" in settings:
        settings.setdefault("key", settings.pop("private_key"))
    options = Section({key: settings.pop(key) for key in MAPPING_VARS if key in settings},
                      var_section.path, var_section.source, var_section.problems)
    normalize = options.boolean("normalize", True)
    preserve_original_event = options.boolean("preserve_original_event", False)
    data: dict[str, Any] = {"type": INPUT_TYPE, **settings}
    data.setdefault("tags", list(DEFAULT_TAGS))
    return [FilesetInput(
        input_id="microsoft-defender_atp",
        section=Section(merge_vars(data, overrides), var_section.path, var_section.source, var_section.problems),
        module_fields={
            "event": {"module": "microsoft", "dataset": "microsoft.defender_atp"},
            "fileset": {"name": "defender_atp"},
            "service": {"type": "microsoft"},
        },
        ingest_pipeline=None if normalize else f"filebeat-{__version__}-microsoft-defender_atp-pipeline",
        processors=defender_atp_processors(normalize, preserve_original_event),
    )]


def _filebeat_oauth2(var_section: Section) -> dict[str, Any]:
    """Filebeat's `var.oauth2.*` as our settings: client id and secret, and the tenant from the token URL."""
    if not var_section.has("oauth2"):
        return {}
    oauth2 = var_section.section("oauth2")
    client = oauth2.section("client")
    found = {"client_id": client.raw("id"), "client_secret": client.raw("secret")}
    client.finish()
    token_url = oauth2.raw("token_url")
    oauth2.ignore("provider", "azure", "scopes")
    oauth2.finish()
    if token_url is not None:
        match = TOKEN_URL_TENANT.match(str(token_url))
        if match is None:
            var_section.error("oauth2.token_url", "must look like https://login.microsoftonline.com/<TENANT>/oauth2/"
                                                  f"token (got {token_url!r}); or set var.tenant_id")
        else:
            found["tenant_id"] = match.group(1)
    return {key: value for key, value in found.items() if value is not None}
