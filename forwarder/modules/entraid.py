"""The `entraid` module: Entra ID logs from Microsoft Graph, one `graph` input per enabled fileset.

Written the way Filebeat module files are: module-wide `var.*` settings that
each fileset may override under its own `var.*`, and `enabled` per fileset. The
module translates these into `graph` input settings, which the input validates,
so a mistake is reported against the module file and the key written. The
module itself owns the mapping: `normalize` and `preserve_original_event` choose
the fileset's processors (the `entraid_ecs` ECS mapping, or the raw record with
Filebeat's ingest pipeline named in `@metadata.pipeline`) and are not passed on.
"""

from __future__ import annotations

from forwarder import __version__
from forwarder.modules.base import FilesetInput, merge_vars, read_vars
from forwarder.modules.entraid_processor import fileset_processors
from forwarder.schema.section import Section

# Fileset → the record types its input polls (entraid_ecs.RECORD_TYPES, or a group the input expands).
FILESETS = {
    "signinlogs": "signinlogs",
    "auditlogs": "auditlogs",
    "provisioning": "provisioning",
    "identity_protection": "identity_protection",
    "alerts": "alert",
    "incidents": "incident",
}
PLAIN_VARS = (
    "tenant_id", "client_id", "client_secret", "certificate", "key", "key_passphrase", "cloud", "proxy_url",
    "poll_interval", "initial_lookback", "late_arrival_window", "page_size", "sign_in_types",
    "requests_per_10s", "normalize", "preserve_original_event",
)
NESTED_VARS = {"api": ("login_endpoint", "graph_endpoint"), "ssl": ("certificate_authorities",)}
# Settings of the mapping, which the module reads itself instead of passing them to the input.
MAPPING_VARS = ("normalize", "preserve_original_event")


class EntraIdModule:
    name = "entraid"

    def expand(self, entry: Section) -> list[FilesetInput]:
        module_vars = read_vars(entry.section("var"), (*PLAIN_VARS, "application_id"), NESTED_VARS)
        inputs = []
        for fileset, record_type in FILESETS.items():
            fileset_section = entry.section(fileset)
            enabled = fileset_section.boolean("enabled", False)
            fileset_vars = read_vars(fileset_section.section("var"), (*PLAIN_VARS, "application_id"), NESTED_VARS)
            overrides = fileset_section.mapping("input", {})
            fileset_section.finish()
            if not enabled:
                continue
            settings = merge_vars(module_vars, fileset_vars)
            if "application_id" in settings:
                settings.setdefault("client_id", settings.pop("application_id"))
            if fileset != "signinlogs":
                settings.pop("sign_in_types", None)
            data = merge_vars({**settings, "type": "graph", "record_types": [record_type]}, overrides)
            var_path = fileset_section.key_path("var")
            mapping = Section({key: data.pop(key) for key in MAPPING_VARS if key in data}, var_path, entry.source,
                              entry.problems)
            normalize = mapping.boolean("normalize", True)
            preserve_original_event = mapping.boolean("preserve_original_event", False)
            inputs.append(FilesetInput(
                input_id=f"entraid-{fileset}",
                section=Section(data, var_path, entry.source, entry.problems),
                module_fields={
                    "event": {"module": "entraid", "dataset": f"entraid.{fileset}"},
                    "fileset": {"name": fileset},
                    "service": {"type": "entraid"},
                },
                ingest_pipeline=None if normalize else f"filebeat-{__version__}-entraid-{fileset}-pipeline",
                processors=fileset_processors(normalize, preserve_original_event),
            ))
        entry.finish()
        return inputs


MODULE_TYPE = EntraIdModule()
