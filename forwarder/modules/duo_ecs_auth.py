"""ECS fields of a Duo authentication log record (Admin API v2), as Elastic's cisco_duo `auth` pipeline maps it.

The mapping, in short: `event.outcome` is `success` only for `result:
success`; `event.reason` is Duo's reason; the access device (the browser or
system that asked for access) becomes `source.*` and `user_agent.*`, the Duo
user `user.*` and `source.user.*`; everything else stays under
`cisco_duo.auth.*`, with the device flags as `"true"`/`"false"` text and the
addresses split into IP and port. Elastic resolves `source.geo` with GeoIP at
ingest; Duo already resolved the location, so `source.geo` takes Duo's city,
state and country names (GeoIP at the receiver may still add to it).

This runs for every authentication record (tens of thousands a second in a
backfill), so it reads each key once, with plain `dict.get`.
"""

from __future__ import annotations

from typing import Any

from forwarder.modules.duo_ecs_values import (
    address,
    copy_values,
    put_geo,
    put_text,
    put_user_agent,
    put_value,
    related,
)

# Record keys mapped apart (the rest is copied to cisco_duo.auth.<key> as Duo wrote it): the times become
# @timestamp, as in Elastic; `eventtype` and `host` are not Duo's, duo_client adds them to each row.
_SPECIAL_KEYS = frozenset(("access_device", "auth_device", "user", "isotimestamp", "timestamp", "eventtype", "host"))
# Access device keys that become user_agent.* (and are not repeated under cisco_duo), and those rewritten.
_USER_AGENT_KEYS = frozenset(("browser", "browser_version", "os", "os_version"))
_DEVICE_FLAGS = ("is_encryption_enabled", "is_firewall_enabled", "is_password_set")
_REWRITTEN_DEVICE_KEYS = frozenset(("ip", "security_agents", *_DEVICE_FLAGS, *_USER_AGENT_KEYS))
_IP_KEY = frozenset(("ip",))


def auth_fields(record: dict[str, Any]) -> dict[str, Any]:
    get = record.get
    result = get("result")
    event: dict[str, Any] = {
        "kind": "event",
        "category": ["authentication"],
        "type": ["info"],
        "outcome": "success" if result == "success" else "failure",
    }
    put_text(event, "reason", get("reason"))
    fields: dict[str, Any] = {"event": event}

    duo: dict[str, Any] = {}
    copy_values(duo, record, _SPECIAL_KEYS)

    source: dict[str, Any] = {}
    hostname = None
    access_device = get("access_device")
    if type(access_device) is dict:
        hostname = _map_access_device(fields, source, duo, access_device)

    auth_ip = None
    auth_device = get("auth_device")
    if type(auth_device) is dict:
        auth_ip = _map_auth_device(duo, auth_device)

    user_name = _map_user(fields, source, get("user"), get("email"))
    if source:
        fields["source"] = source
    fields["cisco_duo"] = {"auth": duo}
    source_ip = source.get("ip")
    if source_ip is not None or auth_ip is not None or user_name is not None or hostname is not None:
        related(fields, (source_ip, auth_ip), (user_name,), (hostname,))
    return fields


def _map_access_device(fields: dict[str, Any], source: dict[str, Any], duo: dict[str, Any],
                       device: dict[str, Any]) -> str | None:
    """`source.address/ip/port/geo`, `user_agent.*` and `cisco_duo.auth.access_device`; returns the hostname."""
    cisco_device: dict[str, Any] = {}
    copy_values(cisco_device, device, _REWRITTEN_DEVICE_KEYS)
    raw_ip = device.get("ip")
    ip, port = address(raw_ip)
    if ip is not None:
        source["ip"] = cisco_device["ip"] = ip
        if port is not None:
            source["port"] = cisco_device["port"] = port
    if type(raw_ip) is str and raw_ip:
        source["address"] = raw_ip
    hostname = cisco_device.get("hostname")
    if type(hostname) is str:
        source["address"] = hostname
    else:
        hostname = None
    for flag in _DEVICE_FLAGS:
        value = device.get(flag)
        if value is True:
            cisco_device[flag] = "true"
        elif value is False:
            cisco_device[flag] = "false"
        elif value is not None:
            put_text(cisco_device, flag, value)
    put_geo(source, device.get("location"))
    agents = device.get("security_agents")
    # Elastic keeps the agents only as a list of objects (Duo writes [] or "unknown" otherwise).
    if type(agents) is list and agents and type(agents[0]) is dict:
        put_value(cisco_device, "security_agents", agents)
    put_user_agent(fields, device)
    if cisco_device:
        duo["access_device"] = cisco_device
    return hostname


def _map_auth_device(duo: dict[str, Any], device: dict[str, Any]) -> str | None:
    """`cisco_duo.auth.auth_device` (the phone or token that approved); returns its IP."""
    cisco_device: dict[str, Any] = {}
    copy_values(cisco_device, device, _IP_KEY)
    ip, port = address(device.get("ip"))
    if ip is not None:
        cisco_device["ip"] = ip
        if port is not None:
            cisco_device["port"] = port
    if cisco_device:
        duo["auth_device"] = cisco_device
    return ip


def _map_user(fields: dict[str, Any], source: dict[str, Any], user: Any, email: Any) -> str | None:
    """`user.*` and `source.user.*` (with the groups) from the Duo user; returns the user name."""
    mapped: dict[str, Any] = {}
    put_text(mapped, "email", email)
    name = groups = None
    if type(user) is dict:
        name = user.get("name")
        if type(name) is str and name:
            mapped["name"] = name
        else:
            name = None
        put_text(mapped, "id", user.get("key"))
        groups = user.get("groups")
    source_user = dict(mapped)
    if mapped:
        fields["user"] = mapped
    if type(groups) is list and groups:
        names = [group for group in groups if type(group) is str and group]
        if names:
            source_user["group"] = {"name": names}
    if source_user:
        source["user"] = source_user
    return name
