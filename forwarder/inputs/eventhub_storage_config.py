"""Where the `azure-eventhub` input keeps its checkpoints, from its storage settings.

A storage account (Filebeat's account + key, or our whole connection string)
gives a blob checkpoint store shared by every forwarder using the container
and consumer group; none keeps the checkpoints in this forwarder's registry.
Kept apart from the other settings because the rules (which of the three
keys go together, the container Azure accepts, the storage endpoint of each
cloud) are a subject of their own. The values are secrets: no message here
contains them.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from forwarder.schema.declared import SettingValues

# Azure Resource Manager endpoint of each cloud → the storage endpoint suffix of that cloud.
STORAGE_SUFFIXES = {
    "management.azure.com": "core.windows.net",
    "management.usgovcloudapi.net": "core.usgovcloudapi.net",
    "management.chinacloudapi.cn": "core.chinacloudapi.cn",
}
PUBLIC_STORAGE_SUFFIX = "core.windows.net"
_CONTAINER_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")


def default_container(eventhub: str, filesets: list[str]) -> str:
    """Filebeat's container name: `filebeat-<fileset>-<eventhub>` for a module fileset, else `filebeat-<eventhub>`.

    Lower-cased, with `_` and `.` as `-`, so a hub name with capitals does not
    make the default one Azure refuses.
    """
    parts = ["filebeat", *filesets[:1], eventhub]
    name = re.sub(r"[_.]", "-", "-".join(parts).lower())
    return re.sub(r"-{2,}", "-", name).strip("-")


def blob_store_connection_string(values: SettingValues, account: str | None, suffix: str) -> str | None:
    """The blob checkpoint store: account + key (Filebeat's) or a whole connection string (ours); None = registry."""
    key = values["storage_account_key"]
    given = values["storage_account_connection_string"]
    if given is not None:
        if key is not None:
            values.error("storage_account_key", "give either storage_account_key or "
                                                "storage_account_connection_string, not both")
        if account is not None:
            named = _connection_fields(given).get("accountname")
            if named is not None and named != account:
                values.error("storage_account", f"is {account!r} but storage_account_connection_string is for "
                                                f"account {named!r}")
        if not _looks_like_storage_connection_string(given):
            values.error("storage_account_connection_string",
                         "is not a storage connection string (expected DefaultEndpointsProtocol=https;"
                         "AccountName=<account>;AccountKey=<key>;EndpointSuffix=core.windows.net)")
        return given
    if account is not None:
        if key is None:
            values.error("storage_account_key", f"is required with storage_account {account!r} "
                                                "(Access keys > key1 > Key), or give "
                                                "storage_account_connection_string instead")
            return None
        return f"DefaultEndpointsProtocol=https;AccountName={account};AccountKey={key};EndpointSuffix={suffix}"
    if key is not None:
        values.error("storage_account", "is required with storage_account_key: the storage account's name")
    return None


def checkpoint_container(values: SettingValues, storage_connection_string: str | None, eventhub: str,
               filesets: list[str]) -> str | None:
    """The checkpoint container: the one written (`_` as `-`) or Filebeat's default name; None without an account."""
    written = (values["storage_account_container"] or "").strip()
    if storage_connection_string is None:
        if written:
            values.error("storage_account_container", "needs a storage account (storage_account and "
                                                      "storage_account_key, or storage_account_connection_string)")
        return None
    if not written and not eventhub:
        return None
    name = written.replace("_", "-") if written else default_container(eventhub, filesets)
    problem = _container_problem(name)
    if problem is not None:
        hint = "" if written else " (the default name: set storage_account_container to a shorter one)"
        values.error("storage_account_container", f"{name!r} is not a valid container name: {problem}{hint}")
    return name


def _container_problem(name: str) -> str | None:
    if not 3 <= len(name) <= 63:
        return f"it must be 3 to 63 characters long (it has {len(name)})"
    if "--" in name:
        return "it must not contain two hyphens in a row"
    if not _CONTAINER_NAME.match(name):
        return "only lowercase letters, digits and hyphens, starting and ending with a letter or digit"
    return None


def storage_suffix(values: SettingValues) -> str:
    """The storage endpoint suffix of the cloud named by Filebeat's `resource_manager_endpoint`."""
    value = (values["resource_manager_endpoint"] or "").strip()
    if not value:
        return PUBLIC_STORAGE_SUFFIX
    host = (urlsplit(value if "://" in value else f"https://{value}").hostname or "").lower()
    suffix = STORAGE_SUFFIXES.get(host)
    if suffix is None:
        known = ", ".join(f"https://{host}/" for host in STORAGE_SUFFIXES)
        values.error("resource_manager_endpoint", f"unknown Azure cloud {value!r} (known: {known}); for "
                                                  "another cloud give storage_account_connection_string")
        return PUBLIC_STORAGE_SUFFIX
    return suffix


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
