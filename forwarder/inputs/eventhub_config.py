"""The settings of the `azure-eventhub` input: Filebeat's azure-eventhub keys plus ours.

Parsed apart from the consumer loop so the `azure` module and `forwarder test
config` validate a file without touching the network: a connection string
for another hub, a container name Azure would refuse, or a sovereign cloud
we cannot map is reported against the key written, before any AMQP link is
opened. Connection strings and account keys are secrets: no message here
ever contains them. `SETTINGS` is also the source of the README's table.

Checkpoints go to a storage account container when one is configured (the
partitions are then shared by every forwarder using that container and
consumer group), otherwise to our registry, with this forwarder owning all
partitions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from azure.eventhub import parse_connection_string

from forwarder.azure_eventhub import AZURE_FILESETS, DEFAULT_CONSUMER_GROUP
from forwarder.inputs.eventhub_decoder import (
    LEGACY_SANITIZE_OPTIONS,
    SANITIZER_TYPES,
    Sanitizer,
    replace_all_sanitizer,
)
from forwarder.inputs.eventhub_storage_config import blob_store_connection_string, checkpoint_container, storage_suffix
from forwarder.schema.declared import (
    BOOLEAN,
    DURATION,
    INTEGER,
    STRING,
    STRINGS,
    Setting,
    SettingValues,
    ValueType,
    read_settings,
    section_list,
)
from forwarder.schema.section import Section

START_POSITIONS = ("earliest", "latest")
TRANSPORTS = ("amqp", "websocket")


def _read_connection_string(section: Section, key: str, setting: Setting, default: Any) -> str | None:
    """The namespace's connection string, stripped; never echoed in an error."""
    value = section.raw(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        section.error(key, "is required: the Event Hubs namespace's connection string "
                           "(Shared access policies > Connection string-primary key)")
        return None
    if not isinstance(value, str):
        section.error(key, "expected a string")
        return None
    return value.strip()


def _read_secret_text(section: Section, key: str, setting: Setting, default: Any) -> str | None:
    """An optional secret's text, stripped; written but empty is a mistake (an unset variable), never echoed."""
    value = section.raw(key)
    if value is None:
        return None
    if isinstance(value, (dict, list, bool)):
        section.error(key, "expected a string (the value is not shown: it is a secret)")
        return None
    text = str(value).strip()
    if not text:
        section.error(key, "is empty (is the environment variable or keystore entry set?)")
        return None
    return text


CONNECTION_STRING = ValueType("string", _read_connection_string)
SECRET_TEXT = ValueType("string", _read_secret_text)
SANITIZER_SETTINGS = (
    Setting("type", STRING, None, "the repair", choices=SANITIZER_TYPES),
    Setting("spec.pattern", STRING, "", "replace_all: a regular expression"),
    Setting("spec.replacement", STRING, "", "replace_all: its replacement (`$1` or `\\1` for a group)"),
)

BALANCING_INTERVAL = Setting("processor_update_interval", DURATION, "10s", "how often partitions are balanced "
                             "between the forwarders sharing a container; at least 1s")
SETTINGS = (
    Setting("eventhub", STRING, "", "the event hub the diagnostic setting streams to", doc_default="required"),
    Setting("connection_string", CONNECTION_STRING, None, "the namespace's (or the hub's) connection string, a "
            "policy with Listen; keep it in the keystore. If it has an `EntityPath`, it must be `eventhub`",
            secret=True, doc_default="required"),
    Setting("consumer_group", STRING, DEFAULT_CONSUMER_GROUP, "give the forwarder its own consumer group; Event "
            "Hubs allows 5 readers per partition and group"),
    Setting("auth_type", STRING, "connection_string", "only `connection_string` is supported"),
    Setting("storage_account", STRING, None, "checkpoints in this storage account (with `storage_account_key`)"),
    Setting("storage_account_key", SECRET_TEXT, None, "its access key; keep it in the keystore", secret=True),
    Setting("storage_account_connection_string", SECRET_TEXT, None, "instead of the two above: a whole storage "
            "connection string (private endpoint, other cloud, `UseDevelopmentStorage=true` for Azurite)",
            secret=True),
    Setting("resource_manager_endpoint", STRING, None, "the storage account's cloud: "
            "`https://management.usgovcloudapi.net/` or `https://management.chinacloudapi.cn/` pick their storage "
            "endpoints", doc_default="`https://management.azure.com/`"),
    Setting("storage_account_container", STRING, None, "blob container of the checkpoints; `_` becomes `-`; 3–63 "
            "lowercase letters, digits and single hyphens", doc_default="`filebeat-<fileset>-<eventhub>` "
            "(alone: `filebeat-<eventhub>`)"),
    Setting("migrate_checkpoint", BOOLEAN, True, "with a storage account: take over Filebeat's v1 checkpoint blobs "
            "(one JSON blob per partition, named by its id, in the same container) for partitions that have no "
            "current checkpoint, so a switch from Filebeat's older processor does not re-read the hub's retention"),
    Setting("start_position", STRING, None, "where a partition without a checkpoint begins: `earliest` (everything "
            "the hub retains) or `latest`", choices=START_POSITIONS, doc_default="`earliest`"),
    Setting("processor_start_position", STRING, None, "Filebeat's name for `start_position`",
            choices=START_POSITIONS, doc_default="`earliest`"),
    BALANCING_INTERVAL,
    Setting("partition_ownership_expiration_interval", DURATION, None, "how long a silent forwarder keeps its "
            "partitions before another takes them over; longer than `processor_update_interval`",
            doc_default="6 × `processor_update_interval`"),
    Setting("partition_receive_count", INTEGER, 100, "most messages handed over per partition at a time", minimum=1),
    Setting("partition_receive_timeout", DURATION, "5s", "longest wait for that many before handing over what "
            "arrived", positive=True),
    Setting("prefetch", INTEGER, 300, "messages the client asks the hub for ahead of processing, per partition "
            "(see latency below)", minimum=1),
    Setting("transport", STRING, "amqp", "`websocket`: AMQP over port 443, for networks that block 5671",
            choices=TRANSPORTS),
    Setting("sanitizers", section_list("list of sanitizers", SANITIZER_SETTINGS), [], "repairs for invalid JSON, in "
            "order: `new_lines` (drops raw line breaks), `single_quotes` (`'` outside double-quoted strings becomes "
            "`\"`), `replace_all` with `spec: {pattern, replacement}` (a regular expression; `$1` or `\\1` in the "
            "replacement)"),
    Setting("sanitize_options", STRINGS, [], "Filebeat's older spelling: `NEW_LINES`, `SINGLE_QUOTES`"),
    Setting("filesets", STRINGS, [], "the filesets this consumer feeds (the `azure` module sets them): records of "
            "other categories are counted as unexpected, a body that does not parse gets the first one's dataset, "
            "which also names the default container; empty: every category is expected", doc_default="none"),
    Setting("normalize", BOOLEAN, True, "map each record to ECS (`azure_ecs`); `false` sends the raw record, and the "
            "module names Filebeat's ingest pipeline (`filebeat-<version>-azure-<fileset>-pipeline`) in "
            "`@metadata.pipeline`"),
    Setting("preserve_original_event", BOOLEAN, False, "also keep the raw record in `event.original`"),
    Setting("processor_version", STRING, "v2", "Filebeat's checkpoint layout; ours is always the current Azure SDKs' "
            "(Filebeat's `v2`)", choices=("v1", "v2")),
)


@dataclass
class EventHubConfig:
    eventhub: str
    connection_string: str = field(repr=False)
    fully_qualified_namespace: str
    consumer_group: str
    storage_account: str | None
    storage_connection_string: str | None = field(repr=False)
    """The blob checkpoint store's connection string; None = checkpoints in our registry."""
    storage_container: str | None
    storage_endpoint_suffix: str
    sanitizers: list[Sanitizer]
    start_position: str
    load_balancing_interval: float
    partition_ownership_expiration_interval: float
    prefetch: int
    max_batch_size: int
    max_wait_time: float
    transport: str
    migrate_checkpoint: bool
    normalize: bool
    preserve_original_event: bool
    filesets: list[str]

    @property
    def uses_blob_checkpoints(self) -> bool:
        return self.storage_connection_string is not None


def parse_config(section: Section) -> EventHubConfig:
    values = read_settings(section, SETTINGS)
    eventhub = values["eventhub"].strip()
    if not eventhub:
        values.error("eventhub", "is required: the name of the event hub the diagnostic setting streams to")
    namespace = _namespace(values, eventhub)
    if values["auth_type"] != "connection_string":
        values.error("auth_type", f"only connection_string is supported (got {values['auth_type']!r})")
    filesets = _filesets(values)
    sanitizers = _sanitizers(values)
    start_position = _start_position(values)
    interval, expiry = _balancing(values)
    account = (values["storage_account"] or "").strip() or None
    suffix = storage_suffix(values)
    blob_store = blob_store_connection_string(values, account, suffix)
    return EventHubConfig(
        eventhub=eventhub,
        connection_string=values["connection_string"] or "",
        fully_qualified_namespace=namespace,
        consumer_group=values["consumer_group"].strip() or DEFAULT_CONSUMER_GROUP,
        storage_account=account,
        storage_connection_string=blob_store,
        storage_container=checkpoint_container(values, blob_store, eventhub, filesets),
        storage_endpoint_suffix=suffix,
        sanitizers=sanitizers,
        start_position=start_position,
        load_balancing_interval=interval,
        partition_ownership_expiration_interval=expiry,
        prefetch=values["prefetch"],
        max_batch_size=values["partition_receive_count"],
        max_wait_time=values["partition_receive_timeout"],
        transport=values["transport"],
        migrate_checkpoint=values["migrate_checkpoint"],
        normalize=values["normalize"],
        preserve_original_event=values["preserve_original_event"],
        filesets=filesets,
    )


def default_id(config: EventHubConfig) -> str:
    return f"azure-eventhub-{config.fully_qualified_namespace}-{config.eventhub}-{config.consumer_group}"


def _namespace(values: SettingValues, eventhub: str) -> str:
    """The namespace host of the connection string, which must not name another hub; "" when it has none."""
    connection_string = values["connection_string"]
    if connection_string is None:
        return ""
    try:
        properties = parse_connection_string(connection_string)
    except (ValueError, TypeError, AttributeError):
        values.error("connection_string", "is not an Event Hubs connection string (expected "
                                          "Endpoint=sb://<namespace>.servicebus.windows.net/;"
                                          "SharedAccessKeyName=<policy>;SharedAccessKey=<key>)")
        return ""
    entity = properties.eventhub_name
    if entity and eventhub and entity != eventhub:
        values.error("connection_string", f"is for event hub {entity!r} (its EntityPath) but eventhub is "
                                          f"{eventhub!r}: use the connection string of {eventhub!r} or of "
                                          "its namespace")
    return properties.fully_qualified_namespace


def _filesets(values: SettingValues) -> list[str]:
    names = list(dict.fromkeys(values["filesets"]))
    for name in names:
        if name not in AZURE_FILESETS:
            values.error("filesets", f"unknown fileset {name!r} (known: {', '.join(AZURE_FILESETS)})")
    return [name for name in names if name in AZURE_FILESETS]


def _sanitizers(values: SettingValues) -> list[Sanitizer]:
    sanitizers: list[Sanitizer] = []
    for option in values["sanitize_options"]:
        kind = LEGACY_SANITIZE_OPTIONS.get(option.upper())
        if kind is None:
            values.error("sanitize_options", f"unknown option {option!r} (known: NEW_LINES, SINGLE_QUOTES)")
        else:
            sanitizers.append(Sanitizer(kind))
    for item in values["sanitizers"]:
        kind = item["type"]
        if kind is None and "type" not in item.section().data:
            item.error("type", f"is required (one of {', '.join(SANITIZER_TYPES)})")
        elif kind == "replace_all":
            sanitizer = _replace_all(item)
            if sanitizer is not None:
                sanitizers.append(sanitizer)
        elif kind is not None:
            if item.section("spec").data:
                item.error("spec", f"{kind} takes no spec")
            sanitizers.append(Sanitizer(kind))
    return sanitizers


def _replace_all(item: SettingValues) -> Sanitizer | None:
    if not item["spec.pattern"]:
        item.error("spec.pattern", "is required for replace_all: a regular expression")
        return None
    try:
        return replace_all_sanitizer(item["spec.pattern"], item["spec.replacement"])
    except re.error as error:
        item.error("spec.pattern", f"is not a valid regular expression: {error}")
        return None


def _start_position(values: SettingValues) -> str:
    """`start_position`, or Filebeat's `processor_start_position`; where to begin a partition with no checkpoint."""
    ours, filebeats = values["start_position"], values["processor_start_position"]
    if ours is not None and filebeats is not None and ours != filebeats:
        values.error("start_position", f"says {ours} but processor_start_position says {filebeats}: keep one")
    return ours or filebeats or "earliest"


def _balancing(values: SettingValues) -> tuple[float, float]:
    """(balancing interval, ownership expiry): the expiry must outlast a balancing round."""
    interval = values["processor_update_interval"]
    if interval < 1:
        values.error("processor_update_interval", "must be at least 1s")
        interval = BALANCING_INTERVAL.default_value
    expiry = values["partition_ownership_expiration_interval"]
    if expiry is None:
        return interval, 6 * interval
    if expiry <= interval:
        values.error("partition_ownership_expiration_interval",
                     f"must be longer than processor_update_interval ({interval:g}s), or every partition "
                     "would change hands at each balancing round")
    return interval, expiry
