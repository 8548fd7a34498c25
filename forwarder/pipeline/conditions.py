"""Filebeat's `when` conditions, compiled once into plain predicates over an event.

Everything that can be decided from the config (regex compilation, CIDR
parsing, field path splitting, value types) is done when the config is read,
so a check on the publishing thread is only dict lookups and comparisons.
Config maps arrive with dotted keys expanded into nested dicts; conditions
walk them back into the dotted field names Filebeat users write.

The fields are read through `FieldPath`, the same lookup the processors use,
so a condition and a processor always agree on whether a field exists.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Any

from forwarder.pipeline.event import Event
from forwarder.pipeline.field_path import MISSING, FieldPath, top_level_keys
from forwarder.schema.section import Section

Condition = Callable[[Event], bool]


def build_condition(section: Section) -> Condition | None:
    """Compiles one condition mapping; None when it has problems (already reported)."""
    before = len(section.problems)
    names = list(section.data)
    if not names:
        section.error("", f"empty condition (use one of {', '.join(_BUILDERS)})")
        return None
    if len(names) > 1:
        section.error("", f"one condition per mapping, found {', '.join(map(str, names))} (combine them with and/or)")
        section.ignore(*names)
        return None
    name = names[0]
    builder = _BUILDERS.get(name)
    if builder is None:
        close = difflib.get_close_matches(str(name), list(_BUILDERS), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else f" (use one of {', '.join(_BUILDERS)})"
        section.error(str(name), f"unknown condition{hint}")
        return None
    condition = builder(section, name)
    return condition if len(section.problems) == before else None


def _leaves(section: Section, name: str) -> Iterator[tuple[str, Any]]:
    """(dotted field, value) pairs of a field mapping; nested dicts are walked, anything else is a value."""
    mapping = section.raw(name)
    if not isinstance(mapping, dict) or not mapping:
        section.error(name, "expected a mapping of field: value")
        return
    yield from _walk(mapping, "")


def _walk(node: dict[str, Any], prefix: str) -> Iterator[tuple[str, Any]]:
    for key, value in node.items():
        field = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            yield from _walk(value, field)
        else:
            yield field, value


def condition_fields(data: Any) -> frozenset[str] | None:
    """The top-level fields a condition (its config mapping, as `build_condition` takes it) may read.

    Every dotted prefix of each field it names (`top_level_keys`); a `range` limit walks one level too
    deep, which only over-counts. None for anything not understood. The pipeline uses it to leave a line's own fields
    unmerged (Event.raw_fields) under a `when` that cannot read them.
    """
    if not isinstance(data, dict) or len(data) != 1:
        return None
    ((name, value),) = data.items()
    if name in ("and", "or"):
        parts = [condition_fields(item) for item in value] if isinstance(value, list) else [None]
        return None if None in parts else frozenset().union(*parts)  # type: ignore[arg-type]
    if name == "not":
        return condition_fields(value)
    if name == "has_fields" and isinstance(value, (list, str)):
        names = [value] if isinstance(value, str) else [str(field) for field in value]
    elif name in _BUILDERS and isinstance(value, dict):
        names = [field for field, _ in _walk(value, "")]
    else:
        return None
    return frozenset().union(*map(top_level_keys, names))


def _every(checks: list[tuple[FieldPath, Callable[[Any], bool]]]) -> Condition:
    """True when every field's value passes its test; a missing field fails every test."""
    if len(checks) == 1:
        path, test = checks[0]
        return lambda event: test(path.get(event))

    def every(event: Event) -> bool:
        return all(test(path.get(event)) for path, test in checks)

    return every


def _equals(section: Section, name: str) -> Condition:
    checks = []
    for field, expected in _leaves(section, name):
        if isinstance(expected, bool):
            test = _bool_equals(expected)
        elif isinstance(expected, int):
            test = _int_equals(expected)
        elif isinstance(expected, str):
            test = _str_equals(expected)
        else:
            section.error(f"{name}.{field}", f"only strings, integers and booleans can be compared (got {expected!r})")
            continue
        checks.append((FieldPath(field), test))
    return _every(checks)


