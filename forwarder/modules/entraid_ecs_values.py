"""Reading single values out of Entra ID records without trusting their shape.

Graph and Event Hub deliver the same resources with small differences (an
object that is sometimes null, a number that is sometimes a string, an IP
address with a port, 7-digit fractional seconds). Every reader here returns
either a value of one fixed type or None, so the normalizers can map what is
there, skip the rest, and never give a downstream index two shapes of one field.
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson

# Formats seen in Azure Monitor envelopes besides ISO 8601.
_FALLBACK_TIME_FORMATS = ("%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M:%S")
_NUMBER_TYPES = (int, float)
# What `without_nulls` descends into; every other value is kept as it is.
_CONTAINER_TYPES = frozenset((dict, list))


def text(value: Any) -> str | None:
    """A non-empty string; numbers become their decimal text, anything else None.

    The hot paths test `type(value) is str` inline and call this only for
    other values: it is called for nearly every field of every record.
    """
    if type(value) is str:
        return value or None
    # A tuple rather than `int | float`, which would build a union object on every call.
    if isinstance(value, _NUMBER_TYPES) and value is not True and value is not False:
        return str(value)
    return None


def obj(value: Any) -> dict[str, Any]:
    """The value when it is an object, else an empty one (Graph writes null for absent objects)."""
    return value if type(value) is dict else {}


def text_list(value: Any) -> list[str] | None:
    """A list of strings, dropping elements of any other type; None when the value is not a list."""
    if type(value) is not list:
        return None
    for item in value:
        if type(item) is not str:
            return [item for item in value if type(item) is str]
    return value


def flag_text(value: Any) -> str | None:
    """`"true"`/`"false"` for a boolean or its text form (Event Hub sometimes sends `"True"`)."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is str and value.lower() in ("true", "false"):
        return value.lower()
    return None


def code_text(value: Any) -> str | None:
    """An error code as text: `50126`, `"50126"` and `50126.0` all read `"50126"`."""
    if type(value) is str:
        return value.strip() or None
    if type(value) is int:
        return str(value)
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return text(value)


def parse_time(value: Any) -> float | None:
    """Epoch seconds (microsecond precision) of a Graph or Azure Monitor time string, or None.

    Accepts 0-7 fractional digits (the 7th is dropped), `Z`/`z` or any UTC
    offset; a time without an offset is UTC, as Azure writes them.
    """
    if type(value) is not str or not value:
        return None
    if value[-1] == "z":
        value = value[:-1] + "Z"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = _parse_fallback_time(value.strip())
        if parsed is None:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.timestamp()
    except (OverflowError, ValueError, OSError):
        return None


