"""Reading values out of Duo Admin API records for the `duo_ecs` mapping, without trusting their shape.

Duo writes null for absent values, booleans where a string is documented,
times in three forms (ISO text, epoch seconds, epoch milliseconds) and
addresses that may carry a port. Each helper here returns a value of one
type, or leaves the target untouched, so that a downstream index never sees
two shapes of one field. Elastic's cisco_duo pipelines end by dropping every
null, empty string, empty object and empty list; `compact` does the same for
the objects kept as Duo wrote them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from forwarder.modules.entraid_ecs_values import parse_time, split_address, text

_EMPTY = (None, "")
_CONTAINER_TYPES = frozenset((dict, list))


def compact(value: Any) -> Any:
    """A copy of a nested object or list without nulls, empty strings, and objects or lists left empty."""
    if type(value) is dict:
        kept = {}
        for key, item in value.items():
            if type(item) in _CONTAINER_TYPES:
                item = compact(item)
                if item:
                    kept[key] = item
            elif item is not None and item != "":
                kept[key] = item
        return kept
    if type(value) is list:
        kept_items = []
        for item in value:
            if type(item) in _CONTAINER_TYPES:
                item = compact(item)
                if item:
                    kept_items.append(item)
            elif item is not None and item != "":
                kept_items.append(item)
        return kept_items
    return value


def is_compact(value: Any) -> bool:
    """True when `compact` would return an equal copy: no null, empty string or empty object or list anywhere."""
    items = value.values() if type(value) is dict else value
    for item in items:
        kind = type(item)
        if kind is dict or kind is list:
            if not item or not is_compact(item):
                return False
        elif item is None or item == "":
            return False
    return True


def copy_values(target: dict[str, Any], source: dict[str, Any], skip: frozenset[str]) -> None:
    """Copies each member of `source` not in `skip` as `put_value` would; one loop, for the per-record hot path.

    A nested object or list with nothing to drop is taken as it is rather than copied: each member lands
    in one place of the result, so sharing it with the record (which nobody changes afterwards) is safe,
    and it saves allocating and later freeing a few objects per record.
    """
    for key, value in source.items():
        if key in skip:
            continue
        kind = type(value)
        if kind is str:
            if value:
                target[key] = value
        elif kind is dict or kind is list:
            if not value:
                continue
            if not is_compact(value):
                value = compact(value)
                if not value:
                    continue
            target[key] = value
        elif value is not None:
            target[key] = value


def put_text(target: dict[str, Any], key: str, value: Any) -> None:
    """`target[key]` = the value as non-empty text (numbers as their decimal text); nothing otherwise."""
    if type(value) is not str:
        value = text(value)
    if value:
        target[key] = value


def put_value(target: dict[str, Any], key: str, value: Any) -> None:
    """`target[key]` = the value as Duo wrote it, compacted; nothing when it is null or empty."""
    if type(value) in _CONTAINER_TYPES:
        value = compact(value)
        if value:
            target[key] = value
    elif value not in _EMPTY:
        target[key] = value


def flag_text(value: Any) -> str | None:
    """`"true"`/`"false"` of a boolean, as Elastic converts Duo's device flags to strings; other text as is."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return text(value)


def address(value: Any) -> tuple[str | None, int | None]:
    """(canonical IP, port) of an address Duo wrote, either of them None when absent or not an IP."""
    if type(value) is not str or not value:
        return None, None
    return split_address(value)


def put_geo(target: dict[str, Any], location: Any) -> None:
    """`target["geo"]` from Duo's `location` object (city, state, country names, as Duo resolved them)."""
    if type(location) is not dict:
        return
    geo: dict[str, Any] = {}
    put_text(geo, "city_name", location.get("city"))
    put_text(geo, "region_name", location.get("state"))
    put_text(geo, "country_name", location.get("country"))
    if geo:
        target["geo"] = geo


def put_user_agent(fields: dict[str, Any], device: dict[str, Any]) -> None:
    """`user_agent.name`/`version`/`os.*` from an access device's browser and operating system."""
    agent: dict[str, Any] = {}
    put_text(agent, "name", device.get("browser"))
    put_text(agent, "version", device.get("browser_version"))
    operating_system: dict[str, Any] = {}
    put_text(operating_system, "name", device.get("os"))
    put_text(operating_system, "version", device.get("os_version"))
    if operating_system:
        agent["os"] = operating_system
    if agent:
        fields["user_agent"] = agent


def iso_time(value: Any) -> float | None:
    """Epoch seconds (microsecond precision, UTC) of an ISO 8601 time such as `isotimestamp` or `ts`."""
    return parse_time(value)


def seconds_time(value: Any) -> float | None:
    """Epoch seconds of a number of seconds (a v1 `timestamp`); None for anything else."""
    if type(value) is int or type(value) is float:
        return float(value)
    if type(value) is str and value.isdigit():
        return float(value)
    return None


def milliseconds_time(value: Any) -> float | None:
    """Epoch seconds of a number of milliseconds (Trust Monitor's `surfaced_timestamp`); None for anything else."""
    seconds = seconds_time(value)
    return None if seconds is None else seconds / 1000


def related(fields: dict[str, Any], ips: Sequence[Any], users: Sequence[Any], hosts: Sequence[Any] = ()) -> None:
    """`related.ip`, `related.user`, `related.hosts`: the values given that are set, each once, in order."""
    group: dict[str, list[Any]] = {}
    for name, values in (("ip", ips), ("user", users), ("hosts", hosts)):
        unique = [value for value in values if value]
        if len(unique) > 1:
            unique = list(dict.fromkeys(unique))
        if unique:
            group[name] = unique
    if group:
        fields["related"] = group
