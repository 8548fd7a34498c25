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

Its options (`normalize`, `preserve_original_event`, `tenant_names`) are
declared in `SETTINGS`, which the README's table is rendered from.
"""

from __future__ import annotations

from forwarder.modules.o365_ecs import normalize
from forwarder.pipeline.client import Processor
from forwarder.pipeline.event import Event
from forwarder.schema.declared import BOOLEAN, Setting, ValueType, read_settings
from forwarder.schema.section import Section


def _read_tenant_names(section: Section, key: str, setting: Setting, default: object) -> dict[str, str]:
    """Tenant id → name; a value that is not a name is reported under `tenant_names.<id>`."""
    names: dict[str, str] = {}
    for tenant, name in section.mapping(key, {}).items():
        if isinstance(name, (dict, list)) or name is None:
            section.error(f"{key}.{tenant}", "expected the tenant's name, e.g. contoso.onmicrosoft.com")
        else:
            names[str(tenant)] = str(name)
    return names


TENANT_NAMES = ValueType("mapping of tenant id to name", _read_tenant_names)
SETTINGS = (
    Setting("normalize", BOOLEAN, True, "map each audit record onto ECS; `false` keeps the input's event (the raw "
            "record in `message`)"),
    Setting("preserve_original_event", BOOLEAN, False, "copy the raw record (`message`) to `event.original`"),
    Setting("tenant_names", TENANT_NAMES, None, "tenant id → name, written as `organization.name` of that tenant's "
            "records"),
)


def build_o365_ecs(options: Section) -> Processor:
    values = read_settings(options, SETTINGS)
    return o365_ecs_processor(
        normalize_records=values["normalize"],
        preserve_original_event=values["preserve_original_event"],
        tenant_names=values["tenant_names"],
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

