"""`registered_domain`: the registered domain (eTLD+1), and optionally the eTLD and subdomain, of a host name.

The public suffix list is the snapshot shipped inside the `publicsuffixlist`
package (ICANN and private sections, as Go's publicsuffix uses): nothing is
fetched at run time, and updating the list is updating the package. A name
that is itself a public suffix (`co.uk`) or not a name at all is a failure,
unless `ignore_failure`.
"""

from __future__ import annotations

from functools import lru_cache

from publicsuffixlist import PublicSuffixList

from forwarder.pipeline.client import Processor
from forwarder.pipeline.event import Event
from forwarder.pipeline.field_path import MISSING, FieldError, FieldPath, UndoLog, put_field, roll_back
from forwarder.schema.declared import BOOLEAN, STRING, Setting, read_settings
from forwarder.schema.section import Section

REGISTERED_DOMAIN_SETTINGS = (
    Setting("field", STRING, doc="the field holding the host name (e.g. `dns.question.name`)"),
    Setting("target_field", STRING, doc="the field the registered domain is written to"),
    Setting("target_etld_field", STRING, "", "the field the effective top-level domain (`co.uk`) is written to"),
    Setting("target_subdomain_field", STRING, "", "the field the subdomain (`www`) is written to"),
    Setting("ignore_missing", BOOLEAN, False, "a missing `field` is not a failure"),
    Setting("ignore_failure", BOOLEAN, False, "a name that has no registered domain leaves the event as it is "
            "instead of failing it"),
)

_SUFFIXES = PublicSuffixList()


@lru_cache(maxsize=8192)
def split_domain(name: str) -> tuple[str, str, str] | None:
    """(registered domain, public suffix, subdomain) of a host name, or None when it has no registered domain."""
    host = name.strip().rstrip(".")
    lowered = host.lower()
    if not host or " " in host or ".." in host:
        return None
    registered = _SUFFIXES.privatesuffix(lowered)
    suffix = _SUFFIXES.publicsuffix(lowered)
    if not registered or not suffix:
        return None
    if len(lowered) == len(host):
        # The parts as written: the list is matched without regard to case; the parts keep the case written.
        registered, suffix = host[len(host) - len(registered):], host[len(host) - len(suffix):]
    subdomain = host[: len(host) - len(registered)].rstrip(".")
    return registered, suffix, subdomain


def build_registered_domain(options: Section) -> Processor:
    values = read_settings(options, REGISTERED_DOMAIN_SETTINGS)
    source = FieldPath(values["field"] or "")
    # (index into split_domain's result, field written)
    targets = [(0, FieldPath(values["target_field"] or ""))]
    if values["target_etld_field"]:
        targets.append((1, FieldPath(values["target_etld_field"])))
    if values["target_subdomain_field"]:
        targets.append((2, FieldPath(values["target_subdomain_field"])))
    ignore_missing, ignore_failure = values["ignore_missing"], values["ignore_failure"]

    def registered_domain(event: Event) -> Event:
        name = source.get(event)
        if name is MISSING:
            if ignore_missing or ignore_failure:
                return event
            raise FieldError(f"{source.name} not found")
        parts = split_domain(name) if isinstance(name, str) else None
        if parts is None:
            if ignore_failure:
                return event
            raise FieldError(f"failed to find the registered domain of {str(name)[:100]!r}")
        undo: UndoLog = []
        try:
            for index, target in targets:
                if parts[index] or index != 2:
                    put_field(event, target, parts[index], undo)
        except FieldError:
            roll_back(undo)
            if ignore_failure:
                return event
            raise
        return event

    return registered_domain
