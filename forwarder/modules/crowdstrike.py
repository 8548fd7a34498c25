"""The `crowdstrike` module: the Falcon SIEM Connector's JSON output file (fileset `falcon`), read by `filestream`.

The connector (SIEM Connector v2, JSON output) appends each Streaming API event
to a local file as a pretty-printed JSON object and rotates that file. Filebeat
joins the lines with a `^{` multiline pattern; this module renders a
filestream input with the `json_objects` parser instead, which frames each
object with the JSON decoder, so a cut object (the connector killed mid-write)
is forwarded raw and tagged `_parse_failure` instead of swallowing the next one,
and the registry only ever holds offsets between objects.

Filebeat's variables: `var.paths` (default
/var/log/crowdstrike/falconhoseclient/output) and `var.tags`; plus the mapping
switches every module here has: `normalize` (the `crowdstrike_falcon` ECS
mapping; false sends each object's text in `message` with Filebeat's ingest
pipeline name) and `preserve_original_event`.
"""

from __future__ import annotations

from typing import Any

from forwarder import __version__
from forwarder.modules.base import FilesetInput, merge_vars, read_vars
from forwarder.modules.crowdstrike_processor import RECORD_FIELD, crowdstrike_falcon_processor
from forwarder.pipeline.client import Processor
from forwarder.pipeline.processors import build_copy_fields
from forwarder.schema.section import Section

DEFAULT_PATHS = ["/var/log/crowdstrike/falconhoseclient/output"]
DEFAULT_TAGS = ["crowdstrike-falcon", "forwarded"]
PLAIN_VARS = ("paths", "tags", "normalize", "preserve_original_event")
MAPPING_VARS = ("normalize", "preserve_original_event")
FILESET = "falcon"


class CrowdstrikeModule:
    name = "crowdstrike"

    def expand(self, entry: Section) -> list[FilesetInput]:
        module_vars = read_vars(entry.section("var"), PLAIN_VARS)
        falcon = entry.section(FILESET)
        enabled = falcon.boolean("enabled", True)
        var_section = falcon.section("var")
        settings = merge_vars(module_vars, read_vars(var_section, PLAIN_VARS))
        overrides = falcon.mapping("input", {})
        falcon.finish()
        entry.finish()
        if not enabled:
            return []
        var_path = falcon.key_path("var")
        mapping = Section({key: settings.pop(key) for key in MAPPING_VARS if key in settings}, var_path,
                          entry.source, entry.problems)
        normalize = mapping.boolean("normalize", True)
        preserve_original_event = mapping.boolean("preserve_original_event", False)
        data = merge_vars(render_falcon_input(settings, normalize, preserve_original_event), overrides)
        return [FilesetInput(
            input_id="crowdstrike-falcon",
            section=Section(data, var_path, entry.source, entry.problems),
            module_fields={
                "event": {"module": "crowdstrike", "dataset": "crowdstrike.falcon"},
                "fileset": {"name": FILESET},
                "service": {"type": "crowdstrike"},
            },
            ingest_pipeline=None if normalize else f"filebeat-{__version__}-crowdstrike-falcon-pipeline",
            processors=fileset_processors(normalize, preserve_original_event),
        )]


def render_falcon_input(settings: dict[str, Any], normalize: bool, preserve_original_event: bool) -> dict[str, Any]:
    """The filestream input's settings: the connector's file, each JSON object one event."""
    parser: dict[str, Any] = (
        {"target": RECORD_FIELD, "keep_message": preserve_original_event} if normalize else {"decode": False}
    )
    return {
        "type": "filestream",
        "id": "crowdstrike-falcon",
        "paths": settings.get("paths", list(DEFAULT_PATHS)),
        "tags": settings.get("tags", list(DEFAULT_TAGS)),
        "parsers": [{"json_objects": parser}],
    }


def fileset_processors(normalize: bool, preserve_original_event: bool) -> list[Processor]:
    """The ECS mapping, or (without it) at most the copy of the raw text to `event.original`."""
    if normalize:
        return [crowdstrike_falcon_processor(preserve_original_event)]
    if preserve_original_event:
        fields = [{"from": "message", "to": "event.original"}]
        return [build_copy_fields(Section({"fields": fields}, "", "crowdstrike module", []))]
    return []


MODULE_TYPE = CrowdstrikeModule()