def _parse_fallback_time(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        pass
    for time_format in _FALLBACK_TIME_FORMATS:
        try:
            return datetime.strptime(value, time_format)
        except ValueError:
            continue
    return None


def millisecond_time(epoch_seconds: float) -> float:
    """Truncates to whole milliseconds, so `@timestamp` shows `.721Z` for `.7215374Z` rather than rounding up."""
    return (round(epoch_seconds * 1_000_000) // 1000) / 1000


@lru_cache(maxsize=8192)
def split_address(value: str) -> tuple[str | None, int | None]:
    """(canonical IP, port) of `1.2.3.4`, `1.2.3.4:443`, `2001:db8::1`, `[2001:db8::1]:443`; (None, None) if not an IP.

    Cached: a tenant's sign-ins come from a limited set of addresses, and
    parsing is the costliest step of mapping one.
    """
    host, port = value.strip(), None
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            return None, None
        host, rest = host[1:end], host[end + 1:]
        if rest.startswith(":") and rest[1:].isdigit():
            port = int(rest[1:])
    elif host.count(":") == 1:
        host, _, port_text = host.partition(":")
        port = int(port_text) if port_text.isdigit() else None
    canonical = host if _is_canonical_ipv4(host) else None
    if canonical is None:
        try:
            canonical = str(ipaddress.ip_address(host))
        except ValueError:
            return None, None
    if port is not None and not 0 < port < 65536:
        port = None
    return canonical, port


def _is_canonical_ipv4(host: str) -> bool:
    """True for a dotted quad already written the way `ipaddress` would print it.

    Most sign-ins carry one, and the cache cannot help a tenant whose users
    come from more addresses than it holds; this check is a fifth of the cost
    of parsing. Anything else (IPv6, leading zeros, out of range) is left to
    `ipaddress`, so the result is the same either way.
    """
    parts = host.split(".")
    if len(parts) != 4:
        return False
    for part in parts:
        if not (part.isascii() and part.isdigit() and len(part) <= 3) or (part[0] == "0" and len(part) > 1):
            return False
        if int(part) > 255:
            return False
    return True


def put_source_address(fields: dict[str, Any], value: Any) -> None:
    """`source.address` (as written), `source.ip` and `source.port` from an address that may carry a port."""
    if type(value) is not str and value is not None:
        value = text(value)
    if not value:
        return
    source = fields.setdefault("source", {})
    source["address"] = value
    ip, port = split_address(value)
    if ip is not None:
        source["ip"] = ip
    if port is not None:
        source["port"] = port


def put_geo(fields: dict[str, Any], location: Any) -> None:
    """`source.geo.*` from a Graph `location` object (city, state, countryOrRegion, geoCoordinates)."""
    if type(location) is not dict or not location:
        return
    get = location.get
    geo: dict[str, Any] = {}
    value = get("city")
    if type(value) is not str and value is not None:
        value = text(value)
    if value:
        geo["city_name"] = value
    value = get("state")
    if type(value) is not str and value is not None:
        value = text(value)
    if value:
        geo["region_name"] = value
    value = get("countryOrRegion")
    if type(value) is not str and value is not None:
        value = text(value)
    if value:
        geo["country_iso_code"] = value
    coordinates = get("geoCoordinates")
    if type(coordinates) is dict:
        lat = coordinates.get("latitude")
        if type(lat) is not float:
            lat = _coordinate(lat)
        lon = coordinates.get("longitude")
        if type(lon) is not float:
            lon = _coordinate(lon)
        if lat is not None and lon is not None and -90 <= lat <= 90 and -180 <= lon <= 180:
            geo["location"] = {"lat": lat, "lon": lon}
    if geo:
        fields.setdefault("source", {})["geo"] = geo


def _coordinate(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, _NUMBER_TYPES):
        return float(value)
    if type(value) is str:
        try:
            return float(value)
        except ValueError:
            return None
    return None


def put_user(fields: dict[str, Any], user_id: Any, name: Any, email: Any) -> None:
    """`user.id`, `user.name`, `user.email`, each only when present."""
    user: dict[str, Any] = {}
    if type(user_id) is not str and user_id is not None:
        user_id = text(user_id)
    if user_id:
        user["id"] = user_id
    if type(name) is not str and name is not None:
        name = text(name)
    if name:
        user["name"] = name
    if type(email) is not str and email is not None:
        email = text(email)
    if email:
        user["email"] = email
    if user:
        fields["user"] = user


def put_service(fields: dict[str, Any], service_id: Any, name: Any) -> None:
    """`service.id` and `service.name`, each only when present (an existing name is replaced)."""
    if type(service_id) is not str and service_id is not None:
        service_id = text(service_id)
    if service_id:
        fields.setdefault("service", {})["id"] = service_id
    if type(name) is not str and name is not None:
        name = text(name)
    if name:
        fields.setdefault("service", {})["name"] = name


def copy_present(target: dict[str, Any], record: dict[str, Any], keys: tuple[tuple[str, str], ...]) -> None:
    """Copies string-valued `(source key, target key)` pairs that are present and not empty."""
    get = record.get
    for source_key, target_key in keys:
        value = get(source_key)
        if type(value) is not str and value is not None:
            value = text(value)
        if value:
            target[target_key] = value


def text_values(item: dict[str, Any]) -> dict[str, str]:
    """The non-null members of a key/value or old/new-value object, as text.

    Their values are JSON text (a string arrives with its quotes) but now and
    then arrive decoded; encoding those keeps each member a string in every event.
    """
    return {
        key: value if type(value) is str else as_json_text(value) for key, value in item.items() if value is not None
    }


def as_json_text(value: Any) -> str:
    """A string as is, any other value as its JSON text."""
    if type(value) is str:
        return value
    return orjson.dumps(value, default=str).decode()


def without_nulls(value: Any) -> Any:
    """A copy of a nested object or list with every null member left out, for objects kept as Microsoft wrote them."""
    if type(value) is dict:
        return {
            key: without_nulls(item) if type(item) in _CONTAINER_TYPES else item
            for key, item in value.items()
            if item is not None
        }
    if type(value) is list:
        return [without_nulls(item) if type(item) in _CONTAINER_TYPES else item for item in value if item is not None]
    return value
