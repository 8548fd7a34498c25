"""The microsoft module's `m365_defender` fileset: Defender XDR alerts and incidents from Microsoft Graph.

Graph lists Defender XDR's alerts (`/security/alerts_v2`) and incidents
(`/security/incidents?$expand=alerts`) as the same resources the `entraid`
module's `alerts` and `incidents` filesets read, so this fileset is those
two filesets under another name: the same `graph` input (one per stream, so
each stream keeps its own dataset and registry cursor) and the same
`entraid_ecs` mapping. What differs is the module (`microsoft`), the datasets
(`m365_defender.alert`, `m365_defender.incident`, Elastic's names) and the
defaults Filebeat documents for this fileset (`var.interval` 5m, tags
`m365-defender` and `forwarded`). Filebeat's `var.oauth2.*` load as in
`defender_atp`.

When `entraid` reads the same stream of the same app and tenant too, the
forwarder keeps one poller for both (config/shared_graph_pollers.py).
"""

from __future__ import annotations

from typing import Any

from forwarder import __version__
from forwarder.modules.base import FilesetInput, merge_vars, read_vars
from forwarder.modules.entraid_processor import fileset_processors
from forwarder.modules.microsoft_defender_atp import _filebeat_oauth2
from forwarder.schema.section import Section

FILESET = "m365_defender"
# Stream (the `graph` input's record type) → the dataset of its events.
STREAM_DATASETS = {"alert": "m365_defender.alert", "incident": "m365_defender.incident"}
PLAIN_VARS = (
    "tenant_id", "client_id", "client_secret", "certificate", "key", "private_key", "key_passphrase", "cloud",
    "proxy_url", "interval", "poll_interval", "initial_lookback", "late_arrival_window", "page_size",
    "requests_per_10s", "normalize", "preserve_original_event", "tags", "streams",
)
NESTED_VARS = {"api": ("login_endpoint", "graph_endpoint"), "ssl": ("certificate_authorities",)}
MAPPING_VARS = ("normalize", "preserve_original_event")
DEFAULT_TAGS = ["m365-defender", "forwarded"]
DEFAULT_INTERVAL = "5m"


def expand_m365_defender(fileset: Section, module_vars: dict[str, Any]) -> list[FilesetInput]:
    """One `graph` input per enabled stream (none when the fileset is disabled)."""
    enabled = fileset.boolean("enabled", True)
    var_section = fileset.section("var")
    oauth2 = _filebeat_oauth2(var_section)
    own_vars = read_vars(var_section, PLAIN_VARS, NESTED_VARS)
    overrides = fileset.mapping("input", {})
    fileset.finish()
    if not enabled:
        return []
    # Module-wide vars are shared with the other filesets: only the ones this fileset knows apply here.
    shared = {key: value for key, value in module_vars.items() if key in PLAIN_VARS or key in NESTED_VARS}
    settings = merge_vars(merge_vars(shared, oauth2), own_vars)
    if "private_key" in settings:
        settings.setdefault("key", settings.pop("private_key"))
    interval = settings.pop("interval", DEFAULT_INTERVAL)
    settings.setdefault("poll_interval", interval)
    settings.setdefault("tags", list(DEFAULT_TAGS))
    chosen = _streams(settings.pop("streams", list(STREAM_DATASETS)), var_section)
    mapping = Section({key: settings.pop(key) for key in MAPPING_VARS if key in settings}, var_section.path,
                      var_section.source, var_section.problems)
    normalize = mapping.boolean("normalize", True)
    preserve_original_event = mapping.boolean("preserve_original_event", False)
    return [FilesetInput(
        input_id=f"microsoft-{FILESET}-{stream}",
        section=Section(merge_vars({**settings, "type": "graph", "record_types": [stream]}, overrides),
                        var_section.path, var_section.source, var_section.problems),
        module_fields={
            "event": {"module": "microsoft", "dataset": STREAM_DATASETS[stream]},
            "fileset": {"name": FILESET},
            "service": {"type": "microsoft"},
        },
        ingest_pipeline=None if normalize else f"filebeat-{__version__}-microsoft-{FILESET}-pipeline",
        processors=fileset_processors(normalize, preserve_original_event),
    ) for stream in chosen]


def _streams(value: Any, var_section: Section) -> list[str]:
    """`var.streams`: which of `alert` and `incident` to poll (both by default), each once, in that order."""
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or any(name not in STREAM_DATASETS for name in names):
        var_section.error("streams", f"must list one or both of {', '.join(STREAM_DATASETS)} (got {value!r})")
        return []
    return [name for name in STREAM_DATASETS if name in names]
