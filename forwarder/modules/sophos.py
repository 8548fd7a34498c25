"""The `sophos` module: Sophos Firewall (SFOS, formerly XG) syslog, fileset `xg`, on the `syslog` input.

A Filebeat `modules.d/sophos.yml` loads unchanged: the fileset takes
Filebeat's variables `input` (`udp`, the default, or `tcp`), `syslog_host`
(`localhost`), `syslog_port` (9004), `tags`, `default_host_name` and
`known_devices` (serial number → `host.name`), plus `timezone`, the zone of
the local times SFOS ≤ 18.5 writes, and `normalize` (default true: the
`sophos_xg` ECS mapping; false: the raw payload in `message`, named for
Filebeat's ingest pipeline). Filebeat's `file` input of this fileset is not
offered: read such files with a `filestream` input and the `sophos_xg`
processor.

The module renders the `syslog` input's settings, which the input checks, so
a mistake is reported against the module file; the mapping's own variables
are read here, against the same file and keys.
"""

from __future__ import annotations

from typing import Any

from forwarder import __version__
from forwarder.modules.base import FilesetInput, merge_vars, read_vars
from forwarder.modules.sophos_processor import build_sophos_xg
from forwarder.schema.section import Section

PLAIN_VARS = ("input", "syslog_host", "syslog_port", "tags", "timezone", "default_host_name", "known_devices",
              "normalize")
MAPPING_VARS = ("timezone", "default_host_name", "known_devices")
PROTOCOLS = ("udp", "tcp")
DEFAULT_TAGS = ["sophos-xg", "forwarded"]


class SophosModule:
    name = "sophos"

    def expand(self, entry: Section) -> list[FilesetInput]:
        module_vars = read_vars(entry.section("var"), PLAIN_VARS)
        xg = entry.section("xg")
        enabled = xg.boolean("enabled", True)
        var_section = xg.section("var")
        settings = merge_vars(module_vars, read_vars(var_section, PLAIN_VARS))
        overrides = xg.mapping("input", {})
        xg.finish()
        entry.finish()
        if not enabled:
            return []
        var_path = xg.key_path("var")
        options = Section(dict(settings), var_path, entry.source, entry.problems)
        protocol = options.string("input", "udp", choices=PROTOCOLS)
        host = options.string("syslog_host", "localhost")
        port = options.integer("syslog_port", 9004, 1, 65535)
        tags = options.string_list("tags", list(DEFAULT_TAGS))
        normalize = options.boolean("normalize", True)
        data: dict[str, Any] = {
            "type": "syslog",
            "protocol": {protocol: {"host": f"{_bracketed(host)}:{port}"}},
            "tags": tags,
        }
        mapping = Section({key: settings[key] for key in MAPPING_VARS if key in settings}, var_path, entry.source,
                          entry.problems)
        # Built (so its variables are checked) even when normalize is off.
        mapping_processor = build_sophos_xg(mapping)
        mapping.finish()
        return [FilesetInput(
            input_id="sophos-xg",
            section=Section(merge_vars(data, overrides), var_path, entry.source, entry.problems),
            module_fields={
                "event": {"module": "sophos", "dataset": "sophos.xg"},
                "fileset": {"name": "xg"},
                "service": {"type": "sophos"},
                "observer": {"vendor": "Sophos", "product": "XG", "type": "firewall"},
            },
            ingest_pipeline=None if normalize else f"filebeat-{__version__}-sophos-xg-pipeline",
            processors=[mapping_processor] if normalize else [],
        )]


def _bracketed(host: str) -> str:
    """An IPv6 literal in brackets, as `host:port` needs it."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


MODULE_TYPE = SophosModule()
