"""The settings of the `azure-eventhub` input: Filebeat's azure-eventhub keys plus ours.

Parsed apart from the consumer loop so the `azure` module and `forwarder test
config` validate a file without touching the network: a connection string
for another hub, a container name Azure would refuse, or a sovereign cloud
we cannot map is reported against the key written, before any AMQP link is
opened. Connection strings and account keys are secrets: no message here
ever contains them.

Checkpoints go to a storage account container when one is configured (the
partitions are then shared by every forwarder using that container and
consumer group), otherwise to our registry, with this forwarder owning all
partitions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from azure.eventhub import parse_connection_string

from forwarder.azure_eventhub import AZURE_FILESETS, DEFAULT_CONSUMER_GROUP
from forwarder.inputs.eventhub_decoder import (
    LEGACY_SANITIZE_OPTIONS,
    SANITIZER_TYPES,
    Sanitizer,
    replace_all_sanitizer,
)
from forwarder.schema.section import Section

START_POSITIONS = ("earliest", "latest")
TRANSPORTS = ("amqp", "websocket")
# Azure Resource Manager endpoint of each cloud → the storage endpoint suffix of that cloud.
STORAGE_SUFFIXES = {
    "management.azure.com": "core.windows.net",
    "management.usgovcloudapi.net": "core.usgovcloudapi.net",
    "management.chinacloudapi.cn": "core.chinacloudapi.cn",
}
PUBLIC_STORAGE_SUFFIX = "core.windows.net"
_CONTAINER_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")


@dataclass
class EventHubConfig:
    eventhub: str
    connection_string: str = field(repr=False)
    fully_qualified_namespace: str
    consumer_group: str = DEFAULT_CONSUMER_GROUP
    storage_account: str | None = None
    storage_connection_string: str | None = field(default=None, repr=False)
    """The blob checkpoint store's connection string; None = checkpoints in our registry."""
    storage_container: str | None = None
    storage_endpoint_suffix: str = PUBLIC_STORAGE_SUFFIX
    sanitizers: list[Sanitizer] = field(default_factory=list)
    start_position: str = "earliest"
    load_balancing_interval: float = 10.0
    partition_ownership_expiration_interval: float = 60.0
    prefetch: int = 300
    max_batch_size: int = 100
    max_wait_time: float = 5.0
    transport: str = "amqp"
    migrate_checkpoint: bool = True
    normalize: bool = True
    preserve_original_event: bool = False
    filesets: list[str] = field(default_factory=list)

    @property
    def uses_blob_checkpoints(self) -> bool:
        return self.storage_connection_string is not None


def default_container(eventhub: str, filesets: list[str]) -> str:
    """Filebeat's container name: `filebeat-<fileset>-<eventhub>` for a module fileset, else `filebeat-<eventhub>`.

    Lower-cased, with `_` and `.` as `-`, so a hub name with capitals does not
    make the default one Azure refuses.
    """
    parts = ["filebeat", *filesets[:1], eventhub]
    name = re.sub(r"[_.]", "-", "-".join(parts).lower())
    return re.sub(r"-{2,}", "-", name).strip("-")


def parse_config(section: Section) -> EventHubConfig:
    eventhub = section.string("eventhub", "").strip()
    if not eventhub:
        section.error("eventhub", "is required: the name of the event hub the diagnostic setting streams to")
    connection_string, namespace = _connection_string(section, eventhub)
    consumer_group = section.string("consumer_group", "").strip() or DEFAULT_CONSUMER_GROUP
    auth_type = section.string("auth_type", "connection_string")
    if auth_type != "connection_string":
        section.error("auth_type", f"only connection_string is supported (got {auth_type!r})")
    filesets = _filesets(section)
    config = EventHubConfig(
        eventhub=eventhub,
        connection_string=connection_string,
        fully_qualified_namespace=namespace,
        consumer_group=consumer_group,
        sanitizers=_sanitizers(section),
        start_position=_start_position(section),
        prefetch=section.integer("prefetch", 300, minimum=1),
        max_batch_size=section.integer("partition_receive_count", 100, minimum=1),
        max_wait_time=_positive_duration(section, "partition_receive_timeout", 5.0),
        transport=section.string("transport", "amqp", choices=TRANSPORTS),
        migrate_checkpoint=section.boolean("migrate_checkpoint", True),
        normalize=section.boolean("normalize", True),
        preserve_original_event=section.boolean("preserve_original_event", False),
        filesets=filesets,
    )
    _balancing(section, config)
    _storage(section, config)
    # Filebeat picks its checkpoint layout with this; ours is always the current SDKs' (Filebeat's v2).
    section.string("processor_version", "v2", choices=("v1", "v2"))
    return config


