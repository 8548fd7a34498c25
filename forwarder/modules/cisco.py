"""The `cisco` module: Cisco Umbrella's S3 log export (fileset `umbrella`), read by the `aws-s3` input.

A Filebeat `modules.d/cisco.yml` must load unchanged, so the fileset takes
Filebeat's variables (`input`, `queue_url`, `access_key_id`,
`secret_access_key`, `visibility_timeout`, `api_timeout`, `tags`) and adds
what Filebeat's SQS-only module cannot do: reading a bucket by listing it
(`bucket_arn` or `non_aws_bucket_name` with `bucket_list_prefix`), which a
Cisco-managed bucket needs, since its owner cannot add S3 notifications.

The module only renders the `aws-s3` input's settings (the input validates
them, so a mistake is reported against the module file): one `file_selectors`
entry per Umbrella log-type folder under the prefix, the audit folder with a
multiline parser so that a record whose quoted before/after spans lines is
one message. `normalize` chooses the `cisco_umbrella` ECS mapping or raw
lines named for Filebeat's ingest pipeline. Filebeat's other cisco filesets
(asa, ftd, …) are not implemented: present and disabled they are ignored,
enabled they are a config error. The `amp` fileset (Cisco Secure Endpoint) is
rendered by forwarder/modules/cisco_amp.py; a file with only `amp` does not
enable `umbrella`. The `esa` fileset (Cisco Secure Email text logs, pushed by
SCP or syslog) is rendered by forwarder/modules/cisco_esa.py.
"""

from __future__ import annotations

import re
from typing import Any

from forwarder import __version__
from forwarder.modules.base import FilesetInput, merge_vars, read_vars
from forwarder.modules.cisco_amp import expand_amp
from forwarder.modules.cisco_esa import expand_esa
from forwarder.modules.cisco_umbrella_columns import LOG_TYPES
from forwarder.modules.cisco_umbrella_processor import umbrella_processors
from forwarder.schema.section import Section

INPUT_TYPE = "aws-s3"
PLAIN_VARS = (
    "input", "queue_url", "bucket_arn", "non_aws_bucket_name", "bucket_list_prefix", "bucket_list_interval",
    "number_of_workers", "endpoint", "region", "default_region", "path_style", "access_key_id",
    "secret_access_key", "session_token", "role_arn", "credential_profile_name", "shared_credential_file",
    "visibility_timeout", "api_timeout", "proxy_url", "tags", "log_types", "normalize",
)
NESTED_VARS = {"ssl": ("certificate_authorities", "verification_mode")}
DEFAULT_TAGS = ["cisco-umbrella", "forwarded"]
# Filebeat's other cisco filesets: accepted when disabled (a Filebeat cisco.yml lists them), refused when enabled.
OTHER_FILESETS = ("asa", "ftd", "ios", "nexus", "meraki")
# A new audit record starts with its quoted id (possibly empty) and its quoted time; other lines continue it.
AUDIT_RECORD_START = r'^"[^"]*","\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}"'
AUDIT_MAX_LINES = 10000


class CiscoModule:
    name = "cisco"

    def expand(self, entry: Section) -> list[FilesetInput]:
        module_vars = read_vars(entry.section("var"), PLAIN_VARS, NESTED_VARS)
        for fileset in OTHER_FILESETS:
            if entry.has(fileset):
                other = entry.section(fileset)
                if other.boolean("enabled", True):
                    other.error("enabled", f"the cisco {fileset} fileset is not supported by this forwarder "
                                           "yet (only umbrella, amp and esa); set enabled: false")
                other.ignore(*other.data)
        inputs = expand_amp(entry.section("amp")) if entry.has("amp") else []
        if entry.has("esa"):
            inputs += expand_esa(entry.section("esa"))
        if entry.has("umbrella") or not (entry.has("amp") or entry.has("esa")):
            inputs += self._expand_umbrella(entry, module_vars)
        entry.finish()
        return inputs

    def _expand_umbrella(self, entry: Section, module_vars: dict[str, Any]) -> list[FilesetInput]:
        umbrella = entry.section("umbrella")
        enabled = umbrella.boolean("enabled", True)
        var_section = umbrella.section("var")
        settings = merge_vars(module_vars, read_vars(var_section, PLAIN_VARS, NESTED_VARS))
        overrides = umbrella.mapping("input", {})
        umbrella.finish()
        if not enabled:
            return []
        rendered = render_umbrella_input(settings, var_section)
        if rendered is None:
            return []
        data, log_types, normalize = rendered
        data = merge_vars(data, overrides)
        return [FilesetInput(
            input_id="cisco-umbrella",
            section=Section(data, var_section.path, entry.source, entry.problems),
            module_fields={
                "event": {"module": "cisco", "dataset": "cisco.umbrella"},
                "fileset": {"name": "umbrella"},
                "service": {"type": "cisco"},
            },
            ingest_pipeline=None if normalize else f"filebeat-{__version__}-cisco-umbrella-pipeline",
            processors=umbrella_processors(log_types) if normalize else [],
        )]


def render_umbrella_input(settings: dict[str, Any], var_section: Section) -> tuple[dict[str, Any], list[str],
                                                                                       bool] | None:
    """The `aws-s3` input mapping, the log types read and `normalize`; None when the vars cannot make one."""
    settings = dict(settings)
    input_name = settings.pop("input", INPUT_TYPE)
    if input_name != INPUT_TYPE:
        var_section.error("input", f"only {INPUT_TYPE!r} is supported (got {input_name!r}); to read exported "
                                   "Umbrella CSV files from disk use a filestream input with the "
                                   "cisco_umbrella processor")
        return None
    options = Section({key: settings.pop(key) for key in ("log_types", "normalize") if key in settings},
                      var_section.path, var_section.source, var_section.problems)
    log_types = options.string_list("log_types", list(LOG_TYPES))
    normalize = options.boolean("normalize", True)
    unknown = [name for name in log_types if name not in LOG_TYPES]
    if unknown or not log_types:
        var_section.error("log_types", f"unknown Umbrella log type(s) {', '.join(map(str, unknown))} "
                                       f"(known: {', '.join(LOG_TYPES)})" if unknown else
                          f"must name at least one log type ({', '.join(LOG_TYPES)})")
        return None
    prefix = settings.pop("bucket_list_prefix", None)
    prefix = prefix.strip("/") if isinstance(prefix, str) else ""
    data: dict[str, Any] = {"type": INPUT_TYPE, **settings}
    if prefix:
        data["bucket_list_prefix"] = prefix + "/"
    data["file_selectors"] = [_selector(prefix, log_type) for log_type in log_types]
    data.setdefault("tags", list(DEFAULT_TAGS))
    return data, log_types, normalize


def _selector(prefix: str, log_type: str) -> dict[str, Any]:
    """The file selector of one log-type folder: keys `<prefix>/<log type>/…` (any parent folder without a prefix)."""
    start = f"^{re.escape(prefix)}/" if prefix else "(^|/)"
    selector: dict[str, Any] = {"regex": f"{start}{log_type}/"}
    if log_type == "auditlogs":
        selector["parsers"] = [{"multiline": {
            "type": "pattern", "pattern": AUDIT_RECORD_START, "negate": True, "match": "after",
            "max_lines": AUDIT_MAX_LINES,
        }}]
    return selector


MODULE_TYPE = CiscoModule()
