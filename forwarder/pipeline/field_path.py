"""Dotted field names, read and written the way Filebeat's mapstr does.

Conditions and processors address fields through `FieldPath`, so they agree
on what exists. Writes never replace a non-object in the middle of a path,
they fail with `FieldError` instead, and every change can be recorded in an
undo log: that is what lets rename/copy_fields roll an event back exactly
without copying it first.
"""

from __future__ import annotations

import logging
from typing import Any

from forwarder.pipeline.event import METADATA_PREFIX, Event, format_timestamp, parse_timestamp

log = logging.getLogger(__name__)

MISSING: Any = object()


class FieldPath:
    """A dotted field name split once, read the way Filebeat's mapstr reads it.

    At every level a key that literally contains the remaining dots wins over
    walking into a nested object, so `log.level` finds both
    `{"log": {"level": ...}}` and a decoded JSON key `{"log.level": ...}`.
    `@metadata.x` addresses the event's metadata, `@timestamp` its timestamp.
    """

    __slots__ = ("in_meta", "is_timestamp", "name", "steps")

    def __init__(self, name: str) -> None:
        self.name = name
        self.is_timestamp = name == "@timestamp"
        self.in_meta = name == "@metadata" or name.startswith(METADATA_PREFIX)
        key = "" if name == "@metadata" else name.removeprefix(METADATA_PREFIX)
        steps: list[tuple[str, str | None]] = []
        while key:
            head, dot, rest = key.partition(".")
            steps.append((key, head if dot else None))
            key = rest
        self.steps = tuple(steps)

    def root(self, event: Event) -> dict[str, Any]:
        return event.meta if self.in_meta else event.fields

    def get(self, event: Event) -> Any:
        """The value at this path, or MISSING."""
        if self.is_timestamp:
            return format_timestamp(event.timestamp)
        return self.lookup(event.meta if self.in_meta else event.fields)

    def lookup(self, node: dict[str, Any]) -> Any:
        """The value at this path inside `node`, or MISSING."""
        if not self.steps:
            return node
        for whole, head in self.steps:
            value = node.get(whole, MISSING)
            if value is not MISSING:
                return value
            if head is None:
                return MISSING
            node = node.get(head)
            if not isinstance(node, dict):
                return MISSING
        return MISSING

    def __repr__(self) -> str:
        return f"FieldPath({self.name!r})"


def top_level_keys(name: str) -> frozenset[str]:
    """The top-level fields a lookup of or write to `name` may touch: every dotted prefix of it (FieldPath
    tries `a.b.c` whole before `a`), none for metadata and the timestamp."""
    if name == "@timestamp" or name == "@metadata" or name.startswith(METADATA_PREFIX):
        return frozenset()
    parts = name.split(".")
    return frozenset(".".join(parts[:end]) for end in range(1, len(parts) + 1))


class FieldError(Exception):
    """A field operation that Filebeat would also refuse (missing key, object in the way)."""


# An undo entry is (container, key, previous value or MISSING); container None means the
# event's timestamp, with the event in the key slot.
UndoLog = list[tuple[Any, Any, Any]]


def slot(node: dict[str, Any], path: FieldPath, create: bool, undo: UndoLog | None) -> tuple[dict[str, Any], str]:
    """The (object, key) under `node` that holds `path`; missing objects on the way are created only if `create`."""
    if not path.steps:
        raise FieldError(f"{path.name} cannot be replaced as a whole")
    for whole, head in path.steps:
        if head is None or whole in node:
            return node, whole
        child = node.get(head, MISSING)
        if child is MISSING:
            if not create:
                raise FieldError("key not found")
            child = {}
            node[head] = child
            if undo is not None:
                undo.append((node, head, MISSING))
        elif not isinstance(child, dict):
            raise FieldError(f"expected an object at {head!r} but found {type(child).__name__}")
        node = child
    raise FieldError("key not found")


def put_field(event: Event, path: FieldPath, value: Any, undo: UndoLog | None = None) -> None:
    if path.is_timestamp:
        try:
            timestamp = parse_timestamp(value)
        except (TypeError, ValueError):
            raise FieldError(f"{value!r} is not a timestamp") from None
        if undo is not None:
            undo.append((None, event, event.timestamp))
        event.timestamp = timestamp
        return
    node, key = slot(path.root(event), path, True, undo)
    if undo is not None:
        undo.append((node, key, node.get(key, MISSING)))
    node[key] = value


def delete_field(event: Event, path: FieldPath, undo: UndoLog | None = None) -> None:
    if path.is_timestamp:
        raise FieldError("@timestamp cannot be removed")
    node, key = slot(path.root(event), path, False, None)
    if key not in node:
        raise FieldError("key not found")
    if undo is not None:
        undo.append((node, key, node[key]))
    del node[key]


def roll_back(undo: UndoLog) -> None:
    for container, key, previous in reversed(undo):
        if container is None:
            key.timestamp = previous
        elif previous is MISSING:
            container.pop(key, None)
        else:
            container[key] = previous


_ERROR_MESSAGE = FieldPath("error.message")


def set_error_message(event: Event, message: str) -> None:
    try:
        put_field(event, _ERROR_MESSAGE, message)
    except FieldError:
        log.debug("could not record %r on the event: error is not an object", message)


def copy_value(value: Any) -> Any:
    """A copy deep enough that no two events share a mutable object."""
    if isinstance(value, dict):
        return {key: copy_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [copy_value(item) for item in value]
    return value


def deep_update(target: dict[str, Any], source: dict[str, Any], overwrite: bool = True, copy: bool = True) -> None:
    """Merges objects key by key; other values replace (or, without overwrite, never replace) what is there."""
    for key, value in source.items():
        current = target.get(key, MISSING)
        if isinstance(value, dict) and isinstance(current, dict):
            deep_update(current, value, overwrite, copy)
        elif current is MISSING or overwrite:
            target[key] = copy_value(value) if copy else value
