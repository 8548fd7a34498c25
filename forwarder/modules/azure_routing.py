"""Which `azure` fileset a diagnostic-settings record belongs to, from its `category`.

A diagnostic setting may send several categories to one event hub, so the
fileset cannot be a property of the consumer: it is read from each record.
Categories are matched case-insensitively because Azure services disagree on
casing (`SignInLogs`, `signinlogs`), and a few write the key as `Category`.

A consumer is told which filesets it feeds; a record whose fileset is not one
of them is still forwarded under its own fileset (nothing is dropped), and the
router says so the first time each category shows up, so the `azure_ecs`
processor can log it once and count the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from forwarder.azure_eventhub import AZURE_FILESETS

# Every fileset of the module, in the order the module renders them.
FILESETS = AZURE_FILESETS
# Records without a known category: the catch-all fileset.
FALLBACK_FILESET = "platformlogs"
# Defender XDR's Streaming API (`AdvancedHunting-<Table>` categories): the microsoft module's fileset, wherever the
# records arrive, so a hub shared with diagnostic settings does not turn them into platform logs.
ADVANCED_HUNTING_FILESET = "m365_defender_event"
ADVANCED_HUNTING_PREFIX = "advancedhunting-"
# Filesets of another module that this router sends records to: fileset → (event.module, event.dataset).
OTHER_MODULE_DATASETS = {ADVANCED_HUNTING_FILESET: ("microsoft", "m365_defender.event")}

_CATEGORY_FILESETS = {
    "signinlogs": "signinlogs",
    "noninteractiveusersigninlogs": "signinlogs",
    "serviceprincipalsigninlogs": "signinlogs",
    "managedidentitysigninlogs": "signinlogs",
    "auditlogs": "auditlogs",
    "provisioninglogs": "provisioning",
    "riskyusers": "identity_protection",
    "userriskevents": "identity_protection",
    "riskyserviceprincipals": "identity_protection",
    "serviceprincipalriskevents": "identity_protection",
    "microsoftgraphactivitylogs": "graphactivitylogs",
    # The Azure activity log's categories.
    "administrative": "activitylogs",
    "security": "activitylogs",
    "servicehealth": "activitylogs",
    "alert": "activitylogs",
    "recommendation": "activitylogs",
    "policy": "activitylogs",
    "autoscale": "activitylogs",
    "resourcehealth": "activitylogs",
}


def record_category(record: Any) -> str | None:
    """The record's `category` (or `Category`) when it is a non-empty string."""
    if type(record) is not dict:
        return None
    category = record.get("category")
    if category is None:
        category = record.get("Category")
    return category if type(category) is str and category else None


def fileset_for_category(category: Any) -> str:
    """The fileset of a category, case-insensitively; anything unknown (or not a string) is a platform log."""
    if type(category) is not str:
        return FALLBACK_FILESET
    lowered = category.lower()
    if lowered.startswith(ADVANCED_HUNTING_PREFIX):
        return ADVANCED_HUNTING_FILESET
    return _CATEGORY_FILESETS.get(lowered, FALLBACK_FILESET)


def module_and_dataset(fileset: str) -> tuple[str, str]:
    """A routed fileset's `event.module` and `event.dataset`: `azure.<fileset>` unless another module owns it."""
    return OTHER_MODULE_DATASETS.get(fileset, ("azure", f"azure.{fileset}"))


class Route(NamedTuple):
    fileset: str
    category: str | None
    expected: bool
    """False when the consumer was not configured for this fileset (the record is forwarded all the same)."""
    first_unexpected: bool
    """True for the first unexpected record of its category on this router: the moment to log it."""


class CategoryRouter:
    """Routes the records of one consumer and keeps count of those outside its filesets.

    With no filesets given (the input used on its own, outside the module) every
    category is expected. `unexpected` is replaced rather than changed in place
    when a category is added, because another thread (/stats) may be reading
    the previous one; `on_new_category` gets the new one, to show it there.
    """

    def __init__(self, filesets: Iterable[str] = (),
                 on_new_category: Callable[[dict[str, int]], None] | None = None) -> None:
        self.filesets = frozenset(filesets)
        self.unexpected: dict[str, int] = {}
        """Category (`"(none)"` when missing) → records seen whose fileset the consumer was not set up for."""
        self._on_new_category = on_new_category

    def route(self, record: Any) -> Route:
        category = record_category(record)
        fileset = fileset_for_category(category)
        if not self.filesets or fileset in self.filesets:
            return Route(fileset, category, True, False)
        key = category if category is not None else "(none)"
        seen = self.unexpected.get(key, 0)
        if seen:
            self.unexpected[key] = seen + 1
        else:
            self.unexpected = {**self.unexpected, key: 1}
            if self._on_new_category is not None:
                self._on_new_category(self.unexpected)
        return Route(fileset, category, False, seen == 0)
