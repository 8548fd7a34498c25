"""Writes the settings tables of README.md from the declared settings, or checks that they are current.

    python tools/readme_settings.py           # rewrite the tables in README.md
    python tools/readme_settings.py --check   # exit 1, naming each stale table, when README.md differs

Each table sits between `<!-- settings:NAME:begin -->` and
`<!-- settings:NAME:end -->`; NAME and the module whose `SETTINGS` tuple
the table is rendered from are listed in `TABLES` (`module:NAME` when the
tuple has another name, for a module declaring several). Text outside the
markers is left as it is.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from pathlib import Path

from forwarder.schema.declared import Setting
from forwarder.schema.reference_table import render_table

# Marker name → module declaring `SETTINGS`. A type converted to declared settings adds its row here.
TABLES = {
    "syslog": "forwarder.inputs.syslog_config",
    "filestream": "forwarder.inputs.filestream_config",
    "log": "forwarder.inputs.log_input",
    "graph": "forwarder.inputs.graph_config",
    "o365audit": "forwarder.inputs.o365_config",
    "azure-eventhub": "forwarder.inputs.eventhub_config",
    "aws-s3": "forwarder.inputs.aws_s3_config",
    "duo": "forwarder.inputs.duo_config",
    "cisco-secure-endpoint": "forwarder.inputs.secure_endpoint_config",
    "cisco-secure-endpoint-stream": "forwarder.inputs.secure_endpoint_stream_config",
    "defender-atp": "forwarder.inputs.defender_atp_config",
    "output.logstash": "forwarder.outputs.logstash.config",
    "output.file": "forwarder.outputs.file",
    "output.console": "forwarder.outputs.console",
    "processors": "forwarder.pipeline.processor_settings:COMMON_SETTINGS",
    "processor-rename": "forwarder.pipeline.processors:RENAME_SETTINGS",
    "processor-copy_fields": "forwarder.pipeline.processors:COPY_FIELDS_SETTINGS",
    "processor-drop_fields": "forwarder.pipeline.processors:DROP_FIELDS_SETTINGS",
    "processor-include_fields": "forwarder.pipeline.processors:INCLUDE_FIELDS_SETTINGS",
    "processor-add_fields": "forwarder.pipeline.processors:ADD_FIELDS_SETTINGS",
    "processor-add_tags": "forwarder.pipeline.processors:ADD_TAGS_SETTINGS",
    "processor-decode_json_fields": "forwarder.pipeline.json_fields",
    "processor-lowercase": "forwarder.processors.text_case:LOWERCASE_SETTINGS",
    "processor-uppercase": "forwarder.processors.text_case:UPPERCASE_SETTINGS",
    "processor-move_fields": "forwarder.processors.fields_move:MOVE_FIELDS_SETTINGS",
    "processor-urldecode": "forwarder.processors.value_decoders:URLDECODE_SETTINGS",
    "processor-decode_base64_field": "forwarder.processors.value_decoders:BASE64_FIELD_SETTINGS",
    "processor-replace": "forwarder.processors.replace:REPLACE_SETTINGS",
    "processor-truncate_fields": "forwarder.processors.truncate:TRUNCATE_FIELDS_SETTINGS",
    "processor-convert": "forwarder.processors.convert:CONVERT_SETTINGS",
    "processor-fingerprint": "forwarder.processors.fingerprint:FINGERPRINT_SETTINGS",
    "processor-timestamp": "forwarder.processors.timestamp:TIMESTAMP_SETTINGS",
    "processor-decode_xml": "forwarder.processors.decode_xml:DECODE_XML_SETTINGS",
    "processor-registered_domain": "forwarder.processors.registered_domain:REGISTERED_DOMAIN_SETTINGS",
    "processor-community_id": "forwarder.processors.community_id:COMMUNITY_ID_SETTINGS",
    "processor-add_network_direction": "forwarder.processors.network_direction:ADD_NETWORK_DIRECTION_SETTINGS",
    "processor-add_id": "forwarder.processors.add_id:ADD_ID_SETTINGS",
    "processor-add_locale": "forwarder.processors.add_locale:ADD_LOCALE_SETTINGS",
    "processor-rate_limit": "forwarder.processors.rate_limit:RATE_LIMIT_SETTINGS",
    "processor-script": "forwarder.processors.script:SCRIPT_SETTINGS",
    "processor-add_cloud_metadata": "forwarder.processors.cloud_metadata:ADD_CLOUD_METADATA_SETTINGS",
    "processor-add_host_metadata": "forwarder.pipeline.host_metadata",
    "processor-entraid_ecs": "forwarder.modules.entraid_processor",
    "processor-o365_ecs": "forwarder.modules.o365_processor",
    "processor-azure_ecs": "forwarder.modules.azure_processor",
    "processor-duo_ecs": "forwarder.modules.duo_processor",
    "processor-cisco_umbrella": "forwarder.modules.cisco_umbrella_processor",
    "processor-cisco_secure_endpoint": "forwarder.modules.cisco_secure_endpoint_processor",
    "processor-cisco_esa": "forwarder.modules.cisco_esa_processor",
    "processor-dissect": "forwarder.processors.dissect",
    "processor-decode_cef": "forwarder.processors.cef",
    "processor-decode_csv_fields": "forwarder.processors.csv_fields",
    "processor-crowdstrike_falcon": "forwarder.modules.crowdstrike_processor",
    "processor-microsoft_defender_atp": "forwarder.modules.microsoft_defender_atp_processor",
    "processor-kv": "forwarder.processors.kv",
    "processor-syslog": "forwarder.processors.syslog_message",
    "processor-sophos_xg": "forwarder.modules.sophos_processor",
}
README = Path(__file__).resolve().parent.parent / "README.md"
FIX_COMMAND = "python tools/readme_settings.py"


def marked_block(name: str) -> re.Pattern[str]:
    begin, end = re.escape(f"<!-- settings:{name}:begin -->"), re.escape(f"<!-- settings:{name}:end -->")
    return re.compile(f"({begin}\n)(.*?)(\n?{end})", re.DOTALL)


def declared_settings(source: str) -> tuple[Setting, ...]:
    """The settings tuple a `TABLES` entry names: `module` (its `SETTINGS`) or `module:NAME`."""
    module, _, attribute = source.partition(":")
    return getattr(importlib.import_module(module), attribute or "SETTINGS")


def updated(text: str) -> tuple[str, list[str], list[str]]:
    """(README text with every table rendered, names of stale tables, names whose markers are missing)."""
    stale, missing = [], []
    for name, source in TABLES.items():
        table = render_table(declared_settings(source))
        match = marked_block(name).search(text)
        if match is None:
            missing.append(name)
            continue
        if match.group(2) != table:
            stale.append(name)
            text = text[:match.start()] + f"{match.group(1)}{table}\n{match.group(3).lstrip()}" + text[match.end():]
    return text, stale, missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale tables; exit 1 if there are any")
    parser.add_argument("--readme", type=Path, default=README, help="the README to update (default: %(default)s)")
    args = parser.parse_args(argv)
    text = args.readme.read_text(encoding="utf-8")
    new_text, stale, missing = updated(text)
    for name in missing:
        print(f"{args.readme}: no <!-- settings:{name}:begin --> … <!-- settings:{name}:end --> markers; "
              f"add them where the {name} table belongs, then run {FIX_COMMAND}", file=sys.stderr)
    if args.check:
        for name in stale:
            print(f"{args.readme}: the {name} settings table differs from the declarations in {TABLES[name]}; "
                  f"run {FIX_COMMAND}", file=sys.stderr)
        return 1 if stale or missing else 0
    if new_text != text:
        args.readme.write_text(new_text, encoding="utf-8")
        print(f"{args.readme}: rewrote the settings tables of {', '.join(stale)}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
