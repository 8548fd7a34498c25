"""The `o365_ecs` processor: Office 365 audit records, as the `o365audit` input reads them, mapped onto ECS.

The `o365` module's `audit` fileset runs it first on every event, and an
`o365audit` input configured on its own names it as its standalone processor,
so both ship the same documents. The input hands over the event with the raw
record in `message` (and an `error` when `CreationTime` is unreadable), the
parsed record in `event.record` and the id of the tenant it was read from in
`event.record_kind`; this processor turns that into the ECS event:

    {"message": raw, **normalized fields, "error" (only when no time was found), event.original}

Key order is what the wire carries, so it is built in exactly that order. The
tenant comes from the input rather than from the record's `OrganizationId`
because the module's tenant list names the tenant that was polled, whatever
the record says.

Options: `normalize` (map onto ECS, default true), `preserve_original_event`
(copy the raw record to `event.original`, default false), `tenant_names`
(tenant id → name, for `organization.name`).
"""

from __future__ import annotations

from forwarder.modules.o365_ecs import normalize
from forwarder.pipeline.client import Processor
from forwarder.pipeline.event import Event
from forwarder.schema.section import Section


def build_o365_ecs(options: Section) -> Processor:
    return o365_ecs_processor(
        normalize_records=options.boolean("normalize", True),
        preserve_original_event=options.boolean("preserve_original_event", False),
        tenant_names=_tenant_names(options),
    )


def o365_ecs_processor(normalize_records: bool, preserve_original_event: bool,
                       tenant_names: dict[str, str]) -> Processor:
    """The processor for these settings (the module builds it directly from its variables)."""

    def o365_ecs(event: Event) -> Event:
        """Computes everything before changing the event: a record that makes the mapping raise is forwarded
        as the input made it (the pipeline's one error policy)."""
        record = event.record
        if type(record) is not dict:  # not an audit record: the input already marked it as a parse failure
            return event
        fields = event.fields
        message = fields["message"]
        timestamp = None
        if normalize_records:
            normalized, timestamp = normalize(record, tenant_names.get(event.record_kind or ""))
            mapped = {"message": message, **normalized}
            if timestamp is None and "error" in fields:
                mapped["error"] = fields["error"]
        else:
            mapped = fields
        if preserve_original_event:
            mapped.setdefault("event", {})["original"] = message
        event.fields = mapped
        if timestamp is not None:
            event.timestamp = timestamp
        return event

    return o365_ecs


def _tenant_names(options: Section) -> dict[str, str]:
    names: dict[str, str] = {}
    for tenant, name in options.mapping("tenant_names", {}).items():
        if isinstance(name, (dict, list)) or name is None:
            options.error(f"tenant_names.{tenant}", "expected the tenant's name, e.g. contoso.onmicrosoft.com")
        else:
            names[str(tenant)] = str(name)
    return names