def default_id(config: EventHubConfig) -> str:
    return f"azure-eventhub-{config.fully_qualified_namespace}-{config.eventhub}-{config.consumer_group}"


def _connection_string(section: Section, eventhub: str) -> tuple[str, str]:
    """The connection string and its namespace host; never echoed in an error."""
    value = section.raw("connection_string")
    if value is None or (isinstance(value, str) and not value.strip()):
        section.error("connection_string", "is required: the Event Hubs namespace's connection string "
                                           "(Shared access policies > Connection string-primary key)")
        return "", ""
    if not isinstance(value, str):
        section.error("connection_string", "expected a string")
        return "", ""
    value = value.strip()
    try:
        properties = parse_connection_string(value)
    except (ValueError, TypeError, AttributeError):
        section.error("connection_string", "is not an Event Hubs connection string (expected "
                                           "Endpoint=sb://<namespace>.servicebus.windows.net/;"
                                           "SharedAccessKeyName=<policy>;SharedAccessKey=<key>)")
        return value, ""
    entity = properties.eventhub_name
    if entity and eventhub and entity != eventhub:
        section.error("connection_string", f"is for event hub {entity!r} (its EntityPath) but eventhub is "
                                           f"{eventhub!r}: use the connection string of {eventhub!r} or of "
                                           "its namespace")
    return value, properties.fully_qualified_namespace


def _filesets(section: Section) -> list[str]:
    names = list(dict.fromkeys(section.string_list("filesets", [])))
    for name in names:
        if name not in AZURE_FILESETS:
            section.error("filesets", f"unknown fileset {name!r} (known: {', '.join(AZURE_FILESETS)})")
    return [name for name in names if name in AZURE_FILESETS]


def _sanitizers(section: Section) -> list[Sanitizer]:
    sanitizers: list[Sanitizer] = []
    for option in section.string_list("sanitize_options", []):
        kind = LEGACY_SANITIZE_OPTIONS.get(option.upper())
        if kind is None:
            section.error("sanitize_options", f"unknown option {option!r} (known: NEW_LINES, SINGLE_QUOTES)")
        else:
            sanitizers.append(Sanitizer(kind))
    for item in section.sections("sanitizers"):
        kind = item.string("type", None, choices=SANITIZER_TYPES)
        spec = item.section("spec")
        if kind is None and "type" not in item.data:
            item.error("type", f"is required (one of {', '.join(SANITIZER_TYPES)})")
        elif kind == "replace_all":
            sanitizer = _replace_all(spec)
            if sanitizer is not None:
                sanitizers.append(sanitizer)
        elif kind is not None:
            if spec.data:
                item.error("spec", f"{kind} takes no spec")
            spec.ignore(*spec.data)
            sanitizers.append(Sanitizer(kind))
        spec.finish()
        item.finish()
    return sanitizers


def _replace_all(spec: Section) -> Sanitizer | None:
    pattern = spec.string("pattern", "")
    replacement = spec.string("replacement", "")
    if not pattern:
        spec.error("pattern", "is required for replace_all: a regular expression")
        return None
    try:
        return replace_all_sanitizer(pattern, replacement)
    except re.error as error:
        spec.error("pattern", f"is not a valid regular expression: {error}")
        return None


def _start_position(section: Section) -> str:
    """`start_position`, or Filebeat's `processor_start_position`; where to begin a partition with no checkpoint."""
    ours = section.string("start_position", None, choices=START_POSITIONS)
    filebeats = section.string("processor_start_position", None, choices=START_POSITIONS)
    if ours is not None and filebeats is not None and ours != filebeats:
        section.error("start_position", f"says {ours} but processor_start_position says {filebeats}: keep one")
    return ours or filebeats or "earliest"


def _balancing(section: Section, config: EventHubConfig) -> None:
    interval = section.duration("processor_update_interval", 10.0)
    if interval < 1:
        section.error("processor_update_interval", "must be at least 1s")
        interval = 10.0
    expiry = section.duration("partition_ownership_expiration_interval", None)
    if expiry is None:
        expiry = 6 * interval
    elif expiry <= interval:
        section.error("partition_ownership_expiration_interval",
                      f"must be longer than processor_update_interval ({interval:g}s), or every partition "
                      "would change hands at each balancing round")
    config.load_balancing_interval = interval
    config.partition_ownership_expiration_interval = expiry


