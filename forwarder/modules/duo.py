"""The `duo` module: Cisco Duo logs from the Admin API, one `duo` input per enabled fileset.

Written the way Filebeat module files are: module-wide `var.*` settings that
each fileset may override under its own `var.*`, and `enabled` per fileset.
The module translates them into the `duo` input's settings (`streams:
[<fileset>]`), which the input validates, so a mistake is reported against
the module file and the key written. `var.ssl` is handed to the input as
written, so every `ssl.*` setting the input knows is available as `var.ssl.*`.

The module owns the mapping: `normalize` and `preserve_original_event` choose
the fileset's processors (the `duo_ecs` ECS mapping, or the raw record) and
are not passed on. Events are named as Elastic's cisco_duo integration names
them: `event.module: cisco_duo`, `event.dataset: cisco_duo.<fileset>`.
"""

from __future__ import annotations

from typing import Any

from forwarder.modules.base import FilesetInput, merge_vars, read_vars
from forwarder.modules.duo_processor import duo_ecs_processor
from forwarder.pipeline.client import Processor
from forwarder.pipeline.processors import build_copy_fields
from forwarder.schema.section import Section

FILESETS = ("auth", "admin", "telephony", "activity", "trust_monitor", "offline_enrollment")
PLAIN_VARS = (
    "api_hostname", "integration_key", "secret_key", "poll_interval", "initial_lookback", "ssl", "proxy_url",
    "normalize", "preserve_original_event",
)
# Settings of the mapping, which the module reads itself instead of passing them to the input.
MAPPING_VARS = ("normalize", "preserve_original_event")
EVENT_MODULE = "cisco_duo"


class DuoModule:
    name = "duo"

    def expand(self, entry: Section) -> list[FilesetInput]:
        module_vars = read_vars(entry.section("var"), PLAIN_VARS)
        inputs = []
        for fileset in FILESETS:
            fileset_section = entry.section(fileset)
            enabled = fileset_section.boolean("enabled", False)
            fileset_vars = read_vars(fileset_section.section("var"), PLAIN_VARS)
            overrides = fileset_section.mapping("input", {})
            fileset_section.finish()
            if not enabled:
                continue
            settings = merge_vars(module_vars, fileset_vars)
            data = merge_vars({"type": "duo", **settings, "streams": [fileset]}, overrides)
            var_path = fileset_section.key_path("var")
            mapping = Section({key: data.pop(key) for key in MAPPING_VARS if key in data}, var_path, entry.source,
                              entry.problems)
            normalize = mapping.boolean("normalize", True)
            preserve_original_event = mapping.boolean("preserve_original_event", False)
            inputs.append(FilesetInput(
                input_id=f"duo-{fileset}",
                section=Section(data, var_path, entry.source, entry.problems),
                module_fields=module_fields(fileset),
                processors=fileset_processors(normalize, preserve_original_event),
            ))
        entry.finish()
        return inputs


def module_fields(fileset: str) -> dict[str, Any]:
    """The fields every event of the fileset gets (a fresh object per call: the pipeline may edit them)."""
    return {
        "event": {"module": EVENT_MODULE, "dataset": f"{EVENT_MODULE}.{fileset}"},
        "fileset": {"name": fileset},
        "service": {"type": EVENT_MODULE},
    }


def fileset_processors(normalize_records: bool, preserve_original_event: bool) -> list[Processor]:
    """The processors of a duo fileset: the ECS mapping, or (without it) at most the copy to `event.original`."""
    if normalize_records:
        return [duo_ecs_processor(preserve_original_event)]
    if preserve_original_event:
        fields = [{"from": "message", "to": "event.original"}]
        return [build_copy_fields(Section({"fields": fields}, "", "duo module", []))]
    return []


MODULE_TYPE = DuoModule()
