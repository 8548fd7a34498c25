"""The microsoft module's `m365_defender_event` fileset: Defender XDR's Streaming API through an Event Hub.

Defender XDR streams Advanced Hunting rows into an event hub the site names,
as records of category `AdvancedHunting-<Table>`. The fileset reads that hub
with the `azure-eventhub` input and takes the `azure` module's variables
(`var.eventhub`, `var.consumer_group`, `var.connection_string`,
`var.storage_account*`, …), as Elastic's `m365_defender` `event` stream does.
Its records go through the same `azure_ecs` processor as the azure module's,
told to expect this fileset: routing (azure_routing) sends every
`AdvancedHunting-*` record here and maps it with microsoft_m365_event_ecs,
while a record of another category on the same hub (a diagnostic setting
sending Entra ID logs there too) still gets its azure fileset, logged once
and counted.

Defaults that differ from the azure module's: `var.eventhub` is required (the
hub is the site's choice), tags are `forwarded` and `m365_defender-event`, and
the checkpoint container, when a storage account is given, is Elastic's
`azure-eventhub-input-<eventhub>`.
"""

from __future__ import annotations

import re
from typing import Any

from forwarder.azure_eventhub import DEFAULT_CONSUMER_GROUP, event_hub_namespace
from forwarder.modules.azure import VARS
from forwarder.modules.azure_processor import AzureEcsProcessor
from forwarder.modules.azure_routing import ADVANCED_HUNTING_FILESET
from forwarder.modules.base import FilesetInput, merge_vars, read_vars
from forwarder.schema.section import Section

INPUT_TYPE = "azure-eventhub"
DEFAULT_TAGS = ["forwarded", "m365_defender-event"]
STORAGE_VARS = ("storage_account", "storage_account_connection_string")
MAPPING_VARS = ("normalize", "preserve_original_event")


def expand_m365_defender_event(fileset: Section, module_vars: dict[str, Any]) -> list[FilesetInput]:
    """The fileset's one `azure-eventhub` consumer (none when disabled or when its hub is not named)."""
    enabled = fileset.boolean("enabled", True)
    var_section = fileset.section("var")
    own_vars = read_vars(var_section, VARS)
    overrides = fileset.mapping("input", {})
    fileset.finish()
    if not enabled:
        return []
    # Module-wide vars are shared with the other filesets: only the ones this fileset knows apply here.
    settings = merge_vars({key: value for key, value in module_vars.items() if key in VARS}, own_vars)
    eventhub = settings.get("eventhub")
    if not isinstance(eventhub, str) or not eventhub.strip():
        var_section.error("eventhub", "is required for m365_defender_event: the event hub Defender XDR's "
                                      "Streaming API sends to")
        return []
    settings["consumer_group"] = settings.get("consumer_group") or DEFAULT_CONSUMER_GROUP
    settings.setdefault("tags", list(DEFAULT_TAGS))
    if any(settings.get(name) for name in STORAGE_VARS):
        settings.setdefault("storage_account_container", _default_container(eventhub))
    data = merge_vars({**settings, "type": INPUT_TYPE}, overrides)
    connection_string = data.get("connection_string")
    namespace = event_hub_namespace(connection_string) if isinstance(connection_string, str) else None
    mapping = Section({key: data[key] for key in MAPPING_VARS if key in data}, "", "", [])
    return [FilesetInput(
        input_id=f"microsoft-{ADVANCED_HUNTING_FILESET}-{namespace or ''}-{data['eventhub']}-{data['consumer_group']}",
        section=Section(data, var_section.path, var_section.source, var_section.problems),
        module_fields={"event": {"module": "microsoft"}, "service": {"type": "microsoft"}},
        # A bad `normalize` is reported once, by the input (which reads it too), so this reading keeps no problems.
        processors=[AzureEcsProcessor([ADVANCED_HUNTING_FILESET], mapping.boolean("normalize", True),
                                      mapping.boolean("preserve_original_event", False))],
    )]


def _default_container(eventhub: str) -> str:
    """Elastic's default checkpoint container, in the form Azure accepts (lower case, `_`/`.` as `-`)."""
    name = re.sub(r"[_.]", "-", f"azure-eventhub-input-{eventhub}".lower())
    return re.sub(r"-{2,}", "-", name).strip("-")
