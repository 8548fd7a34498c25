"""The `o365` module: Office 365 audit logs from the Management Activity API, as Filebeat's o365 module reads them.

A Filebeat `modules.d/o365.yml` must load unchanged, so the fileset (`audit`)
takes Filebeat's variables with their names and defaults and renders one
`o365audit` input from them, just as Filebeat's input template does: the
tenant list becomes `tenant_id` (every id) plus `tenant_names` (id → name, for
`organization.name`). Variables may also sit at module level, where the
fileset's own `var.*` override them. The input validates the values, so a
mistake is reported against the module file and the variable written.

The fileset maps the input's raw records onto ECS with the `o365_ecs`
processor (forwarder/modules/o365_processor.py), built from `var.normalize`,
`var.api.preserve_original_event` and the tenant names.
"""

from __future__ import annotations

from typing import Any

from forwarder import __version__
from forwarder.modules.base import FilesetInput, merge_vars, read_vars
from forwarder.modules.o365_processor import o365_ecs_processor
from forwarder.pipeline.client import Processor
from forwarder.schema.section import Section

PLAIN_VARS = (
    "application_id", "tenants", "client_secret", "certificate", "key", "key_passphrase", "content_type",
    "proxy_url", "normalize", "tags", "input",
)
NESTED_VARS = {
    "api": (
        "authentication_endpoint", "resource", "max_retention", "max_query_size", "poll_interval",
        "max_requests_per_minute", "error_retry_interval", "set_id_from_audit_record", "preserve_original_event",
        "adjust_clock", "adjust_clock_min_difference", "adjust_clock_warn",
    ),
    "ssl": ("certificate_authorities",),
}
INPUT_TYPE = "o365audit"
# Filebeat's default: events describe the tenant, not the collecting host, so no host.* of ours is added.
DEFAULT_TAGS = ["forwarded"]


class O365Module:
    name = "o365"

    def expand(self, entry: Section) -> list[FilesetInput]:
        module_vars = read_vars(entry.section("var"), PLAIN_VARS, NESTED_VARS)
        audit = entry.section("audit")
        enabled = audit.boolean("enabled", True)
        var_section = audit.section("var")
        settings = merge_vars(module_vars, read_vars(var_section, PLAIN_VARS, NESTED_VARS))
        overrides = audit.mapping("input", {})
        audit.finish()
        entry.finish()
        if not enabled:
            return []
        data = _input_settings(settings, var_section)
        if data is None:
            return []
        data = merge_vars(data, overrides)
        normalized, processors = _ecs_processors(data)
        return [FilesetInput(
            input_id="o365-audit",
            section=Section(data, var_section.path, entry.source, entry.problems),
            module_fields={
                "event": {"module": "o365", "dataset": "o365.audit"},
                "fileset": {"name": "audit"},
                "service": {"type": "o365"},
            },
            ingest_pipeline=None if normalized else f"filebeat-{__version__}-o365-audit-pipeline",
            processors=processors,
        )]


def _ecs_processors(data: dict[str, Any]) -> tuple[bool, list[Processor]]:
    """Whether the events are normalized, and the processors that make them from the input's records.

    The values are read as the input reads them. The input reports their mistakes against the variable
    written, so they are read here through a Section of their own and not reported a second time.
    """
    api = data.get("api") if isinstance(data.get("api"), dict) else {}
    options = Section({"normalize": data.get("normalize"),
                       "preserve_original_event": api.get("preserve_original_event")}, "", "", [])
    normalized = options.boolean("normalize", True)
    preserve_original_event = options.boolean("preserve_original_event", False)
    if not (normalized or preserve_original_event):
        return normalized, []
    names = data.get("tenant_names") if isinstance(data.get("tenant_names"), dict) else {}
    tenant_names = {str(tenant): str(name) for tenant, name in names.items()
                    if name is not None and not isinstance(name, (dict, list))}
    return normalized, [o365_ecs_processor(normalized, preserve_original_event, tenant_names)]


def _input_settings(settings: dict[str, Any], var_section: Section) -> dict[str, Any] | None:
    """The `o365audit` input mapping; None when the variables cannot make one (the problem is recorded)."""
    settings = dict(settings)
    input_name = settings.pop("input", INPUT_TYPE)
    if input_name != INPUT_TYPE:
        var_section.error("input", f"only {INPUT_TYPE!r} is supported (got {input_name!r}); "
                                   "to read exported audit records from files use a filestream input")
        return None
    if "tenants" not in settings:
        var_section.error("tenants", 'is required: a list of tenants, e.g. [{id: "<tenant GUID>", '
                                     'name: "contoso.onmicrosoft.com"}]')
        return None
    tenants = _read_tenants(settings.pop("tenants"), var_section)
    if tenants is None:
        return None
    settings["tenant_id"] = list(tenants)
    names = {tenant_id: name for tenant_id, name in tenants.items() if name is not None}
    if names:
        settings["tenant_names"] = names
    settings.setdefault("tags", list(DEFAULT_TAGS))
    return {**settings, "type": INPUT_TYPE}


def _read_tenants(value: Any, var_section: Section) -> dict[str, str | None] | None:
    """Tenant id → name (None when unnamed) from `var.tenants`, in the order written."""
    shape = 'expected a list of tenants, each with an id and a name: [{id: "<tenant GUID>", name: "<domain>"}]'
    if not isinstance(value, list) or not value:
        var_section.error("tenants", shape)
        return None
    problems_before = len(var_section.problems)
    tenants: dict[str, str | None] = {}
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            var_section.error(f"tenants.{index}", shape)
            continue
        tenant = Section(item, var_section.key_path(f"tenants.{index}"), var_section.source, var_section.problems)
        problems_in_entry = len(var_section.problems)
        tenant_id = tenant.string("id", "").strip()
        name = tenant.string("name", "").strip() or None
        tenant.finish()
        if len(var_section.problems) > problems_in_entry:
            continue
        if not tenant_id:
            tenant.error("id", "is required: the tenant's Directory (tenant) ID")
        elif tenant_id in tenants:
            tenant.error("id", f"tenant {tenant_id} is listed twice")
        else:
            tenants[tenant_id] = name
    return tenants if len(var_section.problems) == problems_before else None






MODULE_TYPE = O365Module()
