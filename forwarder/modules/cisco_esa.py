"""The cisco module's `esa` fileset: Cisco Secure Email Gateway (ESA) and Cloud Gateway (CES) text logs.

Filebeat has no such fileset (Elastic parses these logs with the
cisco_secure_email_gateway integration's ingest pipelines); the variables
follow that integration and Filebeat's syslog filesets. The appliance
delivers a log subscription in one of two ways:

- `var.input: file` (default): it pushes each rolled-over file by SCP (or
  FTP) into a directory on this host. The fileset renders a `filestream`
  input over `var.paths` that reads only saved files (`*.s`): never the
  `.c`/`.current` file still being written, never a compressed `.gz`.
- `var.input: syslog`: it pushes each line by syslog (UDP, or TCP when its
  TCP box is ticked) with the subscription name as the tag; the fileset
  renders a `syslog` input on `var.syslog_host:var.syslog_port`.

Either way the `cisco_esa` processor maps the lines onto ECS; `var.timezone`
names the zone the appliance's stamps are in.
"""

from __future__ import annotations

from typing import Any

from forwarder.modules.base import FilesetInput, merge_vars, read_vars
from forwarder.modules.cisco_esa_processor import esa_processor
from forwarder.pipeline.client import Processor
from forwarder.schema.section import Section

VARS = ("input", "paths", "syslog_host", "syslog_port", "protocol", "timezone", "tags")
INPUTS = ("file", "syslog")
PROTOCOLS = ("udp", "tcp")
DEFAULT_PATHS = ["/var/log/cisco-esa/*/*.s"]
DEFAULT_SYSLOG_HOST = "localhost"
DEFAULT_SYSLOG_PORT = 514
DEFAULT_TAGS = ["cisco-esa", "forwarded"]
# Saved files only: the appliance renames a file to `….s` once it is complete, then pushes it.
SAVED_FILES = [r"\.s$"]
COMPRESSED_FILES = [r"\.gz$"]


def expand_esa(esa: Section) -> list[FilesetInput]:
    """The one input of an enabled `esa` fileset (none when disabled or when its vars cannot make one)."""
    enabled = esa.boolean("enabled", True)
    var_section = esa.section("var")
    settings = read_vars(var_section, VARS)
    overrides = esa.mapping("input", {})
    esa.finish()
    if not enabled:
        return []
    rendered = render_esa_input(settings, var_section)
    if rendered is None:
        return []
    data, processor = rendered
    return [FilesetInput(
        input_id="cisco-esa",
        section=Section(merge_vars(data, overrides), var_section.path, var_section.source, var_section.problems),
        module_fields={
            "event": {"module": "cisco", "dataset": "cisco.esa"},
            "fileset": {"name": "esa"},
            "service": {"type": "cisco"},
        },
        processors=[processor],
    )]


def render_esa_input(settings: dict[str, Any], var_section: Section) -> tuple[dict[str, Any], Processor] | None:
    """(the filestream or syslog input mapping, the fileset's mapping); None once a wrong var is reported.

    A file's stamps are read in `var.timezone` by the mapping; a syslog message's stamp is read in the
    same zone by the syslog input, which reports a wrong zone itself.
    """
    options = Section(dict(settings), var_section.path, var_section.source, var_section.problems)
    before = len(var_section.problems)
    input_name = options.string("input", "file", choices=INPUTS)
    zone_name = options.string("timezone", None)
    tags = options.string_list("tags", list(DEFAULT_TAGS))
    if input_name == "file":
        misplaced = [name for name in ("syslog_host", "syslog_port", "protocol") if name in settings]
        if misplaced:
            var_section.error(misplaced[0], "is a setting of var.input: syslog; set var.input: syslog or remove it")
        paths = options.string_list("paths", list(DEFAULT_PATHS))
        data: dict[str, Any] = {
            "type": "filestream", "paths": paths,
            "prospector": {"scanner": {"include_files": list(SAVED_FILES), "exclude_files": list(COMPRESSED_FILES)}},
        }
        options.ignore("syslog_host", "syslog_port", "protocol")
        processor = esa_processor(zone_name, var_section)
    else:
        if "paths" in settings:
            var_section.error("paths", "is a setting of var.input: file; set var.input: file or remove it")
        host = options.string("syslog_host", DEFAULT_SYSLOG_HOST)
        port = options.integer("syslog_port", DEFAULT_SYSLOG_PORT, 1, 65535)
        protocol = options.string("protocol", "udp", choices=PROTOCOLS)
        address = f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
        data = {"type": "syslog", "protocol": {protocol: {"host": address}}}
        if zone_name is not None:
            data["timezone"] = zone_name
        options.ignore("paths")
        processor = esa_processor(None, var_section)
    options.finish()
    if len(var_section.problems) != before:
        return None
    data["tags"] = tags
    return data, processor