def _storage(section: Section, config: EventHubConfig) -> None:
    """Blob checkpoint store settings: account + key (Filebeat's) or a whole connection string (ours)."""
    account = section.string("storage_account", "").strip() or None
    key = _secret_text(section, "storage_account_key")
    given = _secret_text(section, "storage_account_connection_string")
    suffix = _storage_suffix(section)
    container_value = section.string("storage_account_container", "").strip()
    config.storage_account = account
    config.storage_endpoint_suffix = suffix
    if given is not None:
        if key is not None:
            section.error("storage_account_key", "give either storage_account_key or "
                                                 "storage_account_connection_string, not both")
        if account is not None:
            named = _connection_fields(given).get("accountname")
            if named is not None and named != account:
                section.error("storage_account", f"is {account!r} but storage_account_connection_string is for "
                                                 f"account {named!r}")
        if not _looks_like_storage_connection_string(given):
            section.error("storage_account_connection_string",
                          "is not a storage connection string (expected DefaultEndpointsProtocol=https;"
                          "AccountName=<account>;AccountKey=<key>;EndpointSuffix=core.windows.net)")
        config.storage_connection_string = given
    elif account is not None:
        if key is None:
            section.error("storage_account_key", f"is required with storage_account {account!r} "
                                                 "(Access keys > key1 > Key), or give "
                                                 "storage_account_connection_string instead")
        else:
            config.storage_connection_string = (
                f"DefaultEndpointsProtocol=https;AccountName={account};AccountKey={key};EndpointSuffix={suffix}"
            )
    elif key is not None:
        section.error("storage_account", "is required with storage_account_key: the storage account's name")
    if config.storage_connection_string is None:
        if container_value:
            section.error("storage_account_container", "needs a storage account (storage_account and "
                                                       "storage_account_key, or storage_account_connection_string)")
        return
    _container(section, config, container_value)


def _container(section: Section, config: EventHubConfig, written: str) -> None:
    if not written and not config.eventhub:
        return
    name = written.replace("_", "-") if written else default_container(config.eventhub, config.filesets)
    problem = _container_problem(name)
    if problem is not None:
        hint = "" if written else " (the default name: set storage_account_container to a shorter one)"
        section.error("storage_account_container", f"{name!r} is not a valid container name: {problem}{hint}")
    config.storage_container = name


def _container_problem(name: str) -> str | None:
    if not 3 <= len(name) <= 63:
        return f"it must be 3 to 63 characters long (it has {len(name)})"
    if "--" in name:
        return "it must not contain two hyphens in a row"
    if not _CONTAINER_NAME.match(name):
        return "only lowercase letters, digits and hyphens, starting and ending with a letter or digit"
    return None


def _storage_suffix(section: Section) -> str:
    """The storage endpoint suffix of the cloud named by Filebeat's `resource_manager_endpoint`."""
    value = section.string("resource_manager_endpoint", "").strip()
    if not value:
        return PUBLIC_STORAGE_SUFFIX
    host = (urlsplit(value if "://" in value else f"https://{value}").hostname or "").lower()
    suffix = STORAGE_SUFFIXES.get(host)
    if suffix is None:
        known = ", ".join(f"https://{host}/" for host in STORAGE_SUFFIXES)
        section.error("resource_manager_endpoint", f"unknown Azure cloud {value!r} (known: {known}); for "
                                                   "another cloud give storage_account_connection_string")
        return PUBLIC_STORAGE_SUFFIX
    return suffix


def _secret_text(section: Section, key: str) -> str | None:
    """A secret setting's text; its value never appears in an error."""
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


def _connection_fields(connection_string: str) -> dict[str, str]:
    fields = {}
    for part in connection_string.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            fields[name.strip().lower()] = value.strip()
    return fields


def _looks_like_storage_connection_string(connection_string: str) -> bool:
    fields = _connection_fields(connection_string)
    if fields.get("usedevelopmentstorage", "").lower() == "true":
        return True
    has_credential = "accountkey" in fields or "sharedaccesssignature" in fields
    has_endpoint = "accountname" in fields or "blobendpoint" in fields
    return has_credential and has_endpoint


def _positive_duration(section: Section, key: str, default: float) -> float:
    value = section.duration(key, default)
    if value <= 0:
        section.error(key, "must be a positive duration")
        return default
    return value
