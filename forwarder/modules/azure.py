"""The `azure` module: Entra ID and Azure Monitor logs streamed into Event Hubs by diagnostic settings.

A Filebeat `modules.d/azure.yml` must load unchanged, so the filesets and
variables are Filebeat's (plus Entra ID filesets Filebeat only has as Elastic
Agent data streams), set module-wide or per fileset. Unlike Filebeat, filesets
that read the same hub (same namespace, hub and consumer group) share one
`azure-eventhub` consumer: a diagnostic setting often sends several categories
to one hub, and two consumers in one consumer group would fight over its
partitions. The consumer is told which filesets it feeds (`filesets`), and
its `azure_ecs` processor (azure_processor) routes each record by its
`category`, maps it and sets its dataset fields; only what every record shares
is in the module fields.
"""

from __future__ import annotations

from typing import Any

from forwarder.azure_eventhub import DEFAULT_CONSUMER_GROUP, connection_entity, event_hub_namespace
from forwarder.modules.azure_processor import AzureEcsProcessor, build_azure_ecs
from forwarder.modules.azure_routing import FILESETS
from forwarder.modules.base import FilesetInput, merge_vars, read_vars
from forwarder.schema.section import Section

INPUT_TYPE = "azure-eventhub"
# The hub a diagnostic setting creates for a category when it is not given one (Filebeat's defaults where it has
# the fileset). identity_protection spans four categories, thus four hubs: it must be told which one.
DEFAULT_EVENTHUBS: dict[str, str | None] = {
    "activitylogs": "insights-operational-logs",
    "platformlogs": None,
    "auditlogs": "insights-logs-auditlogs",
    "signinlogs": "insights-logs-signinlogs",
    "identity_protection": None,
    "provisioning": "insights-logs-provisioninglogs",
    "graphactivitylogs": "insights-logs-microsoftgraphactivitylogs",
}
VARS = (
    "eventhub", "consumer_group", "connection_string", "storage_account", "storage_account_key",
    "storage_account_container", "storage_account_connection_string", "resource_manager_endpoint",
    "start_position", "processor_start_position", "sanitizers", "sanitize_options", "normalize",
    "preserve_original_event", "processor_update_interval", "partition_ownership_expiration_interval",
    "transport", "tags",
)
# Events describe the cloud, not the collecting host: no host.* of ours is added (Filebeat's default too).
DEFAULT_TAGS = ["forwarded"]


class AzureModule:
    name = "azure"

    def expand(self, entry: Section) -> list[FilesetInput]:
        module_vars = read_vars(entry.section("var"), VARS)
        consumers: dict[tuple[str, str, str], list[tuple[str, dict[str, Any], Section]]] = {}
        for fileset in FILESETS:
            fileset_section = entry.section(fileset)
            enabled = fileset_section.boolean("enabled", False)
            var_section = fileset_section.section("var")
            settings = merge_vars(module_vars, read_vars(var_section, VARS))
            overrides = fileset_section.mapping("input", {})
            fileset_section.finish()
            if not enabled:
                continue
            data = _input_settings(fileset, settings, overrides, var_section)
            if data is None:
                continue
            connection_string = data.get("connection_string")
            namespace = event_hub_namespace(connection_string) if isinstance(connection_string, str) else None
            key = (namespace or str(connection_string), str(data["eventhub"]), str(data["consumer_group"]))
            consumers.setdefault(key, []).append((fileset, data, var_section))
        entry.finish()
        return [fileset_input for key, members in consumers.items()
                if (fileset_input := _consumer(key, members, entry)) is not None]


def _input_settings(fileset: str, settings: dict[str, Any], overrides: dict[str, Any],
                    var_section: Section) -> dict[str, Any] | None:
    """One fileset's `azure-eventhub` settings; None when its hub cannot be told (the problem is recorded)."""
    data = dict(settings)
    eventhub = data.get("eventhub")
    if eventhub is None or (isinstance(eventhub, str) and not eventhub.strip()):
        connection_string = data.get("connection_string")
        entity = connection_entity(connection_string) if isinstance(connection_string, str) else None
        eventhub = entity or DEFAULT_EVENTHUBS[fileset]
    if eventhub is None:
        var_section.error("eventhub", f"is required for {fileset}: the event hub its diagnostic setting streams "
                                      "to (or a connection string with EntityPath)")
        return None
    data["eventhub"] = eventhub
    # Written or not, `$Default` is the same consumer group: filesets must not differ by its spelling alone.
    data["consumer_group"] = data.get("consumer_group") or DEFAULT_CONSUMER_GROUP
    data.setdefault("tags", list(DEFAULT_TAGS))
    return merge_vars({**data, "type": INPUT_TYPE}, overrides)


def _consumer(key: tuple[str, str, str], members: list[tuple[str, dict[str, Any], Section]],
              entry: Section) -> FilesetInput | None:
    """The one input of the filesets that read the same hub; their settings must agree."""
    first_fileset, data, var_section = members[0]
    consistent = True
    for fileset, other, other_section in members[1:]:
        differing = sorted(name for name in set(data) | set(other) if data.get(name) != other.get(name))
        if differing:
            consistent = False
            other_section.error(differing[0], f"differs from {first_fileset}'s, but {fileset} and {first_fileset} "
                                              f"read the same event hub ({key[1]!r}, consumer group {key[2]!r}) and "
                                              "so share one consumer: give them the same value, or give one of "
                                              "them its own consumer group")
    if not consistent:
        return None
    namespace, eventhub, consumer_group = key
    filesets = [fileset for fileset, _, _ in members]
    return FilesetInput(
        input_id=f"azure-{namespace}-{eventhub}-{consumer_group}",
        section=Section({**data, "filesets": filesets}, var_section.path, entry.source, entry.problems),
        module_fields={"event": {"module": "azure"}, "service": {"type": "azure"}},
        processors=[_processor(filesets, data)],
    )


def _processor(filesets: list[str], data: dict[str, Any]) -> AzureEcsProcessor:
    """The consumer's `azure_ecs` processor, from the settings its input reads too.

    A bad `normalize` is reported once, by the input (whose spec it then drops), so the problems of this
    reading are not kept.
    """
    options = {key: data[key] for key in ("normalize", "preserve_original_event") if key in data}
    return build_azure_ecs(Section({**options, "filesets": filesets}, "", "", []))


MODULE_TYPE = AzureModule()
