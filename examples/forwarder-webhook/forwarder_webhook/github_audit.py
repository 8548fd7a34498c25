"""The `github_audit` module: GitHub audit-log events posted to a `webhook` input, mapped by `github_audit_ecs`.

A module holds no I/O: it turns `var.*` into a `webhook` input config (GitHub's
own signature header and delivery id filled in) and names the processor that
maps each record, so the input stays a plain HTTP receiver any module can use.
"""

from __future__ import annotations

from forwarder.modules.base import FilesetInput, read_vars
from forwarder.schema.section import Section
from forwarder_webhook.github_audit_ecs import github_audit_ecs

VARS = ("listen_address", "listen_port", "url", "secret", "preserve_original_event")


class GitHubAuditModule:
    name = "github_audit"

    def expand(self, entry: Section) -> list[FilesetInput]:
        audit = entry.section("audit")
        enabled = audit.boolean("enabled", True)
        var_section = audit.section("var")
        settings = read_vars(var_section, VARS)
        audit.finish()
        entry.finish()
        if not enabled:
            return []
        if "secret" not in settings:
            var_section.error("secret", "is required: the webhook's secret, which GitHub signs each delivery with")
            return []
        data = {
            "type": "webhook",
            "listen_address": settings.get("listen_address", "127.0.0.1"),
            "listen_port": settings.get("listen_port", 9009),
            "url": settings.get("url", "/github/audit"),
            "hmac": {"header": "X-Hub-Signature-256", "key": settings["secret"], "type": "sha256",
                     "prefix": "sha256="},
            "id_header": "X-GitHub-Delivery",
        }
        return [FilesetInput(
            input_id="github_audit-audit",
            section=Section(data, var_section.path, entry.source, entry.problems),
            module_fields={"event": {"module": "github_audit", "dataset": "github_audit.audit"},
                           "fileset": {"name": "audit"}, "service": {"type": "github"}},
            processors=[github_audit_ecs(preserve_original_event=settings.get("preserve_original_event") is True)],
        )]


MODULE_TYPE = GitHubAuditModule()