def _bool_equals(expected: bool) -> Callable[[Any], bool]:
    return lambda value: value is expected


def _int_equals(expected: int) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, int) and not isinstance(value, bool) and value == expected


def _str_equals(expected: str) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, str) and value == expected


def _string_matches(matches: Callable[[str], Any]) -> Callable[[Any], bool]:
    """A string value must match; in an array any string element may match."""

    def test(value: Any) -> bool:
        if isinstance(value, str):
            return bool(matches(value))
        if isinstance(value, list):
            return any(isinstance(item, str) and matches(item) for item in value)
        return False

    return test


def _contains(section: Section, name: str) -> Condition:
    checks = []
    for field, needle in _leaves(section, name):
        if not isinstance(needle, str):
            section.error(f"{name}.{field}", f"expected a string to look for (got {needle!r})")
            continue
        checks.append((FieldPath(field), _string_matches(lambda text, needle=needle: needle in text)))
    return _every(checks)


def _regexp(section: Section, name: str) -> Condition:
    checks = []
    for field, pattern in _leaves(section, name):
        if not isinstance(pattern, str):
            section.error(f"{name}.{field}", f"expected a regular expression string (got {pattern!r})")
            continue
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            section.error(f"{name}.{field}", f"invalid regular expression {pattern!r}: {exc}")
            continue
        checks.append((FieldPath(field), _string_matches(compiled.search)))
    return _every(checks)


_RANGE_OPERATORS = ("gte", "gt", "lte", "lt")


def _range(section: Section, name: str) -> Condition:
    bounds: dict[str, dict[str, float]] = {}
    for key, limit in _leaves(section, name):
        field, _, operator = key.rpartition(".")
        if operator not in _RANGE_OPERATORS or not field:
            section.error(f"{name}.{key}", "expected <field>.gte, .gt, .lte or .lt")
            continue
        number = _as_number(limit)
        if number is None:
            section.error(f"{name}.{key}", f"expected a number (got {limit!r})")
            continue
        bounds.setdefault(field, {})[operator] = number
    return _every([(FieldPath(field), _within(limits)) for field, limits in bounds.items()])


def _as_number(value: Any) -> float | None:
    """Numbers, and strings that hold one, as Filebeat compares them; anything else is None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _within(limits: dict[str, float]) -> Callable[[Any], bool]:
    gte, gt, lte, lt = (limits.get(op) for op in _RANGE_OPERATORS)

    def test(value: Any) -> bool:
        number = _as_number(value)
        if number is None:
            return False
        if gte is not None and number < gte:
            return False
        if gt is not None and number <= gt:
            return False
        if lte is not None and number > lte:
            return False
        return lt is None or number < lt

    return test


def _has_fields(section: Section, name: str) -> Condition:
    fields = section.string_list(name, None)
    if not fields:
        section.error(name, "expected a non-empty list of field names")
        return lambda event: False
    paths = [FieldPath(field) for field in fields]
    return lambda event: all(path.get(event) is not MISSING for path in paths)


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_PRIVATE = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fd00::/8"))
_BROADCAST = ipaddress.IPv4Address("255.255.255.255")
_LINK_LOCAL_MULTICAST_V4 = ipaddress.IPv4Network("224.0.0.0/24")


def _is_private(ip: IPAddress) -> bool:
    return any(ip in network for network in _PRIVATE)


def _is_link_local_multicast(ip: IPAddress) -> bool:
    if ip.version == 4:
        return ip in _LINK_LOCAL_MULTICAST_V4
    packed = ip.packed
    return packed[0] == 0xFF and packed[1] & 0x0F == 0x02


def _is_interface_local_multicast(ip: IPAddress) -> bool:
    packed = ip.packed
    return ip.version == 6 and packed[0] == 0xFF and packed[1] & 0x0F == 0x01


def _is_global_unicast(ip: IPAddress) -> bool:
    return not (ip == _BROADCAST or ip.is_unspecified or ip.is_loopback or ip.is_multicast or ip.is_link_local)


def _is_public(ip: IPAddress) -> bool:
    return not (
        _is_private(ip)
        or ip.is_loopback
        or ip.is_unspecified
        or ip == _BROADCAST
        or ip.is_link_local
        or _is_link_local_multicast(ip)
        or _is_interface_local_multicast(ip)
    )


# Go's net.IP semantics, which Filebeat's named networks are defined by (they differ
# from Python's is_private/is_global: e.g. 10.0.0.1 is "unicast" here).
NAMED_NETWORKS: dict[str, Callable[[IPAddress], bool]] = {
    "loopback": lambda ip: ip.is_loopback,
    "unicast": _is_global_unicast,
    "global_unicast": _is_global_unicast,
    "multicast": lambda ip: ip.is_multicast,
    "interface_local_multicast": _is_interface_local_multicast,
    "link_local_unicast": lambda ip: ip.is_link_local,
    "link_local_multicast": _is_link_local_multicast,
    "private": _is_private,
    "public": _is_public,
    "unspecified": lambda ip: ip.is_unspecified,
}


def _parse_ip(text: str) -> IPAddress | None:
    """IPv4-mapped IPv6 addresses count as IPv4, as in Go."""
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _network_matcher(section: Section, key: str, spec: Any) -> Callable[[IPAddress], bool] | None:
    if not isinstance(spec, str):
        section.error(key, f"expected a CIDR or a network name (got {spec!r})")
        return None
    named = NAMED_NETWORKS.get(spec)
    if named is not None:
        return named
    try:
        network = ipaddress.ip_network(spec, strict=False)
    except ValueError:
        section.error(key, f"{spec!r} is neither a CIDR such as 10.0.0.0/8 nor one of {', '.join(NAMED_NETWORKS)}")
        return None
    return network.__contains__


def _network(section: Section, name: str) -> Condition:
    checks = []
    for field, spec in _leaves(section, name):
        key = f"{name}.{field}"
        specs = spec if isinstance(spec, list) else [spec]
        if not specs:
            section.error(key, "expected a CIDR, a network name or a list of them")
            continue
        matchers = [_network_matcher(section, key, item) for item in specs]
        if None not in matchers:
            checks.append((FieldPath(field), _in_networks(matchers)))
    return _every(checks)


def _in_networks(matchers: list[Callable[[IPAddress], bool]]) -> Callable[[Any], bool]:
    @lru_cache(maxsize=4096)
    def address_matches(text: str) -> bool:
        """Cached per condition: log sources repeat the same addresses over and over."""
        ip = _parse_ip(text)
        return ip is not None and any(matches(ip) for matches in matchers)

    def test(value: Any) -> bool:
        if isinstance(value, str):
            return address_matches(value)
        if isinstance(value, list):
            return any(isinstance(item, str) and address_matches(item) for item in value)
        return False

    return test


def _sub_conditions(section: Section, name: str) -> list[Condition] | None:
    raw = section.raw(name)
    if not isinstance(raw, list) or not raw:
        section.error(name, "expected a non-empty list of conditions")
        return None
    conditions = [build_condition(item) for item in section.sections(name)]
    if any(condition is None for condition in conditions):
        return None
    return conditions  # type: ignore[return-value]


def _and(section: Section, name: str) -> Condition | None:
    conditions = _sub_conditions(section, name)
    if conditions is None:
        return None

    def every(event: Event) -> bool:
        return all(condition(event) for condition in conditions)

    return every


def _or(section: Section, name: str) -> Condition | None:
    conditions = _sub_conditions(section, name)
    if conditions is None:
        return None

    def some(event: Event) -> bool:
        return any(condition(event) for condition in conditions)

    return some


def _not(section: Section, name: str) -> Condition | None:
    if not isinstance(section.raw(name), dict):
        section.error(name, "expected a condition mapping")
        return None
    inner = build_condition(section.section(name))
    if inner is None:
        return None
    return lambda event: not inner(event)


_BUILDERS: dict[str, Callable[[Section, str], Condition | None]] = {
    "equals": _equals,
    "contains": _contains,
    "regexp": _regexp,
    "range": _range,
    "has_fields": _has_fields,
    "network": _network,
    "and": _and,
    "or": _or,
    "not": _not,
}
